"""The public names of the breaker and cache packages (a guard against accidental API changes)."""

from __future__ import annotations

import resilience.breaker
import resilience.cache


def test_breaker_public_names() -> None:
    assert resilience.breaker.__all__ == [
        "BreakerListener",
        "BreakerRecord",
        "BreakerState",
        "BreakerStore",
        "CircuitBreaker",
        "CountWindow",
        "InMemoryBreakerStore",
        "Permit",
        "TimeWindow",
        "Transition",
        "breakers",
        "default_is_failure",
        "get_breaker",
        "remove_breaker",
        "reset_all",
    ]
    for name in resilience.breaker.__all__:
        assert getattr(resilience.breaker, name) is not None


def test_cache_public_names() -> None:
    assert resilience.cache.__all__ == [
        "MISSING",
        "NEGATIVE",
        "CacheSentinel",
        "CacheStats",
        "CacheTier",
        "LookupCache",
        "Negative",
        "TieredCache",
    ]
    for name in resilience.cache.__all__:
        assert getattr(resilience.cache, name) is not None
