"""The external backend: servers somebody else runs, e.g. ``docker compose up``.

URLs come from configuration (see :mod:`resilience.backends.config`); every
one left unset defaults to the matching service of the repository's
``docker-compose.yml``. When the proxies ``postgres``/``redis`` do not exist
yet and an upstream address is configured (or defaulted), they are created.
Start only checks readiness; stop resets the proxies (toxics removed,
proxies enabled) and stops nothing.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlparse

from resilience.backends.config import EnvironmentConfig, EnvironmentURLs
from resilience.backends.postgres import postgres_answers
from resilience.backends.proxies import ensure_proxy, proxy_api_up
from resilience.backends.readiness import http_json, redis_ping, wait_until

__all__ = ["COMPOSE_DEFAULTS", "ExternalBackend"]

COMPOSE_DEFAULTS: dict[str, str] = {
    "postgres_url": "postgresql://resilience:resilience@127.0.0.1:15432/resilience",
    "redis_url": "redis://127.0.0.1:16379/0",
    "postgres_direct_url": "postgresql://resilience:resilience@127.0.0.1:55432/resilience",
    "redis_direct_url": "redis://127.0.0.1:56379/0",
    "toxiproxy_url": "http://127.0.0.1:8474",
    "postgres_upstream": "postgres:5432",
    "redis_upstream": "redis:6379",
}
"""Where the services of ``docker-compose.yml`` answer on the host."""


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


class ExternalBackend:
    """Uses already-running servers; creates missing proxies; stops nothing."""

    name = "external"

    def __init__(self, config: EnvironmentConfig | None = None) -> None:
        self.config = config or EnvironmentConfig()
        self._urls: EnvironmentURLs | None = None

    def _value(self, key: str) -> str:
        value = getattr(self.config, key)
        return str(value) if value else COMPOSE_DEFAULTS[key]

    def start(self) -> EnvironmentURLs:
        urls = EnvironmentURLs(
            postgres=self._value("postgres_url"),
            redis=self._value("redis_url"),
            postgres_direct=self._value("postgres_direct_url"),
            redis_direct=self._value("redis_direct_url"),
            toxiproxy_api=self._value("toxiproxy_url").rstrip("/"),
            booking_api=(self.config.booking_api_url or "").rstrip("/"),
            booking_api_direct=(self.config.booking_api_direct_url or "").rstrip("/"),
        )
        timeout_s = self.config.startup_timeout_s
        api = urls.toxiproxy_api
        wait_until(f"the Toxiproxy API at {api}", lambda: proxy_api_up(api), timeout_s=timeout_s)
        existing = http_json("GET", f"{api}/proxies")
        names = set(existing) if isinstance(existing, dict) else set()
        for name, url, port in (("postgres", urls.postgres, 5432), ("redis", urls.redis, 6379)):
            if name not in names:
                _, listen_port = _host_port(url, port)
                ensure_proxy(
                    api,
                    name,
                    upstream=self._value(f"{name}_upstream"),
                    listen=f"0.0.0.0:{listen_port}",
                )
        pg = urls.postgres
        wait_until(f"PostgreSQL at {pg}", lambda: postgres_answers(pg), timeout_s=timeout_s)
        host, port = _host_port(urls.redis, 6379)
        wait_until(f"Redis at {urls.redis}", lambda: redis_ping(host, port), timeout_s=timeout_s)
        self._urls = urls
        return urls

    def stop(self) -> None:
        if self._urls is not None:
            with contextlib.suppress(OSError):
                http_json("POST", f"{self._urls.toxiproxy_api}/reset")
            self._urls = None
