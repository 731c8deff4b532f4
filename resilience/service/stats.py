"""Counters behind ``GET /stats``: rates over valid lookups, latency by path in µs.

Rates are over valid lookups (invalid slugs are counted apart, they say
nothing about the system): ``hit_rate`` counts answers from the in-memory or
Redis tier (negative entries included); ``success_rate``, ``fallback_rate``
and ``error_rate`` are the shares of each outcome. Latency percentiles are
exact over the last ``window`` lookups of each path (nearest-rank).

Across processes: :meth:`ServiceStats.state` is a lossless, JSON-ready form of
the counts (each window as a :class:`~resilience.metrics.Histogram`);
:func:`merge_states` sums several and :func:`stats_from_state` gives the same
figures as :meth:`ServiceStats.to_dict` for the sum.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Any

from resilience.metrics import Histogram
from resilience.service.model import LookupResult

__all__ = [
    "ServiceStats",
    "combine_workers",
    "histogram_percentiles_us",
    "merge_states",
    "percentiles_us",
    "stats_from_state",
]

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


def histogram_percentiles_us(histogram: Histogram) -> dict[str, float | int]:
    """:func:`percentiles_us` of the samples a histogram holds (same keys and ranks)."""
    if not histogram.count:
        return percentiles_us([])
    ranks = histogram.percentiles((50.0, 90.0, 95.0, 99.0))
    return {
        "count": histogram.count,
        "mean": round(histogram.sum_us / histogram.count, 1),
        "p50": ranks[50.0] or 0,
        "p90": ranks[90.0] or 0,
        "p95": ranks[95.0] or 0,
        "p99": ranks[99.0] or 0,
        "max": histogram.max_us or 0,
    }


class _WindowCounts:
    """A window's values counted, caught up from the window's end when asked.

    Nothing is added to the per-lookup path: :meth:`sync` reads the lookups
    observed since the last call from the end of the window, and a shadow copy
    tells which old values have left it. O(new lookups) per call.
    """

    __slots__ = ("counts", "encoded", "seen", "shadow")

    def __init__(self) -> None:
        self.seen = 0
        self.shadow: deque[int] = deque()
        self.counts: dict[int, int] = {}
        self.encoded: dict[str, int] | None = None

    def to_dict(self, window: deque[int], seen: int) -> dict[str, int]:
        """The window as :meth:`Histogram.to_dict` (kept until the window changes)."""
        self.sync(window, seen)
        if self.encoded is None:
            self.encoded = {str(v): n for v, n in sorted(self.counts.items())}
        return self.encoded

    def sync(self, window: deque[int], seen: int) -> dict[int, int]:
        fresh = min(seen - self.seen, len(window))
        self.seen = seen
        if fresh > 0:
            self.encoded = None
            new = list(itertools.islice(reversed(window), fresh))
            new.reverse()
            counts, shadow = self.counts, self.shadow
            limit = window.maxlen if window.maxlen is not None else len(shadow) + len(new)
            for _ in range(max(0, len(shadow) + len(new) - limit)):
                old = shadow.popleft()
                left = counts[old] - 1
                if left:
                    counts[old] = left
                else:
                    del counts[old]
            for value in new:
                counts[value] = counts.get(value, 0) + 1
            shadow.extend(new)
        return self.counts


class _Tally(Counter[str]):
    """A :class:`~collections.Counter` whose ``tally[key] += 1`` is twice as fast.

    ``Counter.__delitem__`` is written in Python, which makes CPython send
    every item assignment through a generic slot too; taking ``dict``'s back
    (so deleting a missing key raises ``KeyError``) restores the C one.
    """

    __delitem__ = dict.__delitem__  # type: ignore[assignment]  # typed for str keys only


class ServiceStats:
    """Running counts of one service instance (not thread-safe: one event loop)."""

    def __init__(self, *, window: int = 100_000) -> None:
        self.outcomes: Counter[str] = _Tally()
        self.paths: Counter[str] = _Tally()
        self.reasons: Counter[str] = _Tally()
        self.latency_us: dict[str, deque[int]] = {p: deque(maxlen=window) for p in _PATHS}
        self.attempts = 0
        self.breaker_opens = 0
        self.jobs_stored = 0
        self.jobs_replayed = 0
        self.jobs_queued = 0
        self._windows: dict[str, _WindowCounts] = {}

    def observe(self, result: LookupResult) -> None:
        path = result.path
        self.outcomes[result.outcome] += 1
        self.paths[path] += 1
        if result.reason is not None:
            self.reasons[result.reason] += 1
        self.attempts += result.attempts
        self.latency_us[path].append(result.duration_us)

    def on_transition(self, *args: Any, **kwargs: Any) -> None:
        """Breaker listener hook: counts transitions into ``open``."""
        new = kwargs.get("new", kwargs.get("new_state", args[-1] if args else None))
        if _state_name(new) == "open":
            self.breaker_opens += 1

    def to_dict(self, *, breaker: Any = None, redis_tier: Any = None) -> dict[str, Any]:
        latency = {p: percentiles_us(s) for p, s in self.latency_us.items() if s}
        out = _figures(
            self.outcomes, self.paths, self.reasons, self.attempts, self._jobs(), latency
        )
        out["breaker"] = {
            "state": breaker_state(breaker),
            "opens": int(getattr(breaker, "opens", self.breaker_opens)),
        }
        out["redis"] = redis_tier.stats() if redis_tier is not None else {"available": False}
        return out

    def state(self) -> dict[str, Any]:
        """Lossless, JSON-ready counts for :func:`merge_states` (windows as histograms).

        ``{"outcomes", "paths", "reasons": {name: n}, "attempts": n, "breaker_opens": n,
        "jobs": {"stored", "replayed", "queued"}, "latency_us": {path: Histogram.to_dict()}}``
        """
        latency: dict[str, dict[str, int]] = {}
        for path, window in self.latency_us.items():
            if window:
                counts = self._windows.get(path)
                if counts is None:
                    counts = self._windows[path] = _WindowCounts()
                latency[path] = counts.to_dict(window, self.paths[path])
        return {
            "outcomes": dict(self.outcomes),
            "paths": dict(self.paths),
            "reasons": dict(self.reasons),
            "attempts": self.attempts,
            "breaker_opens": self.breaker_opens,
            "jobs": self._jobs(),
            "latency_us": latency,
        }

    def _jobs(self) -> dict[str, int]:
        return {
            "stored": self.jobs_stored,
            "replayed": self.jobs_replayed,
            "queued": self.jobs_queued,
        }


def merge_states(states: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of several :meth:`ServiceStats.state` dicts (same form)."""
    outcomes: Counter[str] = Counter()
    paths: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    jobs: Counter[str] = Counter()
    attempts = opens = 0
    latency: dict[str, Histogram] = {}
    for state in states:
        outcomes.update(state.get("outcomes", {}))
        paths.update(state.get("paths", {}))
        reasons.update(state.get("reasons", {}))
        jobs.update(state.get("jobs", {}))
        attempts += int(state.get("attempts", 0))
        opens += int(state.get("breaker_opens", 0))
        for path, counts in state.get("latency_us", {}).items():
            latency.setdefault(path, Histogram()).merge(Histogram.from_dict(counts))
    return {
        "outcomes": dict(outcomes),
        "paths": dict(paths),
        "reasons": dict(reasons),
        "attempts": attempts,
        "breaker_opens": opens,
        "jobs": {k: jobs[k] for k in ("stored", "replayed", "queued")},
        "latency_us": {p: h.to_dict() for p, h in latency.items()},
    }


def stats_from_state(
    state: Mapping[str, Any], *, breaker: Any = None, redis: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The :meth:`ServiceStats.to_dict` figures of a (merged) state.

    ``breaker`` gives the state (its ``opens`` when it has them: the shared
    breaker counts openings across instances); ``redis`` is the ``redis`` section.
    """
    latency = {
        path: histogram_percentiles_us(Histogram.from_dict(counts))
        for path in _PATHS
        if (counts := state.get("latency_us", {}).get(path))
    }
    out = _figures(
        Counter(state.get("outcomes", {})),
        Counter(state.get("paths", {})),
        Counter(state.get("reasons", {})),
        int(state.get("attempts", 0)),
        dict(state.get("jobs", {})),
        latency,
    )
    out["breaker"] = {
        "state": breaker_state(breaker),
        "opens": int(getattr(breaker, "opens", state.get("breaker_opens", 0))),
    }
    out["redis"] = dict(redis) if redis is not None else {"available": False}
    return out


def combine_workers(
    states: list[dict[str, Any]], *, breaker: Any = None, stale: int = 0
) -> dict[str, Any]:
    """``/stats`` over several workers' :meth:`LookupService.worker_state` dicts.

    Counts and latency windows are summed exactly; in the ``redis``,
    ``analytics``, ``error_tracking`` and ``outbox`` sections every integer is
    summed and everything else (``available``, ``last_error``) is the first
    state's (the answering worker's own). ``scope`` is ``"service"``.
    """
    sections = [state.get("sections", {}) for state in states]
    redis = _sum_numbers([s["redis"] for s in sections if s.get("redis")])
    stats = stats_from_state(
        merge_states(state["stats"] for state in states), breaker=breaker, redis=redis or None
    )
    for name in ("analytics", "error_tracking", "outbox", "notifications", "alerts"):
        present = [s[name] for s in sections if s.get(name)]
        if present:
            stats[name] = _sum_numbers(present)
    stats["scope"] = "service"
    stats["workers"] = len(states)
    stats["stale_workers"] = stale
    return stats


def _sum_numbers(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """The first dict with every integer (not bool) summed over all of them."""
    if not dicts:
        return {}
    out = dict(dicts[0])
    for other in dicts[1:]:
        for key, value in other.items():
            mine = out.get(key)
            if _is_int(value) and _is_int(mine):
                out[key] = mine + value
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _figures(
    outcomes: Counter[str],
    paths: Counter[str],
    reasons: Counter[str],
    attempts: int,
    jobs: dict[str, int],
    latency: dict[str, dict[str, float | int]],
) -> dict[str, Any]:
    valid = sum(outcomes.values()) - outcomes["invalid"]
    hits = paths["cache"] + paths["redis"]

    def share(count: int) -> float:
        return round(count / valid, 6) if valid else 0.0

    return {
        "lookups": valid,
        "invalid": outcomes["invalid"],
        "hit_rate": share(hits),
        "memory_hit_rate": share(paths["cache"]),
        "redis_hit_rate": share(paths["redis"]),
        "success_rate": share(outcomes["success"]),
        "fallback_rate": share(outcomes["fallback"]),
        "error_rate": share(outcomes["error"]),
        "db_attempts": attempts,
        "outcomes": dict(outcomes),
        "paths": dict(paths),
        "reasons": dict(reasons),
        "latency_us": latency,
        "jobs": jobs,
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
