"""resilience: a resilience testing and chaos-simulation harness.

The primitives most users need are re-exported here. They load lazily (on
first attribute access), so ``import resilience.proxy`` or the pytest plugin
stay cheap and pull in nothing else. (``classify`` is not re-exported: its
name is taken by the ``resilience.classify`` module.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resilience.breaker import CircuitBreaker, get_breaker
    from resilience.cache import LookupCache
    from resilience.clock import SYSTEM_CLOCK, Clock, ManualClock
    from resilience.detector import FailureDetector
    from resilience.errors import (
        CircuitOpenError,
        InvalidInput,
        InvalidSlug,
        NotFound,
        ResilienceError,
    )
    from resilience.metrics import MetricsRecorder
    from resilience.retry import Retry, RetryBudget

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "SYSTEM_CLOCK": "resilience.clock",
    "CircuitBreaker": "resilience.breaker",
    "CircuitOpenError": "resilience.errors",
    "Clock": "resilience.clock",
    "FailureDetector": "resilience.detector",
    "InvalidInput": "resilience.errors",
    "InvalidSlug": "resilience.errors",
    "LookupCache": "resilience.cache",
    "ManualClock": "resilience.clock",
    "MetricsRecorder": "resilience.metrics",
    "NotFound": "resilience.errors",
    "ResilienceError": "resilience.errors",
    "Retry": "resilience.retry",
    "RetryBudget": "resilience.retry",
    "get_breaker": "resilience.breaker",
}

__all__ = [
    "SYSTEM_CLOCK",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "FailureDetector",
    "InvalidInput",
    "InvalidSlug",
    "LookupCache",
    "ManualClock",
    "MetricsRecorder",
    "NotFound",
    "ResilienceError",
    "Retry",
    "RetryBudget",
    "get_breaker",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'resilience' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
