"""Counters behind ``GET /stats``: rates over valid lookups, latency by path in µs.

Rates are over valid lookups (invalid slugs are counted apart, they say
nothing about the system): ``hit_rate`` counts answers from the in-memory or
Redis tier (negative entries included); ``success_rate``, ``fallback_rate``
and ``error_rate`` are the shares of each outcome. Latency percentiles are
exact over the last ``window`` lookups of each path (nearest-rank).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from typing import Any

from resilience.service.model import LookupResult

__all__ = ["ServiceStats", "percentiles_us"]

_PATHS = ("cache", "redis", "db", "fallback", "invalid")


def percentiles_us(samples: list[int] | deque[int]) -> dict[str, float | int]:
    """count, mean, p50, p90, p95, p99 and max of ``samples`` (µs), nearest-rank."""
    data = sorted(samples)
    n = len(data)
    if n == 0:
        return {"count": 0, "mean": 0.0, "p50": 0, "p90": 0, "p95": 0, "p99": 0, "max": 0}

    def rank(q: float) -> int:
        return data[min(n - 1, max(0, math.ceil(q * n) - 1))]

    return {
        "count": n,
        "mean": round(sum(data) / n, 1),
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": data[-1],
    }


class ServiceStats:
    """Running counts of one service instance (not thread-safe: one event loop)."""

    def __init__(self, *, window: int = 100_000) -> None:
        self.outcomes: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.latency_us: dict[str, deque[int]] = {p: deque(maxlen=window) for p in _PATHS}
        self.attempts = 0
        self.breaker_opens = 0
        self.jobs_stored = 0
        self.jobs_replayed = 0
        self.jobs_queued = 0

    def observe(self, result: LookupResult) -> None:
        self.outcomes[result.outcome] += 1
        self.paths[result.path] += 1
        if result.reason is not None:
            self.reasons[result.reason] += 1
        self.attempts += result.attempts
        self.latency_us[result.path].append(result.duration_us)

    def on_transition(self, *args: Any, **kwargs: Any) -> None:
        """Breaker listener hook: counts transitions into ``open``."""
        new = kwargs.get("new", kwargs.get("new_state", args[-1] if args else None))
        if _state_name(new) == "open":
            self.breaker_opens += 1

    def to_dict(self, *, breaker: Any = None, redis_tier: Any = None) -> dict[str, Any]:
        valid = sum(self.outcomes.values()) - self.outcomes["invalid"]
        hits = self.paths["cache"] + self.paths["redis"]

        def share(count: int) -> float:
            return round(count / valid, 6) if valid else 0.0

        return {
            "lookups": valid,
            "invalid": self.outcomes["invalid"],
            "hit_rate": share(hits),
            "memory_hit_rate": share(self.paths["cache"]),
            "redis_hit_rate": share(self.paths["redis"]),
            "success_rate": share(self.outcomes["success"]),
            "fallback_rate": share(self.outcomes["fallback"]),
            "error_rate": share(self.outcomes["error"]),
            "db_attempts": self.attempts,
            "outcomes": dict(self.outcomes),
            "paths": dict(self.paths),
            "reasons": dict(self.reasons),
            "latency_us": {p: percentiles_us(s) for p, s in self.latency_us.items() if s},
            "breaker": {
                "state": breaker_state(breaker),
                "opens": int(getattr(breaker, "opens", self.breaker_opens)),
            },
            "redis": redis_tier.stats() if redis_tier is not None else {"available": False},
            "jobs": {
                "stored": self.jobs_stored,
                "replayed": self.jobs_replayed,
                "queued": self.jobs_queued,
            },
        }


def breaker_state(breaker: Any) -> str:
    """``closed`` / ``open`` / ``half_open`` of any breaker exposing ``state``."""
    if breaker is None:
        return "none"
    return _state_name(getattr(breaker, "state", None)) or "unknown"


def _state_name(state: Any) -> str | None:
    if state is None:
        return None
    value = getattr(state, "value", state)
    name = getattr(state, "name", None)
    text = str(value if isinstance(value, str) else (name or value)).lower()
    return text.replace("-", "_").replace(" ", "_").split(".")[-1]
