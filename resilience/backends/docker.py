"""The docker backend: PostgreSQL, Redis and a Toxiproxy-API server as testcontainers.

The containers run in the **host network** and bind 127.0.0.1 on free ports,
exactly like the local backend's processes: no container subnet, no port
publishing through iptables, so the engine can run with ``--bridge=none
--iptables=false`` and nothing changes the machine's firewall (see
docs/backends.md). The fault proxy reaches the servers at ``127.0.0.1:PORT``.

Images are configuration (``RESILIENCE_POSTGRES_IMAGE`` ...). The defaults
are the local images ``resilience images build`` makes from Debian packages
(:mod:`resilience.backends.images`); ``postgres:16``, ``redis:7`` and
``ghcr.io/shopify/toxiproxy`` take the same environment and arguments. An
image the engine lacks is pulled; one that cannot be had is named in one
sentence (:class:`BackendUnavailable`).

Nothing outlives the harness: every container carries the environment's
label and its owner's pid; a reaper process
(:mod:`resilience.backends.docker_reaper`) removes them when the harness
dies, SIGKILL included, and each start removes containers of dead owners.
testcontainers' own reaper (Ryuk) is disabled when its image is not on the
engine, since it could not be pulled.

:func:`docker_engine_answers` and :func:`docker_image_present` talk to the
engine's API directly, without importing the Docker SDK, so ``auto``
selection stays cheap.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import time
import uuid
from typing import Any
from urllib.parse import quote, urlparse

from resilience.backends.booking_api import BOOKING_PROXY, container_spec
from resilience.backends.config import EnvironmentConfig, EnvironmentURLs
from resilience.backends.docker_control import DockerServerControl
from resilience.backends.errors import BackendError, BackendUnavailable, StartupFailed
from resilience.backends.postgres import THROWAWAY_SETTINGS, postgres_answers
from resilience.backends.proxies import ensure_proxy, proxy_api_up
from resilience.backends.readiness import free_port, http_json, redis_ping

__all__ = ["DockerBackend", "docker_engine_answers", "docker_image_present"]

NO_ENGINE = (
    "The docker backend needs a running Docker engine, and none answered at {where}; "
    "start Docker or use --resilience-backend=local."
)
NO_IMAGE = (
    "The docker backend could not get the {role} image {image!r}: the engine at {where} "
    "does not have it and pulling it failed ({reason}); build the local images with "
    "`resilience images build` or set RESILIENCE_{role_upper}_IMAGE to an image you have."
)
CREDENTIALS = ("resilience", "resilience", "resilience")  # user, password, database
_STATUS_EVERY_S = 0.5


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


def _engine_get(path: str, *, timeout_s: float) -> int | None:
    """Status of ``GET path`` on the engine's API; ``None`` when it does not answer."""
    address = urlparse(_engine_address())
    conn: http.client.HTTPConnection
    if address.scheme == "unix":
        if not os.path.exists(address.path):
            return None
        conn = _UnixHTTPConnection(address.path, timeout_s)
    elif address.scheme in ("tcp", "http", "https"):
        port = address.port or 2375
        conn = http.client.HTTPConnection(address.hostname or "localhost", port, timeout=timeout_s)
    else:
        return None
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def docker_engine_answers(*, timeout_s: float = 1.0) -> bool:
    """True when the Docker engine at ``$DOCKER_HOST`` (or the default socket) answers /_ping."""
    return _engine_get("/_ping", timeout_s=timeout_s) == 200


def docker_image_present(image: str, *, timeout_s: float = 1.0) -> bool:
    """True when the engine has ``image`` locally (nothing is pulled)."""
    return _engine_get(f"/images/{quote(image, safe='')}/json", timeout_s=timeout_s) == 200


def images_of(config: EnvironmentConfig) -> dict[str, str]:
    """Role → image name for ``config``."""
    return {
        "postgres": config.postgres_image,
        "redis": config.redis_image,
        "toxiproxy": config.toxiproxy_image,
    }


def _short_reason(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None) or str(exc)
    text = " ".join(str(explanation).split())
    return text if len(text) <= 160 else text[:157] + "..."


class DockerBackend:
    """PostgreSQL, Redis and a Toxiproxy-API server in host-network containers on 127.0.0.1."""

    name = "docker"

    def __init__(self, config: EnvironmentConfig | None = None) -> None:
        self.config = config or EnvironmentConfig()
        self.environment_id = uuid.uuid4().hex[:12]
        self._containers: list[Any] = []
        self._reaper: Any = None
        self._client: Any = None
        self._control: DockerServerControl | None = None  # process faults (server_control)

    def start(self) -> EnvironmentURLs:
        if not docker_engine_answers():
            raise BackendUnavailable(NO_ENGINE.format(where=_engine_address()))
        try:
            import docker  # noqa: F401 - the SDK comes with testcontainers
            import testcontainers  # noqa: F401
        except ImportError:
            raise BackendUnavailable(
                "The docker backend needs testcontainers: pip install 'resilience[docker]'."
            ) from None
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _ensure_images(self) -> None:
        import docker

        client = self._client
        images = {**images_of(self.config), "booking-api": self.config.booking_api_image}
        for role, image in images.items():
            try:
                client.images.get(image)
                continue
            except docker.errors.ImageNotFound:
                pass
            try:
                client.images.pull(image)
            except docker.errors.DockerException as exc:
                raise BackendUnavailable(
                    NO_IMAGE.format(
                        role=role,
                        role_upper=role.upper(),
                        image=image,
                        where=_engine_address(),
                        reason=_short_reason(exc),
                    )
                ) from None

    def _start(self) -> EnvironmentURLs:
        import docker
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        from resilience.backends.docker_reaper import (
            ENVIRONMENT_LABEL,
            ContainerReaper,
            owner_labels,
            reap_orphans,
        )

        self._client = docker.from_env()
        self._ensure_images()
        reap_orphans(self._client)
        if not docker_image_present(testcontainers_config.ryuk_image):
            testcontainers_config.ryuk_disabled = True  # it could not be pulled here
        label = f"{ENVIRONMENT_LABEL}={self.environment_id}"
        self._reaper = ContainerReaper(label)
        self._reaper.start()

        cfg = self.config
        user, password, database = CREDENTIALS
        pg_port, redis_port, api_port = free_port(), free_port(), free_port()
        labels = {ENVIRONMENT_LABEL: self.environment_id, **owner_labels()}

        def container(image: str, command: list[str], **env: str) -> Any:
            return DockerContainer(image, env=env, network_mode="host", labels=labels).with_command(
                command
            )

        postgres = container(
            cfg.postgres_image,
            ["postgres", "-p", str(pg_port), "-c", "listen_addresses=127.0.0.1",
             *[arg for k, v in THROWAWAY_SETTINGS.items() for arg in ("-c", f"{k}={v}")]],
            POSTGRES_USER=user, POSTGRES_PASSWORD=password, POSTGRES_DB=database,
        )  # fmt: skip
        redis = container(
            cfg.redis_image,
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
        )  # fmt: skip
        toxiproxy = container(cfg.toxiproxy_image, ["-host", "127.0.0.1", "-port", str(api_port)])
        booking_port = free_port()
        spec = container_spec(cfg.booking_api_image, port=booking_port)
        # entrypoint as a constructor kwarg: with_kwargs() would replace network_mode and labels
        booking = DockerContainer(
            spec.image, network_mode="host", labels=labels, entrypoint=spec.entrypoint
        ).with_command(spec.command)
        for each in (postgres, redis, toxiproxy, booking):
            each.start()
            self._containers.append(each)

        api_url = f"http://127.0.0.1:{api_port}"
        pg_direct = f"postgresql://{user}:{password}@127.0.0.1:{pg_port}/{database}"
        redis_direct = f"redis://127.0.0.1:{redis_port}/0"
        booking_direct = f"http://127.0.0.1:{booking_port}"
        self._wait(
            {
                "the fault proxy": (toxiproxy, lambda: proxy_api_up(api_url)),
                "Redis": (redis, lambda: redis_ping("127.0.0.1", redis_port)),
                "PostgreSQL": (postgres, lambda: postgres_answers(pg_direct, timeout_s=1.0)),
                "the booking API stub": (
                    booking,
                    lambda: http_json("GET", f"{booking_direct}/_stats", timeout_s=0.5) or True,
                ),
            }
        )
        booking_proxy = ensure_proxy(
            api_url, BOOKING_PROXY, upstream=f"127.0.0.1:{booking_port}", listen="127.0.0.1:0"
        )
        pg_proxy = ensure_proxy(
            api_url, "postgres", upstream=f"127.0.0.1:{pg_port}", listen="127.0.0.1:0"
        )
        redis_proxy = ensure_proxy(
            api_url, "redis", upstream=f"127.0.0.1:{redis_port}", listen="127.0.0.1:0"
        )
        self._control = DockerServerControl(
            {"postgres": postgres, "redis": redis},
            ready={
                "postgres": lambda: postgres_answers(pg_direct, timeout_s=1.0),
                "redis": lambda: redis_ping("127.0.0.1", redis_port),
            },
            redis_port=redis_port,
        )
        return EnvironmentURLs(
            postgres=f"postgresql://{user}:{password}@127.0.0.1:{pg_proxy[1]}/{database}",
            redis=f"redis://127.0.0.1:{redis_proxy[1]}/0",
            postgres_direct=pg_direct,
            redis_direct=redis_direct,
            toxiproxy_api=api_url,
            booking_api=f"http://127.0.0.1:{booking_proxy[1]}",
            booking_api_direct=booking_direct,
        )

    def _wait(self, probes: dict[str, tuple[Any, Any]]) -> None:
        """Poll every probe until all answer; a container that exits fails at once with its logs."""
        deadline = time.monotonic() + self.config.startup_timeout_s
        pending = dict(probes)
        next_status = time.monotonic() + _STATUS_EVERY_S
        while pending:
            for what, (_, probe) in list(pending.items()):
                try:
                    if probe():
                        del pending[what]
                except Exception:  # not yet
                    pass
            if not pending:
                return
            now = time.monotonic()
            if now >= next_status:
                next_status = now + _STATUS_EVERY_S
                for what, (each, _) in pending.items():
                    wrapped = each.get_wrapped_container()
                    wrapped.reload()
                    if wrapped.status in ("exited", "dead"):
                        logs = wrapped.logs(tail=30).decode(errors="replace")
                        raise StartupFailed(
                            f"{what} container ({each.image}) exited before it was ready",
                            log_tail=logs,
                        )
            if now >= deadline:
                names = ", ".join(pending)
                raise StartupFailed(
                    f"{names} not ready after {self.config.startup_timeout_s:.1f} s in docker"
                )
            time.sleep(0.02)

    def server_control(self) -> DockerServerControl:
        """``docker pause`` / ``unpause`` / ``kill`` / ``stop`` / ``start`` of the servers."""
        if self._control is None:
            raise BackendError("the Docker environment is not started")
        return self._control

    def stop(self) -> None:
        self._control = None
        while self._containers:
            container = self._containers.pop()
            with contextlib.suppress(Exception):  # already gone; the reaper checks once more
                container.get_wrapped_container().remove(force=True, v=True)
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper = None
        if self._client is not None:
            self._client.close()
            self._client = None
