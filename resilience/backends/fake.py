"""A backend that starts nothing: the shipped fake for tests of code that takes an Environment.

::

    env = Environment(backend_impl=StaticBackend(urls))
    with env:                       # no server is started
        service = make_service(env)
    assert backend.starts == backend.stops == 1
"""

from __future__ import annotations

from resilience.backends.config import EnvironmentURLs

__all__ = ["StaticBackend"]


class StaticBackend:
    """Hands out ``urls`` on start and counts starts and stops."""

    name = "static"

    def __init__(self, urls: EnvironmentURLs | None = None) -> None:
        self.urls = urls or EnvironmentURLs(
            postgres="postgresql://resilience:resilience@127.0.0.1:15432/resilience",
            redis="redis://127.0.0.1:16379/0",
            postgres_direct="postgresql://resilience:resilience@127.0.0.1:55432/resilience",
            redis_direct="redis://127.0.0.1:56379/0",
            toxiproxy_api="http://127.0.0.1:8474",
        )
        self.starts = 0
        self.stops = 0

    def start(self) -> EnvironmentURLs:
        self.starts += 1
        return self.urls

    def stop(self) -> None:
        self.stops += 1
