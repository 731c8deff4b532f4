"""The simulator's fast path through the scenario runner.

The runner's generic workload loop pays, per arrival, a sleep (a future and a
timer), a semaphore acquire and a new task. On virtual time that overhead is
most of the cost of a lookup, so :func:`run_scenario_fast` runs the runner's
own run object (:class:`resilience.scenario.runner._Run`: the same
operation records, fault timeline, sampler, steady-state checks, fault
clean-up and end record) with one replacement: :meth:`_FastRun.workload`
issues each arrival from a timer callback and starts its operation eagerly —
the coroutine runs at once and only becomes a task if it has to wait (a
cache hit never does). The concurrency limit is kept by a counter that
queues arrivals over the limit, in order, as the runner's semaphore does;
a start delayed by it is recorded as lateness as before.

Records and their order of fields are the runner's, so the history format
is the same; what differs from the generic path is only *when*, within the
same virtual instant, simultaneous events run.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import math
import time
from collections.abc import Callable, Coroutine, Generator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["fast_path_available", "run_scenario_fast"]

try:  # the runner's private run object; without it the generic path is used
    from resilience.scenario.runner import _Run as _RunnerRun
except ImportError:  # pragma: no cover - depends on the runner's internals
    _RunnerRun = None  # type: ignore[assignment,misc]


def fast_path_available() -> bool:
    """Whether the runner exposes what the fast path builds on."""
    return _RunnerRun is not None


class _Resume:
    """Continue a coroutine whose first step already ran and yielded ``first``."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        pending = self._first
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # CancelledError included: pass it into the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _continue(coro: Coroutine[Any, Any, Any], first: Any) -> Any:
    return await _Resume(coro, first)


def _merged_windows(faults: Sequence[Any]) -> tuple[list[float], list[float]]:
    """Start and end lists of the merged active windows of ``faults`` (``enable`` never is)."""
    spans = []
    for fault in faults:
        if fault.action == "enable":
            continue
        for i in range(fault.times):
            start = fault.at + i * (fault.every or 0.0)
            end = start + fault.duration if fault.duration is not None else math.inf
            spans.append((start, end))
    spans.sort()
    starts: list[float] = []
    ends: list[float] = []
    for start, end in spans:
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


class _Slots:
    """The concurrency limit as a counter (``release`` is what operations call)."""

    __slots__ = ("free", "on_free")

    def __init__(self, limit: int) -> None:
        self.free = limit
        self.on_free: Callable[[], None] | None = None

    def release(self) -> None:
        self.free += 1
        if self.on_free is not None:
            self.on_free()


if _RunnerRun is not None:

    class _FastRun(_RunnerRun):
        """The runner's run with timer-driven arrivals and eager operation starts."""

        def phase_at(self, t_s: float) -> str:
            """The runner's phase rule, with the fault windows merged once and bisected."""
            windows = getattr(self, "_fault_windows", None)
            if windows is None:
                windows = self._fault_windows = _merged_windows(self.scenario.faults)
            if t_s < self.scenario.workload.warmup:
                return "warmup"
            starts = windows[0]
            i = bisect.bisect_right(starts, t_s) - 1
            if i >= 0 and t_s < windows[1][i]:
                return "during"
            if self.first_fault_s is None or t_s < self.first_fault_s:
                return "before"
            return "after"

        async def workload(self) -> None:
            from resilience.scenario.workload import arrivals

            loop = asyncio.get_running_loop()
            spec = self.scenario.workload
            schedule = iter(arrivals(spec, self.stack.slugs, self.scenario.seed))
            slots = _Slots(spec.concurrency)
            self.sem = slots  # type: ignore[assignment]  # same release() contract
            queued: collections.deque[tuple[Any, float]] = collections.deque()
            in_flight = self.in_flight
            finished: asyncio.Future[None] = loop.create_future()
            w0 = self.w0
            clock_now = self.clock.monotonic

            def start(arrival: Any, due: float) -> None:
                slots.free -= 1
                coro = self.op(arrival, due)
                try:
                    first = coro.send(None)
                except StopIteration:
                    return
                except BaseException:
                    coro.close()
                    raise
                task = loop.create_task(_continue(coro, first))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)

            def drain_queue() -> None:
                while queued and slots.free > 0:
                    arrival, due = queued.popleft()
                    start(arrival, due)

            slots.on_free = drain_queue

            def fire(arrival: Any) -> None:
                due = w0 + arrival.t_s
                if slots.free > 0 and not queued:
                    start(arrival, due)
                else:
                    queued.append((arrival, due))
                schedule_next()

            def schedule_next() -> None:
                following = next(schedule, None)
                if following is None:
                    if not finished.done():
                        finished.set_result(None)
                    return
                when = w0 + following.t_s
                if when <= clock_now():
                    loop.call_soon(fire, following)
                else:
                    loop.call_at(when, fire, following)

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
            rest = w0 + spec.duration - self.clock.monotonic()
            if rest > 0:
                await self.clock.sleep_async(rest)


async def run_scenario_fast(
    scenario: Any,
    *,
    stack: Any,
    history_path: str | Path,
    progress: Callable[[Any], None] | None = None,
    gates: Sequence[Any] | None = None,
) -> Any:
    """:func:`resilience.scenario.runner.run_scenario` with the fast workload loop."""
    from resilience.scenario.history import HistoryWriter, read_history
    from resilience.scenario.metrics import evaluate_history
    from resilience.scenario.runner import RunResult, implicit_gates, run_scenario

    if _RunnerRun is None:  # pragma: no cover - depends on the runner's internals
        return await run_scenario(
            scenario, stack=stack, history_path=history_path, progress=progress, gates=gates
        )
    path = Path(history_path)
    wall0 = time.perf_counter()
    result = RunResult(scenario=scenario, history_path=path)
    writer = HistoryWriter(path)
    try:
        writer.write(
            {
                "type": "meta",
                "version": 1,
                "scenario": scenario.name,
                "seed": scenario.seed,
                "start_wall": stack.clock.wall(),
                "mode": stack.mode,
                "config": scenario.model_dump(mode="json"),
                "source": str(scenario.source) if scenario.source else None,
            }
        )
        run = _FastRun(scenario, stack, writer, progress)
        status, error = await run.execute()
        result.fault_errors = list(run.fault_errors)
    finally:
        writer.close()
    result.status, result.error = status, error
    result.wall_s = time.perf_counter() - wall0
    if status == "completed":
        chosen = list(gates) if gates is not None else scenario.scoped_gates()
        result.results = evaluate_history(read_history(path), [*chosen, *implicit_gates(scenario)])
    return result
