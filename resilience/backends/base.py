"""The protocol every backend implements: start → URLs, stop → nothing left."""

from __future__ import annotations

from typing import Protocol

from resilience.backends.config import EnvironmentURLs

__all__ = ["Backend"]


class Backend(Protocol):
    """Starts PostgreSQL, Redis and a Toxiproxy API with proxies ``postgres`` and ``redis``."""

    name: str

    def start(self) -> EnvironmentURLs:
        """Start everything and wait for real readiness; clean up and raise on failure."""
        ...

    def stop(self) -> None:
        """Stop everything this backend started; idempotent, never raises for 'already gone'."""
        ...
