"""Circuit breaker: states, sliding windows, pluggable shared state, a registry.

See :mod:`resilience.breaker.breaker` for the contract and ``docs/primitives.md``
for usage.
"""

from resilience.breaker.breaker import CircuitBreaker, Permit, default_is_failure
from resilience.breaker.registry import breakers, get_breaker, remove_breaker, reset_all
from resilience.breaker.state import BreakerListener, BreakerRecord, BreakerState, Transition
from resilience.breaker.store import BreakerStore, InMemoryBreakerStore
from resilience.breaker.window import CountWindow, TimeWindow

__all__ = [
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
