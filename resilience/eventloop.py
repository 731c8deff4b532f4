"""The event loop a real run uses: uvloop when installed, else asyncio's own.

A scenario run against an HTTP target spends most of its CPU in the event
loop and the HTTP client; uvloop makes each request about 10 % cheaper
(``benchmarks/http_workload_bench.py``). ``RESILIENCE_LOOP=asyncio`` keeps
the standard loop (to rule the loop out when chasing a bug).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop`` when available and not disabled, else ``None``."""
    if os.environ.get("RESILIENCE_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """:func:`asyncio.run` on the loop of :func:`loop_factory`."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
