"""Service statistics whose latency percentiles cost O(distinct values), not O(n log n).

The service's :class:`~resilience.service.stats.ServiceStats` keeps the last
``window`` latencies per path and sorts them on every ``to_dict()``. The
runner samples statistics every half second, so over a simulated hour that
sort dominates. :class:`CountedServiceStats` keeps, beside the same windows,
a count per distinct value and answers the very same figures (nearest-rank
percentiles, mean rounded to 0.1 µs, max) from the counts; on virtual time
most paths have few distinct durations.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from resilience.service.stats import ServiceStats

__all__ = ["CountedServiceStats", "counted_percentiles_us"]


def counted_percentiles_us(
    counts: Counter[int], keys: Sequence[int] | None = None
) -> dict[str, float | int]:
    """:func:`resilience.service.stats.percentiles_us` of the multiset ``counts``.

    ``keys`` are ``counts``' keys in ascending order when the caller keeps
    them (saves a sort); the work is then all in C.
    """
    values = sorted(counts) if keys is None else keys
    if not values:
        return {"count": 0, "mean": 0.0, "p50": 0, "p90": 0, "p95": 0, "p99": 0, "max": 0}
    weights = list(map(counts.__getitem__, values))
    cumulative = list(itertools.accumulate(weights))
    n = cumulative[-1]

    def rank(q: float) -> int:
        index = min(n - 1, max(0, math.ceil(q * n) - 1))
        return values[bisect.bisect_right(cumulative, index)]

    total = sum(map(operator.mul, values, weights))
    return {
        "count": n,
        "mean": round(total / n, 1),
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": values[-1],
    }


class CountedServiceStats(ServiceStats):
    """:class:`ServiceStats` with the same output, cheap to sample.

    Nothing is added to ``observe`` (the per-lookup path): at each
    ``to_dict()`` the counts catch up with the lookups observed since the
    last one — the newest items of each window, read from its end — and a
    shadow copy of each window tells which old values left it.
    """

    def __init__(self, *, window: int = 100_000) -> None:
        super().__init__(window=window)
        self._counts: dict[str, Counter[int]] = {p: Counter() for p in self.latency_us}
        self._keys: dict[str, list[int]] = {p: [] for p in self.latency_us}
        self._shadow: dict[str, deque[int]] = {p: deque() for p in self.latency_us}
        self._synced: Counter[str] = Counter()
        self._cached: dict[str, tuple[int, dict[str, float | int]]] = {}

    def _sync(self, path: str) -> int:
        """Bring ``path``'s counts up to date; returns how many lookups it has seen."""
        seen = self.paths[path]
        fresh = seen - self._synced[path]
        if fresh <= 0:
            return seen
        self._synced[path] = seen
        window = self.latency_us[path]
        maxlen = window.maxlen or len(window)
        new = list(itertools.islice(reversed(window), min(fresh, len(window))))
        new.reverse()
        shadow, counts, keys = self._shadow[path], self._counts[path], self._keys[path]
        for _ in range(max(0, len(shadow) + len(new) - maxlen)):
            old = shadow.popleft()
            left = counts[old] - 1
            if left:
                counts[old] = left
            else:
                del counts[old]
                del keys[bisect.bisect_left(keys, old)]
        for value in new:
            if value in counts:
                counts[value] += 1
            else:
                counts[value] = 1
                bisect.insort(keys, value)
        shadow.extend(new)
        return seen

    def to_dict(self, *, breaker: Any = None, redis_tier: Any = None) -> dict[str, Any]:
        windows = self.latency_us
        self.latency_us = {}
        try:
            out = super().to_dict(breaker=breaker, redis_tier=redis_tier)
        finally:
            self.latency_us = windows
        out["latency_us"] = {p: self._percentiles(p) for p, s in windows.items() if s}
        return out

    def _percentiles(self, path: str) -> dict[str, float | int]:
        version = self._sync(path)
        cached = self._cached.get(path)
        if cached is None or cached[0] != version:
            cached = (version, counted_percentiles_us(self._counts[path], self._keys[path]))
            self._cached[path] = cached
        return dict(cached[1])
