"""A second cache tier (e.g. Redis) behind the in-memory :class:`LookupCache`.

:class:`CacheTier` is the protocol a remote tier implements; it is shaped after
:class:`resilience.cache.redis_tier.RedisTier`. A tier answers a value, its
own "not found" marker (``remote_not_found``, e.g. ``redis_tier.NOT_FOUND``),
or ``None`` for a miss. A tier must never raise for being unavailable: it
answers a miss (``None`` / ``False``) instead, so a broken tier only costs hit
rate.

:class:`TieredCache` composes them: memory first; on a miss the tier; on a
tier miss the loader, whose answer is written to both tiers. Single-flight
comes from the memory tier, so N concurrent misses in one process cause at
most one tier read and one load.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Generic, Protocol, TypeVar

from resilience.cache.memory import LookupCache
from resilience.cache.results import MISSING, NEGATIVE, CacheSentinel, Negative
from resilience.errors import NotFound

__all__ = ["CacheTier", "TieredCache"]

K = TypeVar("K")
V = TypeVar("V")
M = TypeVar("M")
M_co = TypeVar("M_co", covariant=True)


class CacheTier(Protocol[K, V, M_co]):
    """An async key → value store with negative entries and its own TTLs."""

    async def get(self, key: K) -> V | M_co | None:
        """The value, the tier's not-found marker, or ``None`` on a miss or outage."""
        ...

    async def set(self, key: K, value: V) -> bool:
        """Store ``value``; False if the tier could not (nothing else happens)."""
        ...

    async def set_not_found(self, key: K) -> bool:
        """Store a negative entry for ``key``."""
        ...

    async def delete(self, key: K) -> bool: ...

    async def get_many(self, keys: Iterable[K]) -> Mapping[K, V | M_co]:
        """Entries found among ``keys`` (misses absent)."""
        ...


class TieredCache(Generic[K, V, M]):
    """Memory in front of a remote tier, loading from the source of truth on a double miss."""

    def __init__(
        self,
        local: LookupCache[K, V],
        remote: CacheTier[K, V, M] | None = None,
        *,
        remote_not_found: M,
    ) -> None:
        self.local = local
        self.remote = remote
        self._remote_not_found = remote_not_found

    async def get(self, key: K) -> V | CacheSentinel:
        """Memory, then the remote tier (filling memory); :data:`MISSING` if neither knows."""
        found = self.local.get(key)
        if found is not MISSING or self.remote is None:
            return found
        return self._adopt(key, await self.remote.get(key))

    async def get_or_load(
        self, key: K, loader: Callable[[], Awaitable[V | Negative]]
    ) -> V | Negative:
        """Memory, remote tier, then ``loader`` (once per key at a time); fills both tiers."""
        remote = self.remote

        async def load() -> V | Negative:
            if remote is not None:
                answer = await remote.get(key)
                if answer is not None:
                    return NEGATIVE if answer is self._remote_not_found else answer  # type: ignore[return-value]
            try:
                value = await loader()
            except NotFound:
                value = NEGATIVE
            if remote is not None:
                if value is NEGATIVE:
                    await remote.set_not_found(key)
                else:
                    await remote.set(key, value)
            return value

        return await self.local.aget_or_load(key, load)

    async def set(self, key: K, value: V) -> None:
        self.local.set(key, value)
        if self.remote is not None:
            await self.remote.set(key, value)

    async def set_negative(self, key: K) -> None:
        self.local.set_negative(key)
        if self.remote is not None:
            await self.remote.set_not_found(key)

    async def delete(self, key: K) -> None:
        self.local.delete(key)
        if self.remote is not None:
            await self.remote.delete(key)

    async def warm(self, pairs: Iterable[tuple[K, V]]) -> int:
        """Fill memory (not the remote tier) with ``pairs``; returns how many."""
        return self.local.warm(pairs)

    def _adopt(self, key: K, answer: V | M | None) -> V | CacheSentinel:
        if answer is None:
            return MISSING
        if answer is self._remote_not_found:
            self.local.set_negative(key)
            return NEGATIVE
        self.local.set(key, answer)  # type: ignore[arg-type]
        return answer  # type: ignore[return-value]
