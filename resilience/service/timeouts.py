"""A timeout that never waits for the operation it gave up on.

:func:`asyncio.wait_for` cancels the inner task on timeout and then *waits*
for it to finish cancelling. asyncpg's cancellation path talks to the server
(a cancel request, a connection reset), so against a hung link it can take
tens of seconds: a 200 ms timeout becomes a minute. :func:`bounded` instead
cancels the operation and returns at once; the cancelled task finishes in the
background (its outcome is retrieved, so nothing is logged as lost).

Time is the event loop's, so a virtual-time loop (the simulator) drives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from resilience.errors import TimeoutFailure

__all__ = ["bounded"]

T = TypeVar("T")

_abandoned: set[asyncio.Task[object]] = set()


def _forget(task: asyncio.Task[object]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieve it: an abandoned failure is expected, not news


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def bounded(operation: Awaitable[T], timeout_s: float, *, what: str = "operation") -> T:
    """Await ``operation`` for at most ``timeout_s`` seconds, else raise :class:`TimeoutFailure`.

    ``asyncio.wait({task}, timeout=timeout_s)`` inlined for its one task (the
    lookup's database queries and the analytics writer's batches come
    through here): the same future, timer and done callback, made, cancelled
    and removed in the same order, without its checks, sets and two
    coroutines.
    """
    task: asyncio.Task[T] = asyncio.ensure_future(operation)
    loop = task.get_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    timer = loop.call_later(timeout_s, _release, waiter)

    def finished(_: object) -> None:
        timer.cancel()
        if not waiter.done():
            waiter.set_result(None)

    task.add_done_callback(finished)
    try:
        try:
            await waiter
        finally:
            timer.cancel()
            task.remove_done_callback(finished)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task.done():
        return task.result()
    task.cancel()
    _abandoned.add(task)  # kept alive until it has finished
    task.add_done_callback(_forget)
    raise TimeoutFailure(
        f"{what} did not finish within {timeout_s:.3f} s", context={"timeout_s": timeout_s}
    )
