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
  ``sweep_interval_s`` (default 300 s) by the first set, miss or negative hit
  after that interval (positive hits skip the check to stay cheap): a lazy
  sweep driven by the clock, no background thread.
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
``popitem``) atomic for keys hashed in C (str, int, bytes, tuples of them; a
key with a Python ``__hash__`` such as ``UUID`` can be interrupted inside the
hash, which dict lookups tolerate), and on the eval loop switching threads
only at calls and backward jumps, so a counter ``+= 1`` is not interleaved.
Multi-step writers tolerate races: a ``move_to_end`` on a key another thread
just removed is ignored; threads inserting new keys at the same instant may
leave the cache a few entries above ``max_size`` until the next insert trims
it (or below it, after concurrent evictions); and a sweep racing with a
``set`` of the same key may drop the new entry (the next lookup misses and
reloads).
Loads and sweeps use a lock; the protected loader never runs under it.

Each entry is a tuple in one ``OrderedDict`` (see ``_Entry``); every
operation reads the clock once. ``get`` is a per-instance closure (see
:func:`_hit_path`): a positive hit is one dict lookup, one clock read, one
comparison, one ``move_to_end`` and one counter increment; negative entries
are shaped so that they fail the hit test and take a slower branch.
All time comes from the clock; for the :data:`~resilience.clock.SYSTEM_CLOCK`
the cache calls ``time.monotonic`` through a module global instead of the
clock's Python method (freezegun patches that global too).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from time import monotonic as _monotonic
from typing import Generic, TypeAlias, TypeVar

from resilience.cache.results import MISSING, NEGATIVE, CacheSentinel, CacheStats, Negative
from resilience.clock import SYSTEM_CLOCK, Clock, SystemClock
from resilience.errors import NotFound

# MISSING, NEGATIVE and the types are re-exported for callers importing them from here
__all__ = ["MISSING", "NEGATIVE", "CacheSentinel", "CacheStats", "LookupCache", "Negative"]

K = TypeVar("K")
V = TypeVar("V")

_NEVER_FRESH = -math.inf
# An entry is (value, expires_at) or, for a negative entry,
# (NEGATIVE, _NEVER_FRESH, expires_at): the hit path tests only `now < entry[1]`,
# so negative entries take the slow path and positive hits need no extra check.
# `entry[-1]` is the expiry of both kinds.
_Entry: TypeAlias = tuple[V, float] | tuple[Negative, float, float]


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
        "_data_get",
        "_evictions",
        "_expirations",
        "_flights",
        "_hit_counter",
        "_load_errors",
        "_loads",
        "_lock",
        "_max_size",
        "_misses",
        "_move_to_end",
        "_negative_hits",
        "_negative_ttl_s",
        "_next_sweep_at",
        "_now",
        "_stale_hits",
        "_stale_s",
        "_sweep_interval_s",
        "_system_clock",
        "_tasks",
        "_ttl_s",
        "get",
        "name",
    )

    get: Callable[[K], V | CacheSentinel]
    """``get(key)``: the fresh value, :data:`NEGATIVE`, or :data:`MISSING`; a hit
    becomes the most recently used entry. (A per-instance closure: see
    :func:`_hit_path`.)"""

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
        self._data: OrderedDict[K, _Entry[V]] = OrderedDict()
        # bound once: saves two attribute lookups per hit
        self._data_get = self._data.get
        self._move_to_end = self._data.move_to_end
        # the system clock is read through time.monotonic directly (a C call, no
        # Python frame); freezegun still sees it because it patches this module's
        # `_monotonic` global like any other reference to time.monotonic
        self._system_clock = type(clock) is SystemClock  # not subclasses: they may override
        self._lock = threading.Lock()
        self._flights: dict[K, _Flight[V]] = {}
        self._aflights: dict[K, asyncio.Future[V | Negative]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_sweep_at = self._time() + self._sweep_interval_s
        self._negative_hits = self._stale_hits = self._misses = 0
        self._loads = self._load_errors = self._evictions = self._expirations = 0
        hit_path = _hit_path(self)
        self.get = hit_path[0]
        self._hit_counter = hit_path[1]

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

    def _get_miss(self) -> CacheSentinel:
        self._misses += 1
        if self._time() >= self._next_sweep_at:
            self.sweep()
        return MISSING

    def _get_slow(self, key: K, entry: _Entry[V]) -> V | CacheSentinel:
        """A negative entry, or an expired one (the clock only moves forward)."""
        now = self._time()
        if now < entry[-1]:
            try:  # noqa: SIM105 (see _hit_path)
                self._move_to_end(key)
            except KeyError:
                pass
            self._negative_hits += 1
            result: V | CacheSentinel = NEGATIVE
        else:
            self._expire(key, entry, now)
            self._misses += 1
            result = MISSING
        if now >= self._next_sweep_at:
            self.sweep()
        return result

    def peek(self, key: K) -> V | CacheSentinel:
        """Like :meth:`get` but without touching LRU order or statistics."""
        entry = self._data_get(key)
        if entry is not None and self._time() < entry[-1]:
            return entry[0]
        return MISSING

    def __contains__(self, key: object) -> bool:
        entry = self._data_get(key)  # type: ignore[arg-type]
        return entry is not None and self._time() < entry[-1]

    def __len__(self) -> int:
        """Entries held, including expired ones not yet swept."""
        return len(self._data)

    def keys(self) -> list[K]:
        """Keys from least to most recently used (a snapshot)."""
        return list(self._data)

    # -- writes ----------------------------------------------------------------

    def set(self, key: K, value: V, *, ttl_s: float | None = None) -> None:
        """Store ``value`` for ``ttl_s`` (default: the cache's) as the most recent entry."""
        now = _monotonic() if self._system_clock else self._now()
        self._put(key, (value, now + (self._ttl_s if ttl_s is None else ttl_s)), now)

    def set_negative(self, key: K, *, ttl_s: float | None = None) -> None:
        """Remember that ``key`` does not exist, for ``ttl_s`` (default ``negative_ttl_s``)."""
        now = self._time()
        ttl = self._negative_ttl_s if ttl_s is None else ttl_s
        self._put(key, (NEGATIVE, _NEVER_FRESH, now + ttl), now)

    def _put(self, key: K, entry: _Entry[V], now: float) -> None:
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
        data[key] = entry
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
            now = self._time()
            self._next_sweep_at = now + self._sweep_interval_s
            data = self._data
            stale_s = self._stale_s
            removed = 0
            for key, entry in list(data.items()):
                # pop, not del: a lock-free delete may have removed it meanwhile
                if now >= entry[-1] + stale_s and data.get(key) is entry:
                    removed += data.pop(key, None) is not None
            self._expirations += removed
            return removed

    def _expire(self, key: K, entry: _Entry[V], now: float) -> None:
        """Drop an expired entry found by a lookup (kept while it may still be served stale)."""
        if now < entry[-1] + self._stale_s:
            return
        with self._lock:
            if self._data.get(key) is entry and self._data.pop(key, None) is not None:
                self._expirations += 1

    # -- statistics ---------------------------------------------------------------

    def stats(self) -> CacheStats:
        return CacheStats(
            hits=self._hit_counter(False),
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
        self._hit_counter(True)
        self._negative_hits = self._stale_hits = self._misses = 0
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
        entry = self._data_get(key)
        if entry is not None and self._time() < entry[-1] + self._stale_s:
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

    def _time(self) -> float:
        return _monotonic() if self._system_clock else self._now()

    def __repr__(self) -> str:
        return f"LookupCache(name={self.name!r}, size={len(self._data)}, max_size={self._max_size})"


_HitPath: TypeAlias = tuple[Callable[[K], V | CacheSentinel], Callable[[bool], int]]


def _hit_path(cache: LookupCache[K, V]) -> _HitPath[K, V]:
    """Build ``cache.get`` as a closure, plus a reader (and resetter) of its hit count.

    A closure reads its collaborators from cells instead of attributes and
    counts hits in a cell, which makes a hit ~10 % cheaper than a method: the
    difference between meeting and missing the benchmark target. Everything
    but a fresh positive hit goes to the cache's methods.
    """
    data_get = cache._data.get
    move_to_end = cache._data.move_to_end
    slow = cache._get_slow
    miss = cache._get_miss
    hits = 0

    def hit_counter(reset: bool) -> int:
        nonlocal hits
        value = hits
        if reset:
            hits = 0
        return value

    if cache._system_clock:

        def get(key: K) -> V | CacheSentinel:
            nonlocal hits
            entry = data_get(key)
            if entry is None:
                return miss()
            if _monotonic() < entry[1]:  # negative entries never pass: their [1] is -inf
                try:  # noqa: SIM105 (contextlib.suppress costs ~100 ns on the hit path)
                    move_to_end(key)
                except KeyError:  # removed by another thread meanwhile; still a hit
                    pass
                hits += 1
                return entry[0]
            return slow(key, entry)

        return get, hit_counter

    now_fn = cache._now

    def get_with_clock(key: K) -> V | CacheSentinel:
        nonlocal hits
        entry = data_get(key)
        if entry is None:
            return miss()
        if now_fn() < entry[1]:
            try:  # noqa: SIM105 (see above)
                move_to_end(key)
            except KeyError:
                pass
            hits += 1
            return entry[0]
        return slow(key, entry)

    return get_with_clock, hit_counter
