"""Caching: an in-memory TTL + LRU cache and a tier interface for a shared cache.

See :mod:`resilience.cache.memory` for the contract and ``docs/primitives.md``
for usage.
"""

from resilience.cache.memory import LookupCache
from resilience.cache.results import MISSING, NEGATIVE, CacheSentinel, CacheStats, Negative
from resilience.cache.tier import CacheTier, TieredCache

__all__ = [
    "MISSING",
    "NEGATIVE",
    "CacheSentinel",
    "CacheStats",
    "CacheTier",
    "LookupCache",
    "Negative",
    "TieredCache",
]
