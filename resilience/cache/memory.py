"""The in-memory lookup cache: TTL + LRU, negative entries, single-flight loads.

Contract
--------
- At most ``max_size`` entries (default 100); a set that overflows evicts the
  least recently used entry (a successful ``get`` or a ``set`` makes an entry
  the most recently used).
- Each entry expires ``ttl_s`` seconds after it was set (default 1800 s), or
  after its own ``ttl_s`` given to :meth:`LookupCache.set`.
- :meth:`LookupCache.set_negative` remembers that a key does *not* exist, for
  ``negative_ttl_s`` (default 60 s); lookups then return :data:`NEGATIVE`,
  distinct from :data:`MISSING` (nothing known).
- Expired entries are removed when touched, and all of them every
  ``sweep_interval_s`` (default 300 s) by the first ``get`` or ``set`` after
  that interval: a lazy sweep driven by the clock, no background thread.
- :meth:`LookupCache.get_or_load` / :meth:`LookupCache.aget_or_load` call the
  loader at most once per key at a time: N concurrent misses (threads, or
  tasks) cause one load and all N get its result or its exception. A loader
  signals "not found" by returning :data:`NEGATIVE` or raising
  :class:`~resilience.errors.NotFound`; either is cached as a negative entry.
  Other exceptions are not cached.
- With ``stale_s > 0`` (stale-while-revalidate), an entry up to ``stale_s``
  past its expiry is still served by the ``*_or_load`` methods while one
  refresh runs: the async form refreshes in a background task; the sync form
  lets the first caller refresh inline while concurrent callers get the stale
  value. Plain :meth:`LookupCache.get` never returns stale values.

Concurrency and speed
---------------------
The hit path takes no lock. It relies on CPython's GIL making each single
``OrderedDict`` operation (``get``, ``move_to_end``, ``__setitem__``,
``popitem``) atomic for keys with C-level ``__hash__``/``__eq__`` (str, int,
UUID's int-backed hash is Python-level but side-effect free), and on the eval
loop only switching threads at calls and backward jumps, so ``self.x += 1`` on
an int is not interleaved. Multi-step writers tolerate races: a ``move_to_end``
on a key another thread just removed is ignored; threads inserting new keys at
the same instant may leave the cache a few entries above ``max_size`` until
the next insert trims it (or below it, after concurrent evictions); and a sweep
racing with a ``set`` of the same key may drop the new entry (the next lookup
misses and reloads).
Loads and sweeps use a lock; the protected loader never runs under it.

Each entry is a ``(value, expires_at)`` tuple in one ``OrderedDict``; every
operation reads the clock once. All time comes from ``clock.monotonic()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from resilience.cache.results import MISSING, NEGATIVE, CacheSentinel, CacheStats, Negative
from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.errors import NotFound

# MISSING, NEGATIVE and the types are re-exported for callers importing them from here
__all__ = ["MISSING", "NEGATIVE", "CacheSentinel", "CacheStats", "LookupCache", "Negative"]

K = TypeVar("K")
V = TypeVar("V")


class _Flight(Generic[V]):
    """One in-progress sync load that other threads wait for."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: V | Negative = NEGATIVE
        self.error: BaseException | None = None


class LookupCache(Generic[K, V]):
    """TTL + LRU cache with negative entries and single-flight loading.

    Durations are float seconds. See the module docstring for the contract.
    """

    __slots__ = (
        "__weakref__",
        "_aflights",
        "_clock",
        "_data",
        "_evictions",
        "_expirations",
        "_flights",
        "_hits",
        "_load_errors",
        "_loads",
        "_lock",
        "_max_size",
        "_misses",
        "_negative_hits",
        "_negative_ttl_s",
        "_next_sweep_at",
        "_now",
        "_stale_hits",
        "_stale_s",
        "_sweep_interval_s",
        "_tasks",
        "_ttl_s",
        "name",
    )

    def __init__(
        self,
        *,
        max_size: int = 100,
        ttl_s: float = 1800.0,
        negative_ttl_s: float = 60.0,
        sweep_interval_s: float = 300.0,
        stale_s: float = 0.0,
        clock: Clock = SYSTEM_CLOCK,
        name: str = "cache",
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        for label, value in (
            ("ttl_s", ttl_s),
            ("negative_ttl_s", negative_ttl_s),
            ("sweep_interval_s", sweep_interval_s),
        ):
            if not value > 0:
                raise ValueError(f"{label} must be > 0, got {value}")
        if stale_s < 0:
            raise ValueError(f"stale_s must be >= 0, got {stale_s}")
        self.name = name
        self._max_size = max_size
        self._ttl_s = float(ttl_s)
        self._negative_ttl_s = float(negative_ttl_s)
        self._sweep_interval_s = float(sweep_interval_s)
        self._stale_s = float(stale_s)
        self._clock = clock
        self._now = clock.monotonic
        self._data: OrderedDict[K, tuple[V | Negative, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: dict[K, _Flight[V]] = {}
        self._aflights: dict[K, asyncio.Future[V | Negative]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_sweep_at = self._now() + self._sweep_interval_s
        self._hits = self._negative_hits = self._stale_hits = self._misses = 0
        self._loads = self._load_errors = self._evictions = self._expirations = 0

    # -- configuration -------------------------------------------------------------

    @property
    def max_size(self) -> int:
        return self._max_size

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    @property
    def negative_ttl_s(self) -> float:
        return self._negative_ttl_s

    # -- reads -----------------------------------------------------------------

    def get(self, key: K) -> V | CacheSentinel:
        """The fresh value, :data:`NEGATIVE`, or :data:`MISSING`; a hit becomes most recent."""
        entry = self._data.get(key)
        if entry is not None:
            now = self._now()
            if now < entry[1]:
                try:  # noqa: SIM105 (contextlib.suppress costs ~100 ns on the hit path)
                    self._data.move_to_end(key)
                except KeyError:  # removed by another thread meanwhile; still a hit
                    pass
                value = entry[0]
                if value is NEGATIVE:
                    self._negative_hits += 1
                else:
                    self._hits += 1
                if now >= self._next_sweep_at:
                    self.sweep()
                return value
            self._expire(key, entry, now)
        else:
            now = self._now()
        self._misses += 1
        if now >= self._next_sweep_at:
            self.sweep()
        return MISSING

    def peek(self, key: K) -> V | CacheSentinel:
        """Like :meth:`get` but without touching LRU order or statistics."""
        entry = self._data.get(key)
        if entry is not None and self._now() < entry[1]:
            return entry[0]
        return MISSING

    def __contains__(self, key: object) -> bool:
        entry = self._data.get(key)  # type: ignore[arg-type]
        return entry is not None and self._now() < entry[1]

    def __len__(self) -> int:
        """Entries held, including expired ones not yet swept."""
        return len(self._data)

    def keys(self) -> list[K]:
        """Keys from least to most recently used (a snapshot)."""
        return list(self._data)

    # -- writes ----------------------------------------------------------------

    def set(self, key: K, value: V, *, ttl_s: float | None = None) -> None:
        """Store ``value`` for ``ttl_s`` (default: the cache's) as the most recent entry."""
        self._put(key, value, self._ttl_s if ttl_s is None else ttl_s)

    def set_negative(self, key: K, *, ttl_s: float | None = None) -> None:
        """Remember that ``key`` does not exist, for ``ttl_s`` (default ``negative_ttl_s``)."""
        self._put(key, NEGATIVE, self._negative_ttl_s if ttl_s is None else ttl_s)

    def _put(self, key: K, value: V | Negative, ttl_s: float) -> None:
        now = self._now()
        data = self._data
        if key in data:
            try:  # noqa: SIM105 (hot path: suppress() is a context manager call)
                data.move_to_end(key)
            except KeyError:  # removed by another thread meanwhile
                pass
        else:
            # a loop, not an if: threads racing to insert may overshoot max_size by
            # a few entries; the next insert trims back
            while len(data) >= self._max_size:
                try:
                    data.popitem(last=False)
                except KeyError:  # emptied by another thread meanwhile
                    break
                self._evictions += 1
        data[key] = (value, now + ttl_s)
        if now >= self._next_sweep_at:
            self.sweep()

    def warm(self, pairs: Iterable[tuple[K, V]], *, ttl_s: float | None = None) -> int:
        """Store many ``(key, value)`` pairs; returns how many were given."""
        count = 0
        for key, value in pairs:
            self.set(key, value, ttl_s=ttl_s)
            count += 1
        return count

    def delete(self, key: K) -> bool:
        """Remove ``key``; True if an entry (fresh or not) was there."""
        return self._data.pop(key, None) is not None

    def clear(self) -> None:
        """Remove every entry (statistics are kept)."""
        self._data.clear()

    def sweep(self) -> int:
        """Remove every expired entry now; returns how many were removed."""
        with self._lock:
            now = self._now()
            self._next_sweep_at = now + self._sweep_interval_s
            data = self._data
            stale_s = self._stale_s
            removed = 0
            for key, entry in list(data.items()):
                if now >= entry[1] + stale_s and data.get(key) is entry:
                    del data[key]
                    removed += 1
            self._expirations += removed
            return removed

    def _expire(self, key: K, entry: tuple[V | Negative, float], now: float) -> None:
        """Drop an expired entry found by a lookup (kept while it may still be served stale)."""
        if now < entry[1] + self._stale_s:
            return
        with self._lock:
            if self._data.get(key) is entry:
                del self._data[key]
                self._expirations += 1

    # -- statistics ---------------------------------------------------------------

    def stats(self) -> CacheStats:
        return CacheStats(
            hits=self._hits,
            negative_hits=self._negative_hits,
            stale_hits=self._stale_hits,
            misses=self._misses,
            loads=self._loads,
            load_errors=self._load_errors,
            evictions=self._evictions,
            expirations=self._expirations,
            size=len(self._data),
            max_size=self._max_size,
        )

    def reset_stats(self) -> None:
        self._hits = self._negative_hits = self._stale_hits = self._misses = 0
        self._loads = self._load_errors = self._evictions = self._expirations = 0

    # -- loading (sync) --------------------------------------------------------------

    def get_or_load(
        self,
        key: K,
        loader: Callable[[], V | Negative],
        *,
        ttl_s: float | None = None,
    ) -> V | Negative:
        """The cached answer, or the loader's, loading at most once per key at a time."""
        found = self.get(key)
        if found is not MISSING:
            return found
        stale = self._stale_value(key)
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if stale is not MISSING:
                self._stale_hits += 1
                return stale
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            # a load that finished between our miss and our registration already stored it
            found = self.peek(key)
            if found is not MISSING:
                flight.value = found
                return found
            value = self._run_loader(key, loader, ttl_s)
            flight.value = value
            return value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _run_loader(
        self, key: K, loader: Callable[[], V | Negative], ttl_s: float | None
    ) -> V | Negative:
        self._loads += 1
        try:
            value = loader()
        except NotFound:
            value = NEGATIVE
        except BaseException:
            self._load_errors += 1
            raise
        self._store(key, value, ttl_s)
        return value

    def _store(self, key: K, value: V | Negative, ttl_s: float | None) -> None:
        if value is NEGATIVE:
            self.set_negative(key)
        else:
            self.set(key, value, ttl_s=ttl_s)

    def _stale_value(self, key: K) -> V | CacheSentinel:
        """The value of an expired entry still inside the stale window, else MISSING."""
        if not self._stale_s:
            return MISSING
        entry = self._data.get(key)
        if entry is not None and self._now() < entry[1] + self._stale_s:
            return entry[0]
        return MISSING

    # -- loading (async) --------------------------------------------------------------

    async def aget_or_load(
        self,
        key: K,
        loader: Callable[[], Awaitable[V | Negative]],
        *,
        ttl_s: float | None = None,
    ) -> V | Negative:
        """Async :meth:`get_or_load`: concurrent tasks missing the same key share one load."""
        found = self.get(key)
        if found is not MISSING:
            return found
        stale = self._stale_value(key)
        if stale is not MISSING:
            self._stale_hits += 1
            if key not in self._aflights:
                self._start_refresh(key, loader, ttl_s)
            return stale
        while True:
            future = self._aflights.get(key)
            if future is None or future.get_loop() is not asyncio.get_running_loop():
                break
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if future.cancelled() and task is not None and not task.cancelling():
                    continue  # the loading task was cancelled, not us: take over
                raise
        return await self._alead(key, self._register(key), loader, ttl_s)

    def _register(self, key: K) -> asyncio.Future[V | Negative]:
        """Announce an async load of ``key`` (synchronously, so no second one starts)."""
        future: asyncio.Future[V | Negative] = asyncio.get_running_loop().create_future()
        self._aflights[key] = future
        return future

    async def _alead(
        self,
        key: K,
        future: asyncio.Future[V | Negative],
        loader: Callable[[], Awaitable[V | Negative]],
        ttl_s: float | None,
    ) -> V | Negative:
        try:
            found = self.peek(key)
            if found is not MISSING:
                value: V | Negative = found
            else:
                self._loads += 1
                try:
                    value = await loader()
                except NotFound:
                    value = NEGATIVE
                except asyncio.CancelledError:
                    future.cancel()
                    raise
                except BaseException as exc:
                    self._load_errors += 1
                    future.set_exception(exc)
                    future.exception()  # mark retrieved: there may be no waiter
                    raise
                self._store(key, value, ttl_s)
            future.set_result(value)
            return value
        finally:
            if self._aflights.get(key) is future:
                del self._aflights[key]
            if not future.done():
                future.cancel()

    def _start_refresh(
        self,
        key: K,
        loader: Callable[[], Awaitable[V | Negative]],
        ttl_s: float | None,
    ) -> None:
        future = self._register(key)

        async def refresh() -> None:
            with contextlib.suppress(Exception):  # a failed refresh keeps serving stale
                await self._alead(key, future, loader, ttl_s)

        task = asyncio.get_running_loop().create_task(refresh())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __repr__(self) -> str:
        return f"LookupCache(name={self.name!r}, size={len(self._data)}, max_size={self._max_size})"
