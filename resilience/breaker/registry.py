"""Breakers by name: one instance per name per process.

``get_breaker("db")`` returns the same :class:`CircuitBreaker` every time;
the configuration keywords apply only when the first call creates it.
"""

from __future__ import annotations

import threading
from typing import Any

from resilience.breaker.breaker import CircuitBreaker

__all__ = ["breakers", "get_breaker", "remove_breaker", "reset_all"]

_breakers: dict[str, CircuitBreaker] = {}
_lock = threading.Lock()


def get_breaker(name: str, **config: Any) -> CircuitBreaker:
    """The breaker called ``name``, created with ``config`` on first use."""
    breaker = _breakers.get(name)
    if breaker is not None:
        return breaker
    with _lock:
        breaker = _breakers.get(name)
        if breaker is None:
            breaker = _breakers[name] = CircuitBreaker(name, **config)
        return breaker


def breakers() -> dict[str, CircuitBreaker]:
    """A snapshot of the registered breakers by name."""
    with _lock:
        return dict(_breakers)


def reset_all() -> None:
    """Close every registered breaker and clear its counts."""
    for breaker in breakers().values():
        breaker.reset()


def remove_breaker(name: str) -> CircuitBreaker | None:
    """Forget ``name`` (tests use this); returns the removed breaker, if any."""
    with _lock:
        return _breakers.pop(name, None)
