"""The simulator's dispatcher: arrivals from timer callbacks, operations started eagerly.

The runner's default :class:`~resilience.scenario.dispatch.TaskDispatcher`
pays, per arrival, a sleep (a future and a timer), a semaphore acquire and a
new task. On virtual time that overhead is most of the cost of a lookup, so
the simulator hands the runner an :class:`EagerDispatcher` through the
runner's public seam (``run_scenario(..., dispatcher=...)``). Everything
else — the operation and its record, the fault timeline, the sampler, the
steady-state checks, the clean-up — is the runner's own.

* Each arrival fires from a timer callback at its due time; its operation
  is an eager task (:meth:`~resilience.sim.loop.VirtualEventLoop.start_task`):
  its first step runs inside the callback, so a cache hit finishes there
  without a loop iteration, and a lookup that waits is an ordinary task
  (``asyncio.timeout`` and cancellation work as on a real loop).
* When nothing else is due before the next arrival (no ready callback, no
  timer), the next arrival runs straight away after virtual time jumps to
  it (:meth:`~resilience.sim.loop.VirtualEventLoop.try_advance_to`): the
  order of events is exactly the one the timer would give, without a timer.
* The concurrency limit is a counter; arrivals over it queue in order, as
  with the runner's semaphore, and the delay shows as lateness.

So the history is the one the runner writes; what differs from the generic
path is only *when*, within the same virtual instant, simultaneous events run.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from resilience.scenario.dispatch import Dispatch
from resilience.scenario.workload import Arrival
from resilience.sim.loop import VirtualEventLoop

__all__ = ["EagerDispatcher"]


class _Slots:
    """The concurrency limit as a counter (``release`` is what operations call)."""

    __slots__ = ("free", "on_free")

    def __init__(self, limit: int) -> None:
        self.free = limit
        self.on_free: Any = None

    def release(self) -> None:
        self.free += 1
        if self.on_free is not None:
            self.on_free()


class EagerDispatcher:
    """A :class:`~resilience.scenario.dispatch.Dispatcher` for a :class:`VirtualEventLoop`."""

    async def dispatch(self, work: Dispatch) -> None:
        loop = asyncio.get_running_loop()
        if not isinstance(loop, VirtualEventLoop):
            raise TypeError("EagerDispatcher needs a VirtualEventLoop (use run_virtual)")
        schedule = work.schedule
        operation, track, origin = work.operation, work.track, work.origin_s
        slots = _Slots(work.concurrency)
        release = slots.release
        queued: collections.deque[tuple[Arrival, float]] = collections.deque()
        finished: asyncio.Future[None] = loop.create_future()
        clock_now = work.clock.monotonic
        start_task = loop.start_task
        try_advance_to = loop.try_advance_to

        def start(arrival: Arrival, due: float) -> None:
            slots.free -= 1
            task = start_task(operation(arrival, due, release))
            if not task.done():
                track(task)

        def drain_queue() -> None:
            while queued and slots.free > 0:
                arrival, due = queued.popleft()
                start(arrival, due)

        slots.on_free = drain_queue

        def issue(arrival: Arrival) -> None:
            due = origin + arrival.t_s
            if slots.free > 0 and not queued:
                start(arrival, due)
            else:
                queued.append((arrival, due))

        def fire(arrival: Arrival) -> None:
            issue(arrival)
            schedule_next()

        def schedule_next() -> None:
            # Issue arrivals inline for as long as nothing else is due before them.
            for following in schedule:
                when = origin + following.t_s
                late = when <= clock_now()
                if try_advance_to(when):
                    issue(following)
                    continue
                if late:
                    loop.call_soon(fire, following)
                else:
                    loop.call_at(when, fire, following)
                return
            if not finished.done():
                finished.set_result(None)

        schedule_next()
        try:
            await finished
            if queued:  # arrivals still waiting for a slot at the end
                emptied: asyncio.Future[None] = loop.create_future()

                def drain_then_signal() -> None:
                    drain_queue()
                    if not queued and not emptied.done():
                        emptied.set_result(None)

                slots.on_free = drain_then_signal
                await emptied
        finally:
            slots.on_free = None
