"""How a run issues its operations: the :class:`Dispatcher` seam of the runner.

The runner (:func:`resilience.scenario.runner.run_scenario`) owns *what* an
operation does and how it is recorded: :attr:`Dispatch.operation` calls the
target, writes the ``op`` record and gives the concurrency slot back through
its ``release`` argument. A dispatcher owns only *when and how* each arrival
starts: at ``origin_s + arrival.t_s`` on the loop's clock, at most
``concurrency`` at once (later arrivals wait, in order, and the wait shows
as lateness), and which started operations the runner tracks as in flight
(:attr:`Dispatch.track`; the runner drains them at the end).

:class:`TaskDispatcher` is the real default: it sleeps until each arrival is
due, takes a semaphore slot and runs each operation as its own task.
The simulator passes its own (:class:`resilience.sim.dispatch.EagerDispatcher`:
arrivals from timer callbacks, operations started eagerly), so both modes
share every record, phase rule and clean-up step of the runner.

A dispatcher is stateless between runs: everything a run needs comes in the
:class:`Dispatch` it is handed, so one instance may serve many runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from math import floor
from typing import Any, Protocol

from resilience.clock import Clock, SystemClock
from resilience.scenario.workload import Arrival

__all__ = ["Dispatch", "Dispatcher", "Operation", "Release", "TaskDispatcher"]

Release = Callable[[], None]
"""Gives one concurrency slot back (the operation calls it once, when the target answered)."""

Operation = Callable[[Arrival, float, Release], Coroutine[Any, Any, None]]
"""``operation(arrival, due_s, release)``: run one arrival and record it.

``due_s`` is when it was scheduled (loop-clock seconds), so the record can
show how late it started.
"""


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Everything a dispatcher needs for one run's workload."""

    schedule: Iterator[Arrival]
    """The arrivals in time order (:func:`resilience.scenario.workload.arrivals`)."""
    operation: Operation
    origin_s: float
    """Loop-clock time of ``t = 0`` of the workload (seconds)."""
    concurrency: int
    """At most this many operations run at once."""
    clock: Clock
    track: Callable[[asyncio.Task[None]], None]
    """Hand over an operation that runs as a task (the runner drains them at the end)."""


class Dispatcher(Protocol):
    """Starts every arrival of a run on schedule; see the module docstring."""

    async def dispatch(self, work: Dispatch) -> None:
        """Return once every arrival has started (operations may still be running)."""
        ...


EARLY_S = 0.0005
"""An arrival this close to its due time starts now (waking for it would make it later)."""
TIMER_STEP_S = 0.001
"""The event loop's timer resolution: epoll and libuv wait in whole milliseconds."""


class TaskDispatcher:
    """The real default: sleep until due, take a semaphore slot, one task per operation.

    Open model: an arrival is issued on schedule whether or not earlier ones
    finished; a start delayed by the concurrency limit or a busy event loop
    is recorded as lateness by the operation. Yields to the loop every 32
    arrivals when it is behind schedule, so a backlog cannot starve the
    operations it starts.

    On the real clock the loop's timers fire up to a millisecond after the
    time asked for (epoll rounds its wait up to whole milliseconds), which
    would make every arrival of a run at under 1 000/s up to 1 ms late. So
    the wait for an arrival sleeps the whole milliseconds (``TIMER_STEP_S``)
    of it — epoll keeps them, uvloop rounds a shorter sleep to none — and
    the arrival starts on waking: at most a millisecond early, never late for
    the timer's sake, and without spinning (which would burn a core at a few
    hundred arrivals a second). On another clock
    (virtual time) it sleeps exactly until due.
    """

    async def dispatch(self, work: Dispatch) -> None:
        clock = work.clock
        fine = isinstance(clock, SystemClock)
        now = clock.monotonic
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(work.concurrency)
        operation, track, origin = work.operation, work.track, work.origin_s
        for issued, arrival in enumerate(work.schedule):
            due = origin + arrival.t_s
            wait = due - now()
            if wait > EARLY_S and not fine:
                await clock.sleep_async(wait)
            elif wait > TIMER_STEP_S:
                while wait > TIMER_STEP_S:  # whole milliseconds: what both loops' timers keep
                    await asyncio.sleep(floor(wait / TIMER_STEP_S) * TIMER_STEP_S)
                    wait = due - now()
            elif issued % 32 == 0:
                await asyncio.sleep(0)
            await sem.acquire()
            track(loop.create_task(operation(arrival, due, sem.release)))
