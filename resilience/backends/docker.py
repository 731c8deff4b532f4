"""The docker backend: testcontainers PostgreSQL, Redis and the real Toxiproxy image.

The three containers share a private network; Toxiproxy reaches the servers
by their network aliases (``postgres:5432``, ``redis:6379``) and publishes
its API (8474) and the two proxy ports (8666 for ``postgres``, 8667 for
``redis``). :func:`docker_engine_answers` pings the engine without importing
the Docker SDK, so ``auto`` selection stays cheap.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
from typing import Any
from urllib.parse import urlparse

from resilience.backends.config import EnvironmentConfig, EnvironmentURLs
from resilience.backends.docker_control import DockerServerControl
from resilience.backends.errors import BackendError, BackendUnavailable
from resilience.backends.postgres import postgres_answers
from resilience.backends.proxies import ensure_proxy, proxy_api_up
from resilience.backends.readiness import redis_ping, wait_until

__all__ = ["DockerBackend", "docker_engine_answers"]

NO_ENGINE = (
    "The docker backend needs a running Docker engine, and none answered at {where}; "
    "start Docker or use --resilience-backend=local."
)
PROXY_PORTS = {"postgres": 8666, "redis": 8667}


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def docker_engine_answers(*, timeout_s: float = 1.0) -> bool:
    """True when the Docker engine at ``$DOCKER_HOST`` (or the default socket) answers /_ping."""
    address = urlparse(_engine_address())
    conn: http.client.HTTPConnection
    if address.scheme == "unix":
        if not os.path.exists(address.path):
            return False
        conn = _UnixHTTPConnection(address.path, timeout_s)
    elif address.scheme in ("tcp", "http", "https"):
        port = address.port or 2375
        conn = http.client.HTTPConnection(address.hostname or "localhost", port, timeout=timeout_s)
    else:
        return False
    try:
        conn.request("GET", "/_ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class DockerBackend:
    """PostgreSQL, Redis and Toxiproxy containers on a private Docker network."""

    name = "docker"

    def __init__(self, config: EnvironmentConfig | None = None) -> None:
        self.config = config or EnvironmentConfig()
        self._containers: list[Any] = []
        self._network: Any = None
        self._servers: dict[str, Any] = {}  # for process faults (server_control)
        self._proxied: tuple[str, str] | None = None  # postgres and redis URLs via the proxies

    def start(self) -> EnvironmentURLs:
        if not docker_engine_answers():
            raise BackendUnavailable(NO_ENGINE.format(where=_engine_address()))
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> EnvironmentURLs:
        from testcontainers.community.postgres import PostgresContainer
        from testcontainers.community.redis import RedisContainer
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.network import Network

        cfg = self.config
        self._network = Network().create()
        postgres = (
            PostgresContainer(
                cfg.postgres_image,
                username="resilience",
                password="resilience",
                dbname="resilience",
                driver=None,
            )
            .with_network(self._network)
            .with_network_aliases("postgres")
            .with_command("postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        )
        redis = (
            RedisContainer(cfg.redis_image)
            .with_network(self._network)
            .with_network_aliases("redis")
        )
        toxiproxy = (
            DockerContainer(cfg.toxiproxy_image)
            .with_network(self._network)
            .with_exposed_ports(8474, *PROXY_PORTS.values())
        )
        for container in (postgres, redis, toxiproxy):
            container.start()
            self._containers.append(container)

        host = toxiproxy.get_container_host_ip()
        api_url = f"http://{host}:{toxiproxy.get_exposed_port(8474)}"
        wait_until("toxiproxy", lambda: proxy_api_up(api_url), timeout_s=cfg.startup_timeout_s)
        ensure_proxy(
            api_url,
            "postgres",
            upstream="postgres:5432",
            listen=f"0.0.0.0:{PROXY_PORTS['postgres']}",
        )
        ensure_proxy(
            api_url, "redis", upstream="redis:6379", listen=f"0.0.0.0:{PROXY_PORTS['redis']}"
        )
        pg_host, pg_port = postgres.get_container_host_ip(), postgres.get_exposed_port(5432)
        rd_host, rd_port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
        credentials = "resilience:resilience"
        self._servers = {"postgres": postgres, "redis": redis}
        urls = EnvironmentURLs(
            postgres=f"postgresql://{credentials}@{host}:"
            f"{toxiproxy.get_exposed_port(PROXY_PORTS['postgres'])}/resilience",
            redis=f"redis://{host}:{toxiproxy.get_exposed_port(PROXY_PORTS['redis'])}/0",
            postgres_direct=f"postgresql://{credentials}@{pg_host}:{pg_port}/resilience",
            redis_direct=f"redis://{rd_host}:{rd_port}/0",
            toxiproxy_api=api_url,
        )
        self._proxied = (urls.postgres, urls.redis)
        return urls

    def server_control(self) -> DockerServerControl:
        """``docker pause`` / ``unpause`` / ``kill`` / ``stop`` / ``start`` of the servers."""
        if not self._servers or self._proxied is None:
            raise BackendError("the Docker environment is not started")
        pg_url, redis_url = self._proxied
        redis_at = urlparse(redis_url)
        return DockerServerControl(
            self._servers,
            ready={
                "postgres": lambda: postgres_answers(pg_url),
                "redis": lambda: redis_ping(redis_at.hostname or "", redis_at.port or 0),
            },
        )

    def stop(self) -> None:
        while self._containers:
            container = self._containers.pop()
            with contextlib.suppress(Exception):
                container.stop()
        if self._network is not None:
            with contextlib.suppress(Exception):
                self._network.remove()
            self._network = None
