"""Stateful test: the lookup cache behaves like a small reference model.

Random sets (default and per-item TTL), negative entries, gets, deletes, clock
advances and sweeps run against a :class:`LookupCache` and an ``OrderedDict``
model of its contract (LRU order, TTL expiry, negative entries) under a
:class:`ManualClock`. Every answer, the LRU order of the keys held and the
statistics must agree.
"""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from resilience.cache import MISSING, NEGATIVE, CacheSentinel, LookupCache
from resilience.clock import ManualClock

KEYS = st.sampled_from("abcdefg")
TTLS = st.none() | st.sampled_from([0.5, 1.0, 3.0, 10.0])
TTL_S, NEGATIVE_TTL_S = 5.0, 2.0


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(1_000.0)
        # key -> (value or NEGATIVE, expires_at), least recently used first
        self.model: OrderedDict[str, tuple[int | CacheSentinel, float]] = OrderedDict()
        self.hits = self.negative_hits = self.misses = self.evictions = self.expirations = 0

    @initialize(max_size=st.integers(1, 5))
    def build(self, max_size: int) -> None:
        self.max_size = max_size
        self.cache: LookupCache[str, int] = LookupCache(
            max_size=max_size,
            ttl_s=TTL_S,
            negative_ttl_s=NEGATIVE_TTL_S,
            sweep_interval_s=1e9,  # sweeps only when the sweep rule says so
            clock=self.clock,
        )

    def _put(self, key: str, value: int | CacheSentinel, ttl_s: float) -> None:
        if key in self.model:
            self.model.move_to_end(key)
        elif len(self.model) >= self.max_size:
            self.model.popitem(last=False)
            self.evictions += 1
        self.model[key] = (value, self.clock.monotonic() + ttl_s)

    @rule(key=KEYS, value=st.integers(0, 9), ttl_s=TTLS)
    def set(self, key: str, value: int, ttl_s: float | None) -> None:
        self.cache.set(key, value, ttl_s=ttl_s)
        self._put(key, value, TTL_S if ttl_s is None else ttl_s)

    @rule(key=KEYS, ttl_s=TTLS)
    def set_negative(self, key: str, ttl_s: float | None) -> None:
        self.cache.set_negative(key, ttl_s=ttl_s)
        self._put(key, NEGATIVE, NEGATIVE_TTL_S if ttl_s is None else ttl_s)

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        entry = self.model.get(key)
        expected: int | CacheSentinel = MISSING
        if entry is not None:
            if self.clock.monotonic() < entry[1]:
                self.model.move_to_end(key)
                expected = entry[0]
            else:
                del self.model[key]
                self.expirations += 1
        if expected is MISSING:
            self.misses += 1
        elif expected is NEGATIVE:
            self.negative_hits += 1
        else:
            self.hits += 1
        assert self.cache.get(key) == expected

    @rule(key=KEYS)
    def peek(self, key: str) -> None:
        entry = self.model.get(key)
        fresh = entry is not None and self.clock.monotonic() < entry[1]
        assert self.cache.peek(key) == (entry[0] if fresh and entry else MISSING)
        assert (key in self.cache) is fresh

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        assert self.cache.delete(key) is (self.model.pop(key, None) is not None)

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        now = self.clock.monotonic()
        expired = [k for k, (_, exp) in self.model.items() if now >= exp]
        for key in expired:
            del self.model[key]
        self.expirations += len(expired)
        assert self.cache.sweep() == len(expired)

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "cache"):
            return
        assert self.cache.keys() == list(self.model)
        stats = self.cache.stats()
        assert (stats.hits, stats.negative_hits, stats.misses) == (
            self.hits,
            self.negative_hits,
            self.misses,
        )
        assert (stats.evictions, stats.expirations) == (self.evictions, self.expirations)
        assert stats.size == len(self.model) <= self.max_size


CacheMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCacheAgainstModel = CacheMachine.TestCase
