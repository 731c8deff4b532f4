"""What the stub counts, and the harness's client for ``/_stats``.

Every request is counted under its route template (``POST /bookings``,
``GET /bookings/{id}``) and the status the stub returned, with its arrival
time (wall clock, seconds) and ``Idempotency-Key`` in a bounded log, so a gate can ask how many
calls arrived in a window (while a breaker was open, before a Retry-After
had passed). ``/_stats`` itself is not counted.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["LOG_LIMIT", "RequestCounter", "UpstreamStats", "fetch_stats", "reset_stats"]

LOG_LIMIT = 100_000


@dataclass
class RequestCounter:
    """Counts by route and status, and the arrival log (oldest dropped past LOG_LIMIT)."""

    by_route: dict[str, dict[str, int]] = field(default_factory=dict)
    log: deque[tuple[float, str, int, str]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))

    def count(self, route: str, status: int, arrived_s: float, key: str = "") -> None:
        """One request; ``key``: its Idempotency-Key (bookings), so retries can be told apart."""
        per_status = self.by_route.setdefault(route, {})
        per_status[str(status)] = per_status.get(str(status), 0) + 1
        self.log.append((arrived_s, route, status, key))

    @property
    def total(self) -> int:
        return sum(sum(per.values()) for per in self.by_route.values())

    def to_json(self, *, with_log: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"total": self.total, "by_route": self.by_route}
        if with_log:
            out["log"] = [list(entry) for entry in self.log]
        return out


@dataclass(frozen=True)
class UpstreamStats:
    """``/_stats`` as the harness reads it."""

    total: int
    by_route: dict[str, dict[str, int]]
    bookings: dict[str, int]
    log: tuple[tuple[float, str, int, str], ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UpstreamStats:
        return cls(
            total=int(data["requests"]["total"]),
            by_route={k: dict(v) for k, v in data["requests"]["by_route"].items()},
            bookings=dict(data["bookings"]),
            log=tuple(
                (float(t), str(r), int(s), str(k)) for t, r, s, k in data["requests"].get("log", [])
            ),
        )

    def calls(self, route: str | None = None) -> int:
        """Requests received (on route, or on every route)."""
        routes = [route] if route is not None else list(self.by_route)
        return sum(sum(self.by_route.get(r, {}).values()) for r in routes)

    def calls_between(self, start_s: float, end_s: float, route: str | None = None) -> int:
        """Requests that arrived in [start_s, end_s) (wall clock seconds)."""
        return sum(
            1 for t, r, _s, _k in self.log if start_s <= t < end_s and (route is None or r == route)
        )

    @property
    def duplicates(self) -> int:
        return int(self.bookings.get("duplicates", 0))


def fetch_stats(base_url: str, *, with_log: bool = False, timeout_s: float = 5.0) -> UpstreamStats:
    """Read the stub's ``/_stats`` (directly, not through its proxy)."""
    params = {"log": "1"} if with_log else {}
    response = httpx.get(f"{base_url}/_stats", params=params, timeout=timeout_s)
    response.raise_for_status()
    return UpstreamStats.from_json(response.json())


def reset_stats(base_url: str, *, timeout_s: float = 5.0) -> None:
    """Zero the counters and forget the bookings (between scenarios)."""
    httpx.post(f"{base_url}/_stats/reset", timeout=timeout_s).raise_for_status()


def now_s() -> float:
    return time.time()
