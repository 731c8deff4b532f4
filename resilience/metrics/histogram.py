"""An exact histogram of integer microsecond values.

Every distinct value has its own bucket (a dict ``value_us → count``), so
percentiles are exact, not estimated: :meth:`Histogram.percentile` returns a
value that was actually recorded. Memory grows with the number of *distinct*
microsecond values (a lookup path spanning 0–100 ms has at most 100 001), not
with the number of samples. Histograms merge exactly.

Percentiles use the nearest-rank definition: ``p(q)`` is the smallest recorded
value ``v`` such that at least ``q`` % of samples are ``<= v`` (rank
``ceil(q/100 x count)``, at least 1). ``q`` is read as the decimal it is
written as, so ``p(99.9)`` of 1000 samples is the 999th.

Not thread-safe on its own; :class:`~resilience.metrics.recorder.MetricsRecorder`
guards its histograms with its lock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

__all__ = ["SUMMARY_QUANTILES", "Histogram", "quantile_key"]

SUMMARY_QUANTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9)
"""Percentiles in :meth:`Histogram.summary` (keys ``p50`` … ``p999``)."""


def quantile_key(q: float) -> str:
    """The summary key of percentile ``q``: 50 → ``"p50"``, 99.9 → ``"p999"``."""
    return "p" + format(Decimal(repr(q)).normalize(), "f").replace(".", "")


class Histogram:
    """Counts of integer microsecond values with exact percentiles."""

    __slots__ = ("_counts", "count", "sum_us")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        """Number of samples."""
        self.sum_us = 0
        """Sum of all samples."""

    def record(self, value_us: int, count: int = 1) -> None:
        """Add ``count`` samples of ``value_us`` (a non-negative integer)."""
        if value_us < 0 or count < 0:
            raise ValueError(f"value_us and count must not be negative ({value_us}, {count})")
        if count == 0:
            return
        counts = self._counts
        counts[value_us] = counts.get(value_us, 0) + count
        self.count += count
        self.sum_us += value_us * count

    def add(self, value_us: int) -> None:
        """Add one sample, unchecked (the hot path for callers that validated it)."""
        counts = self._counts
        counts[value_us] = counts.get(value_us, 0) + 1
        self.count += 1
        self.sum_us += value_us

    @property
    def min_us(self) -> int | None:
        """Smallest sample, or ``None`` when empty (O(distinct values))."""
        return min(self._counts) if self._counts else None

    @property
    def max_us(self) -> int | None:
        """Largest sample, or ``None`` when empty (O(distinct values))."""
        return max(self._counts) if self._counts else None

    @property
    def mean_us(self) -> float | None:
        """Arithmetic mean, or ``None`` when empty."""
        return self.sum_us / self.count if self.count else None

    def percentile(self, q: float) -> int | None:
        """The nearest-rank ``q``-th percentile (``0 <= q <= 100``); ``None`` when empty."""
        return self.percentiles((q,))[q]

    def percentiles(self, qs: Iterable[float]) -> dict[float, int | None]:
        """Several percentiles in one pass over the buckets."""
        return self._percentiles(list(qs), None)

    def _percentiles(self, wanted: list[float], keys: list[int] | None) -> dict[float, int | None]:
        for q in wanted:
            if not 0 <= q <= 100:
                raise ValueError(f"percentile must be within [0, 100], got {q}")
        if not self.count:
            return dict.fromkeys(wanted)
        ranks = sorted((max(1, math.ceil(Decimal(repr(q)) * self.count / 100)), q) for q in wanted)
        result: dict[float, int | None] = {}
        position = 0
        seen = 0
        counts = self._counts
        for value in keys if keys is not None else sorted(counts):
            seen += counts[value]
            while position < len(ranks) and ranks[position][0] <= seen:
                result[ranks[position][1]] = value
                position += 1
            if position == len(ranks):
                break
        return result

    def merge(self, other: Histogram) -> None:
        """Add all of ``other``'s samples to this histogram."""
        counts = self._counts
        for value, count in other._counts.items():
            counts[value] = counts.get(value, 0) + count
        self.count += other.count
        self.sum_us += other.sum_us

    def copy(self) -> Histogram:
        clone = Histogram()
        clone._counts = dict(self._counts)
        clone.count, clone.sum_us = self.count, self.sum_us
        return clone

    def __add__(self, other: Histogram) -> Histogram:
        merged = self.copy()
        merged.merge(other)
        return merged

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Histogram) and self._counts == other._counts

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __len__(self) -> int:
        return self.count

    def items(self) -> list[tuple[int, int]]:
        """``(value_us, count)`` pairs in ascending order of value."""
        return sorted(self._counts.items())

    def summary(self, quantiles: Iterable[float] = SUMMARY_QUANTILES) -> dict[str, Any]:
        """JSON-ready: ``count``, ``min``, ``max``, ``mean``, ``sum`` and ``p50``… in µs."""
        keys = sorted(self._counts)
        out: dict[str, Any] = {
            "count": self.count,
            "min": keys[0] if keys else None,
            "max": keys[-1] if keys else None,
            "mean": self.mean_us,
            "sum": self.sum_us,
        }
        for q, value in self._percentiles(list(quantiles), keys).items():
            out[quantile_key(q)] = value
        return out

    def to_dict(self) -> dict[str, int]:
        """Lossless JSON-ready form: ``{"<value_us>": count}``."""
        return {str(value): count for value, count in sorted(self._counts.items())}

    @classmethod
    def from_dict(cls, data: Mapping[str, int]) -> Histogram:
        """Inverse of :meth:`to_dict`."""
        histogram = cls()
        for value, count in data.items():
            histogram.record(int(value), int(count))
        return histogram

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, min_us={self.min_us}, max_us={self.max_us})"
