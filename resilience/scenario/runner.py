"""Running one scenario against a :class:`~resilience.scenario.stack.Stack`.

:func:`run_scenario` is the one entry point: steady-state check → workload
(open model) with the fault timeline applied on schedule → every fault
removed (always: also on an exception, a cancellation from Ctrl-C/SIGTERM;
each control call has a timeout) → in-flight operations drained → steady
state checked again → history closed → gates evaluated.

The loop reads time only from the stack's clock and sleeps only through it
or asyncio, all inside one event loop, so the simulator runs it unchanged on
virtual time. *When and how* each arrival starts is the one swappable step:
a :class:`~resilience.scenario.dispatch.Dispatcher` (default
:class:`~resilience.scenario.dispatch.TaskDispatcher`; the simulator passes
its own). The target is a :class:`~resilience.targets.base.Target`: the
runner turns each arrival into a :class:`~resilience.targets.base.Call` of
the named operation and records the
:class:`~resilience.targets.base.Observation` as an :class:`OpRecord`; it
knows no operation's meaning. A stack whose ``target`` is a bare reference
service (the simulator's, the fake's) is wrapped in a
:class:`~resilience.targets.reference.ReferenceTarget`. The run evaluates
the history its writer kept (equal to reading the file back).

(Over 500 lines: the run object's steps — workload, fault timeline, sampler,
scrapes, the target watch, clean-up — share its state and read best
together; the probes, the backfill steps, the result and what an operation
means (:mod:`resilience.targets`) live in their own modules.)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from resilience.scenario.backfill import BackfillSteps
from resilience.scenario.dispatch import Dispatch, Dispatcher, Release, TaskDispatcher
from resilience.scenario.faults import PhaseRule, plan
from resilience.scenario.gates import ScopedGate, parse_scoped_gate
from resilience.scenario.history import History, HistoryWriter, OpRecord
from resilience.scenario.metrics import evaluate_history
from resilience.scenario.model import FaultSpec, Scenario
from resilience.scenario.notify import (
    NotifyRecorder,
    crash_component,
    resolve_component_errors,
    uses_stream,
)
from resilience.scenario.probes import (
    breaker_opens_of,
    breaker_state_of,
    quick_breaker_state,
    steady_state_check,
)
from resilience.scenario.progress import Snapshot
from resilience.scenario.result import RunAborted, RunResult, RunSkipped
from resilience.scenario.stack import Stack
from resilience.scenario.workload import Arrival, arrivals
from resilience.targets.base import (
    Call,
    EndOfRunTarget,
    Observation,
    Target,
    TargetLoss,
    WatchedTarget,
)
from resilience.targets.reference import as_target

__all__ = [
    "ProgressSink",
    "RunAborted",
    "RunResult",
    "StackFactory",
    "implicit_gates",
    "run_scenario",
    "steady_state_check",
]

ProgressSink = Callable[[Snapshot], None]
StackFactory = Callable[[Scenario], AbstractAsyncContextManager[Stack]]

_new_op = tuple.__new__
_new_call = tuple.__new__
_NO_ANSWER = Observation("error", "", None, None, 0)
_UNFINISHED = Observation("error", "", "unfinished", None, 0)
CLEAR_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 20.0


class _TargetFailed(Exception):
    """The target was lost during the run (exited, stopped answering); the message says how."""

    def __init__(self, loss: TargetLoss) -> None:
        super().__init__(loss.detail)
        self.event = loss.event


class _BreakerRecorder:
    """Breaker listener writing exact transitions into the history."""

    def __init__(self, run: _Run) -> None:
        self._run = run

    def on_transition(self, breaker: object, transition: Any) -> None:
        del breaker
        self._run.breaker_event(
            str(getattr(transition.from_state, "value", transition.from_state)),
            str(getattr(transition.to_state, "value", transition.to_state)),
            str(getattr(transition, "reason", "")),
        )


class _Run(BackfillSteps):
    def __init__(
        self,
        scenario: Scenario,
        stack: Stack,
        writer: HistoryWriter,
        progress: ProgressSink | None,
        dispatcher: Dispatcher,
    ) -> None:
        self.scenario = scenario
        self.dispatcher = dispatcher
        self.stack = stack
        self.clock = stack.clock
        self.writer = writer
        self.progress = progress
        self.w0 = self.clock.monotonic()
        self.in_flight: set[asyncio.Task[None]] = set()
        self.fault_errors: list[str] = []
        self.applied: list[FaultSpec] = []
        self.breaker_state = "closed"
        self.breaker_from_listener = False
        self.phase = "starting"
        # counters for the live display, reset at each snapshot
        self.done = 0
        self.hits = 0
        self.fallbacks = 0
        self.valid = 0
        self.late = 0
        self.errors = 0
        self.total_done = 0
        self.idem_prefix = f"{scenario.name}-{scenario.seed}-{int(self.clock.wall() * 1000)}"
        self.phase_at = PhaseRule(scenario.faults, warmup_s=scenario.workload.warmup)
        self.target: Target = as_target(stack.target, stack.slugs)
        self.call = self.target.call
        self.live_op: str | None = getattr(self.target, "live_op", None)
        self.hit_paths: frozenset[str] = getattr(self.target, "hit_paths", frozenset())
        self.degraded_outcomes: frozenset[str] = getattr(
            self.target, "degraded_outcomes", frozenset()
        )
        self.quick_state = quick_breaker_state(self.target)
        self.scraper: Callable[[], Awaitable[Mapping[str, float]]] | None = (
            getattr(self.target, "scrape", None)
            if getattr(self.target, "metrics_path", None)
            else None
        )
        self.watcher: Callable[[], Awaitable[TargetLoss]] | None = (
            self.target.watch if isinstance(self.target, WatchedTarget) else None
        )
        self.notify = NotifyRecorder(
            self.target,
            self.writer.write,
            self.t_us,
            remote=uses_stream(g.gate.metric for g in scenario.scoped_gates()),
        )

    def t_us(self) -> int:
        return int((self.clock.monotonic() - self.w0) * 1e6)

    def breaker_event(self, from_state: str, to_state: str, reason: str = "") -> None:
        self.breaker_state = to_state
        self.writer.write(
            {
                "type": "breaker",
                "t_us": self.t_us(),
                "from": from_state,
                "to": to_state,
                "reason": reason,
            }
        )

    # -- operations ---------------------------------------------------------------

    async def op(self, arrival: Arrival, due: float, release: Release) -> None:
        """Run one arrival against the target and record it (the dispatcher's operation)."""
        clock = self.clock
        start = clock.monotonic()
        late_s = max(0.0, start - due)
        observation = _NO_ANSWER
        try:
            observation = await self.call(
                _new_call(
                    Call,
                    (
                        arrival.seq,
                        arrival.op,
                        arrival.key,
                        arrival.slug,
                        f"{self.idem_prefix}-{arrival.seq}",
                    ),
                )
            )
        except asyncio.CancelledError:
            self.record(arrival, _UNFINISHED, start, late_s)
            raise
        except Exception as exc:  # the harness must survive whatever the target does
            observation = Observation("error", "", f"{type(exc).__name__}: {exc}"[:200], None, 0)
        finally:
            release()
        self.record(arrival, observation, start, late_s)

    def record(
        self, arrival: Arrival, observation: Observation, start: float, late_s: float
    ) -> None:
        outcome, path, reason, latency_us, attempts, status = observation
        if latency_us is None:
            latency_us = int((self.clock.monotonic() - start) * 1e6)
        t_s = arrival.t_s
        self.writer.write_op(
            _new_op(  # OpRecord(...) without the named tuple's Python-level __new__
                OpRecord,
                (
                    int(t_s * 1e6),
                    arrival.op,
                    arrival.key,
                    outcome,
                    path,
                    reason,
                    latency_us,
                    attempts,
                    int(late_s * 1e6),
                    self.phase_at(t_s),
                    arrival.slug,
                    status,
                ),
            )
        )
        if self.progress is not None:  # counters for the live display only
            self.done += 1
            self.total_done += 1
            if late_s > self.scenario.workload.late_tolerance:
                self.late += 1
            if outcome == "error" or outcome == "failed":
                self.errors += 1
            if arrival.key != "invalid" and (self.live_op is None or arrival.op == self.live_op):
                self.valid += 1
                self.hits += path in self.hit_paths
                self.fallbacks += outcome in self.degraded_outcomes

    def track(self, task: asyncio.Task[None]) -> None:
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def workload(self) -> None:
        spec = self.scenario.workload
        await self.dispatcher.dispatch(
            Dispatch(
                schedule=arrivals(spec, self.stack.slugs, self.scenario.seed),
                operation=self.op,
                origin_s=self.w0,
                concurrency=spec.concurrency,
                clock=self.clock,
                track=self.track,
            )
        )
        rest = self.w0 + spec.duration - self.clock.monotonic()
        if rest > 0:
            await self.clock.sleep_async(rest)

    # -- scrapes of the target's own metrics ------------------------------------------

    async def scrape(self) -> None:
        """One scrape of the target's metrics into the history (an error is recorded)."""
        if self.scraper is None:
            return
        try:
            samples = await asyncio.wait_for(self.scraper(), 5.0)
        except Exception as exc:  # a failing scrape is data, not a crash
            self.writer.write(
                {"type": "scrape", "t_us": self.t_us(), "error": f"{type(exc).__name__}: {exc}"}
            )
            return
        self.writer.write({"type": "scrape", "t_us": self.t_us(), "samples": dict(samples)})

    # -- faults -------------------------------------------------------------------

    async def timeline(self) -> None:
        for event in plan(self.scenario.faults):
            wait = self.w0 + event.t_s - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep_async(wait)
            fault = event.fault
            base = {
                "type": "fault",
                "name": fault.name,
                "target": fault.target,
                "kind": fault.kind,
                "toxic": fault.toxic,
                "action": fault.action,
                "stream": fault.stream,
                "toxicity": fault.toxicity,
                "attributes": dict(fault.attributes),
                "occurrence": event.occurrence,
            }
            try:
                if fault.action == "crash":  # the target's own component; its end: resolved
                    if event.event == "start":
                        await crash_component(self.target, fault.component)
                    else:
                        await resolve_component_errors(self.target, fault.component)
                elif event.event == "start":
                    await self.stack.faults.apply(fault)
                    self.applied.append(fault)
                else:
                    await self.stack.faults.clear(fault)
                    with contextlib.suppress(ValueError):
                        self.applied.remove(fault)
            except Exception as exc:  # FaultControlError, or a controller bug
                message = f"{event.event} {fault.name}: {exc}"
                self.fault_errors.append(message)
                self.writer.write({**base, "t_us": self.t_us(), "event": "error", "error": message})
                continue
            record: dict[str, Any] = {**base, "t_us": self.t_us(), "event": event.event}
            if fault.action == "enable":
                record["event"] = "instant"
            self.writer.write(record)
            self.writer.flush()
            await self.scrape()  # a phase boundary

    async def clear_all(self) -> None:
        """Remove every fault; shielded and bounded so it runs even while being cancelled."""
        task = asyncio.ensure_future(self.stack.faults.clear_all())
        try:
            await asyncio.wait_for(asyncio.shield(task), CLEAR_TIMEOUT_S)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, CLEAR_TIMEOUT_S)
            raise
        except Exception as exc:
            self.fault_errors.append(f"clear all faults: {exc}")
            self.writer.write(
                {
                    "type": "fault",
                    "t_us": self.t_us(),
                    "event": "error",
                    "name": "*",
                    "error": f"clear all faults: {exc}",
                }
            )
            return
        t = self.t_us()
        for fault in list(self.applied):
            self.writer.write(
                {
                    "type": "fault",
                    "t_us": t,
                    "event": "stop",
                    "name": fault.name,
                    "target": fault.target,
                    "kind": fault.kind,
                    "toxic": fault.toxic,
                    "action": fault.action,
                    "cleared_by": "clear_all",
                }
            )
        self.applied.clear()

    # -- sampling and progress ----------------------------------------------------

    async def sampler(self) -> None:
        spec = self.scenario.workload
        interval = min(spec.sample_interval, 0.5)
        next_sample = self.clock.monotonic()
        last = self.clock.monotonic()
        previous_opens: int | None = None
        while True:
            await self.clock.sleep_async(interval)
            now = self.clock.monotonic()
            full = now >= next_sample
            stats = self.target.stats() if full or self.quick_state is None else {}
            state = self.quick_state() if self.quick_state is not None else breaker_state_of(stats)
            opens = breaker_opens_of(stats) if stats else previous_opens
            if not self.breaker_from_listener and state is not None:
                if state != self.breaker_state:
                    if (
                        previous_opens is not None
                        and opens is not None
                        and opens > previous_opens
                        and state != "open"
                    ):
                        self.breaker_event(self.breaker_state, "open", "sampled")
                    self.breaker_event(self.breaker_state, state, "sampled")
                elif (
                    previous_opens is not None and opens is not None and opens > previous_opens
                ):  # opened again (or opened and closed) between two samples
                    if state == "open":
                        self.breaker_event("open", "half_open", "sampled")
                        self.breaker_event("half_open", "open", "sampled")
                    else:
                        self.breaker_event(self.breaker_state, "open", "sampled")
                        self.breaker_event("open", state, "sampled")
            previous_opens = opens
            if full:
                await self.scrape()
                self.writer.write(
                    {
                        "type": "sample",
                        "t_us": self.t_us(),
                        "stats": stats,
                        "in_flight": len(self.in_flight),
                    }
                )
                self.writer.flush()  # a live reader (tail -f) lags by one sample at most
                next_sample = now + spec.sample_interval
            if self.progress is not None:
                elapsed = max(now - last, 1e-9)
                t_s = now - self.w0
                self.progress(
                    Snapshot(
                        scenario=self.scenario.name,
                        t_s=t_s,
                        duration_s=spec.duration,
                        phase=self.phase_at(t_s),
                        rate=self.done / elapsed,
                        hit_rate=(self.hits / self.valid) if self.valid else None,
                        fallback_rate=(self.fallbacks / self.valid) if self.valid else None,
                        breaker=state or self.breaker_state,
                        faults=tuple(f.name for f in self.applied),
                        in_flight=len(self.in_flight),
                        ops=self.total_done,
                        late=self.late,
                        errors=self.errors,
                    )
                )
            last = now
            self.done = self.hits = self.fallbacks = self.valid = 0

    async def _workload_watched(self, watching: asyncio.Future[TargetLoss] | None) -> None:
        """The workload; ends it early when the target is lost (:class:`_TargetFailed`)."""
        if watching is None:
            await self.workload()
            return
        work = asyncio.ensure_future(self.workload())
        try:
            both: set[asyncio.Future[Any]] = {work, watching}
            await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            raise
        if work.done():
            await work
            return
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        raise _TargetFailed(watching.result())

    async def drain(self) -> None:
        if not self.in_flight:
            return
        _, pending = await asyncio.wait(set(self.in_flight), timeout=DRAIN_TIMEOUT_S)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5.0)

    # -- the whole run ------------------------------------------------------------

    async def execute(self) -> tuple[str, str | None]:
        scenario = self.scenario
        steady = scenario.steady_state
        breaker = getattr(self.target, "breaker", None)
        if breaker is not None and hasattr(breaker, "add_listener"):
            breaker.add_listener(_BreakerRecorder(self))
            self.breaker_from_listener = True
        self.phase = "steady-before"
        if steady.cold_start:  # nothing touches the target before t = 0
            ok, detail = True, "cold start: no probes before the workload"
        else:
            ok, detail = await steady_state_check(
                self.stack, steady.probes, timeout_s=min(10.0, steady.timeout), target=self.target
            )
        if ok:
            _quiet_gc_start()
        self.w0 = self.clock.monotonic()
        self.writer.write(
            {"type": "steady", "t_us": 0, "when": "before", "ok": ok, "detail": detail}
        )
        if not ok:
            self.writer.write(
                {
                    "type": "end",
                    "t_us": 0,
                    "status": "aborted",
                    "workload_end_us": 0,
                    "error": f"steady state: {detail}",
                }
            )
            return "aborted", f"the steady state does not hold before the run: {detail}"
        status, error = "completed", None
        helpers = [
            asyncio.ensure_future(self.timeline()),
            asyncio.ensure_future(self.sampler()),
            asyncio.ensure_future(self.migration()),
            asyncio.ensure_future(self.notify.run()),
        ]
        watching = asyncio.ensure_future(self.watcher()) if self.watcher is not None else None
        try:
            self.phase = "workload"
            await self.scrape()
            await self._workload_watched(watching)
            await helpers[0]
            await self._finish_migration(helpers[2])
        except asyncio.CancelledError:
            status, error = "interrupted", "interrupted (Ctrl-C or SIGTERM); faults removed"
            raise
        except _TargetFailed as exc:
            status, error = "target_failed", f"{exc}; faults removed"
            self.writer.write(
                {"type": "target", "t_us": self.t_us(), "event": exc.event, "error": str(exc)}
            )
        except Exception as exc:
            status, error = "crashed", f"{type(exc).__name__}: {exc}"
        finally:
            if watching is not None:
                watching.cancel()
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            try:
                await self.clear_all()
            finally:
                end_us = self.t_us()
                await self.drain()
                await self.notify.finish()
                if status == "completed":
                    await self.scrape()
                    if isinstance(self.target, EndOfRunTarget):
                        for check in await self.target.end_of_run():
                            self.writer.write({**check, "type": "check", "t_us": self.t_us()})
                    await self.migration_final()
                    self.phase = "steady-after"
                    ok, detail = await steady_state_check(
                        self.stack,
                        steady.probes,
                        timeout_s=steady.timeout,
                        from_tail=True,
                        target=self.target,
                    )
                    self.writer.write(
                        {
                            "type": "steady",
                            "t_us": self.t_us(),
                            "when": "after",
                            "ok": ok,
                            "detail": detail,
                        }
                    )
                self.writer.write(
                    {
                        "type": "end",
                        "t_us": self.t_us(),
                        "status": status,
                        "workload_end_us": min(end_us, int(scenario.workload.duration * 1e6)),
                        "error": error,
                        "fault_errors": self.fault_errors,
                    }
                )
                self.writer.flush()
                _quiet_gc_end()
        return status, error


REAL_FLUSH_EVERY = 200
"""Operations a real run's history writer queues before it formats and writes them."""


def _quiet_gc_start() -> None:
    """Move everything alive now out of the collector's reach for the run.

    A full collection scans every tracked object; with the service, the drivers
    and pydantic loaded that is 100+ ms of a stalled event loop, which shows
    up as late starts. Frozen objects are skipped, so collections during the
    run only scan what the run allocated. (Real time spent here, before t = 0.)
    """
    gc.collect()
    gc.freeze()


def _quiet_gc_end() -> None:
    gc.unfreeze()


def implicit_gates(scenario: Scenario, history: History | None = None) -> list[ScopedGate]:
    """Gates every run has: the steady state must hold again after the faults, and
    those the target's end-of-run checks in ``history`` bring (``check`` records)."""
    gates = [parse_scoped_gate("steady_state.after == 1")] if scenario.steady_state.required else []
    checks = history.checks if history is not None else []
    gates.extend(parse_scoped_gate(text) for check in checks for text in check.get("gates", ()))
    return gates


async def run_scenario(
    scenario: Scenario,
    *,
    stack: Stack | None = None,
    stack_factory: StackFactory | None = None,
    history_path: str | Path,
    progress: ProgressSink | None = None,
    gates: Sequence[ScopedGate] | None = None,
    dispatcher: Dispatcher | None = None,
) -> RunResult:
    """Run ``scenario`` and evaluate its gates; the history goes to ``history_path``.

    Pass a started ``stack``, or a ``stack_factory`` (an async context manager
    per scenario); with neither, the real stack of the scenario's environment
    is started and torn down. ``gates`` replaces the scenario's gates.
    ``dispatcher`` decides when and how each arrival's operation starts
    (default: :class:`~resilience.scenario.dispatch.TaskDispatcher`, one task
    per operation; the simulator passes its own, see
    :mod:`resilience.scenario.dispatch`).
    Cancellation (Ctrl-C, SIGTERM) propagates after the faults are removed
    and the history is closed.
    """
    path = Path(history_path)
    wall0 = time.perf_counter()  # reporting only; the run loop uses the stack's clock
    result = RunResult(scenario=scenario, history_path=path)
    if stack is None:
        if stack_factory is None:
            from resilience.scenario.real_stack import open_real_stack

            stack_factory = open_real_stack
        from resilience.scenario.http_stack import LOG_DIR  # target.log next to the history

        LOG_DIR.set(path.parent)
        try:
            async with stack_factory(scenario) as opened:
                return await run_scenario(
                    scenario,
                    stack=opened,
                    history_path=path,
                    progress=progress,
                    gates=gates,
                    dispatcher=dispatcher,
                )
        except RunAborted as exc:
            from resilience.scenario.loader import locate_message

            result.status = "skipped" if isinstance(exc, RunSkipped) else "aborted"
            result.error = locate_message(scenario.source, str(exc))
            result.wall_s = time.perf_counter() - wall0
            return result
    # On the real clock the lines are formatted in small batches: 2 000 at once held
    # the event loop ~2 ms, which showed as late starts and in the latency tail.
    flush_every = REAL_FLUSH_EVERY if stack.mode == "real" else 2000
    writer = HistoryWriter(path, keep=True, flush_every=flush_every)
    attach = getattr(progress, "attach_history", None)  # the live view charts the history
    if attach is not None:
        attach(writer.history)
    try:
        writer.write(
            {
                "type": "meta",
                "version": 1,
                "scenario": scenario.name,
                "seed": scenario.seed,
                "start_wall": stack.clock.wall(),
                "mode": stack.mode,
                "target": str(getattr(stack.target, "kind", "reference")),
                "config": scenario.model_dump(mode="json"),
                "source": str(scenario.source) if scenario.source else None,
            }
        )
        run = _Run(scenario, stack, writer, progress, dispatcher or TaskDispatcher())
        status, error = await run.execute()
        result.fault_errors = list(run.fault_errors)
    finally:
        writer.close()
    result.status, result.error = status, error
    result.wall_s = time.perf_counter() - wall0
    if status == "completed":
        chosen = list(gates) if gates is not None else scenario.scoped_gates()
        result.history = writer.history()  # what was written, as read_history reads it
        implicit = implicit_gates(scenario, result.history)
        result.results = evaluate_history(result.history, [*chosen, *implicit])
    return result
