"""What a cache lookup can answer besides a value, and the statistics record."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["MISSING", "NEGATIVE", "CacheSentinel", "CacheStats", "Negative"]


class CacheSentinel(enum.Enum):
    """Answers that are not values: nothing known, or known not to exist."""

    MISSING = "missing"
    NEGATIVE = "negative"

    def __repr__(self) -> str:
        return self.name


MISSING: Final = CacheSentinel.MISSING
"""Nothing cached (or it expired)."""
NEGATIVE: Final = CacheSentinel.NEGATIVE
"""Cached "not found"."""

Negative = Literal[CacheSentinel.NEGATIVE]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of a cache's counters.

    ``hit_rate`` is ``(hits + negative_hits) / lookups`` (0.0 before any
    lookup): a cached "not found" spares the backend as much as a value does.
    Stale values served while revalidating count as ``stale_hits`` and are
    not in ``hit_rate``.
    """

    hits: int
    negative_hits: int
    stale_hits: int
    misses: int
    loads: int
    load_errors: int
    evictions: int
    expirations: int
    size: int
    max_size: int

    @property
    def lookups(self) -> int:
        return self.hits + self.negative_hits + self.misses

    @property
    def hit_rate(self) -> float:
        lookups = self.lookups
        return (self.hits + self.negative_hits) / lookups if lookups else 0.0
