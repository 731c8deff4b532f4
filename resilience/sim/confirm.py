"""Confirmation on the real stack: the best tuned configurations, run for real.

:func:`confirm` re-runs each chosen configuration through the same path as
``resilience run`` (:func:`resilience.scenario.runner.run_scenario` on the
scenario's backend, local by default) for every scenario, each run in a
process and an environment of its own, several at once (:func:`default_jobs`),
and puts each objective side by side: the simulated spread over seeds, the
real value and the real value's own 90 % noise interval — for a percentile the
distribution-free order-statistics interval of
:func:`resilience.sim.calibrate.quantile_interval`, for a rate over lookups
the normal interval of a binomial proportion. A simulated mean inside it (or a
simulated spread overlapping it) *agrees*: a second real run could differ as
much. :func:`recommendation` picks the first configuration that holds every
gate for real and writes the ``service:`` block to paste.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

__all__ = [
    "Confirmation",
    "RealSide",
    "confirm",
    "default_jobs",
    "real_interval",
    "recommendation",
]

_Z90 = 1.6448536269514722


def real_interval(objective: Any, history: Any) -> tuple[float, float] | None:
    """The 90 % noise interval of ``objective`` on a real history (``None``: not known)."""
    from resilience.scenario.gates import windows_for
    from resilience.scenario.metrics import metrics_for, timeline_of
    from resilience.sim.calibrate import quantile_interval

    try:
        windows = windows_for(objective.scoped.phase, timeline_of(history))
    except KeyError:
        return None
    if not windows:
        return None
    metrics = metrics_for(history, windows)
    gate = objective.scoped.gate
    value = metrics.get(gate.metric)
    if isinstance(value, list) and gate.aggregation in ("p", "med"):
        q = 50.0 if gate.aggregation == "med" else float(gate.percentile or 50.0)
        return quantile_interval(sorted(value), q)
    if isinstance(value, float) and gate.metric.endswith("_rate") and gate.aggregation is None:
        lookups = metrics.get("lookup")
        n = len(lookups) if isinstance(lookups, list) else 0
        if n == 0:
            return None
        half = _Z90 * math.sqrt(max(value * (1 - value), 0.25 / n) / n)
        return (max(0.0, value - half), min(1.0, value + half))
    return None


@dataclass
class RealSide:
    """One real run of one configuration on one scenario."""

    scenario: str
    status: str
    error: str | None = None
    values: list[float | None] = field(default_factory=list)
    intervals: list[tuple[float, float] | None] = field(default_factory=list)
    gates: list[tuple[str, str, str]] = field(default_factory=list)
    """(gate, verdict as ``resilience run`` prints it — PASS, FAIL, NO DATA, NO DATA
    (allowed), INCONCLUSIVE —, observed as the gate writes it)."""
    passed: bool = False
    history: str = ""


@dataclass
class Confirmation:
    """A tuned configuration, its simulated figures and its real runs."""

    candidate: Any
    objectives: list[Any]
    real: list[RealSide] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.real) and all(r.passed for r in self.real)

    def verdict(self, index: int, side: RealSide) -> str:
        """agrees / differs / – for objective ``index`` on one scenario."""
        sim = self.candidate.spread(index, side.scenario)
        real = side.values[index] if index < len(side.values) else None
        interval = side.intervals[index] if index < len(side.intervals) else None
        if sim is None or real is None or interval is None:
            return "–"
        lo, hi = interval
        if lo <= sim.mean <= hi:
            return "agrees"
        if sim.low <= hi and sim.high >= lo:
            return "agrees (spread)"
        return "differs"

    def lines(self) -> list[list[str]]:
        """Table rows: number, scenario, metric, simulated, real, interval, verdict."""
        from resilience.sim.report import spread_text

        rows = []
        for side in self.real:
            if side.status != "completed":
                rows.append(
                    [
                        str(self.candidate.number),
                        side.scenario,
                        "run",
                        "",
                        side.status,
                        side.error or "",
                        "–",
                    ]
                )
                continue
            for i, o in enumerate(self.objectives):
                interval = side.intervals[i]
                rows.append(
                    [
                        str(self.candidate.number),
                        side.scenario,
                        o.text,
                        spread_text(o, self.candidate.spread(i, side.scenario)),
                        o.format(side.values[i]),
                        "–"
                        if interval is None
                        else f"{o.format(interval[0])}…{o.format(interval[1])}",
                        self.verdict(i, side),
                    ]
                )
            missed: dict[str, list[str]] = {}
            for g, label, _ in side.gates:
                if label in ("FAIL", "NO DATA"):
                    missed.setdefault(label, []).append(g)
            real = "; ".join(f"{label} {', '.join(gs)}" for label, gs in sorted(missed.items()))
            rows.append(
                [
                    str(self.candidate.number),
                    side.scenario,
                    "gates",
                    "PASS",
                    "PASS" if side.passed else real or "FAIL",
                    "",
                    "",
                ]
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.candidate.number,
            "params": self.candidate.params,
            "passed": self.passed,
            "real": [
                {
                    "scenario": r.scenario,
                    "status": r.status,
                    "error": r.error,
                    "passed": r.passed,
                    "values": r.values,
                    "intervals": r.intervals,
                    "gates": [{"gate": g, "label": s, "observed": o} for g, s, o in r.gates],
                    "history": r.history,
                }
                for r in self.real
            ],
        }


STOP_TIMEOUT_S = 30.0
"""Seconds a stopped real run has to tear its stack down before it is killed (its
environment's reaper then stops the servers)."""


def _real_side(
    scenario: Any, params: dict[str, Any], objectives: Sequence[Any], path: Path
) -> RealSide:
    """One real run of ``params`` on ``scenario``, its gates and objectives."""
    from resilience.sim.objectives import measure
    from resilience.sim.real_run import run_real, with_params

    try:
        result = run_real(with_params(scenario, params), path)
    except Exception as exc:  # the stack did not start: report it, go on
        return RealSide(scenario.name, "crashed", f"{type(exc).__name__}: {exc}")
    side = RealSide(scenario.name, result.status, result.error, history=str(path))
    side.gates = [(str(r.gate), r.label, r.observed_text) for r in result.results]
    side.passed = bool(result.passed)
    if result.status == "completed" and result.history is not None:
        side.values = measure(objectives, result.history)
        side.intervals = [real_interval(o, result.history) for o in objectives]
    return side


def _child(
    conn: Connection, scenario: Any, params: dict[str, Any], objectives: Sequence[Any], path: Path
) -> None:
    """A real run's own process: its :class:`RealSide` goes back through ``conn``.

    Ctrl-C is the parent's to handle (it stops each run with SIGTERM, once), so
    a run is never cancelled twice in the middle of its tear-down.
    """
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        conn.send(_real_side(scenario, params, objectives, path))
    except (KeyboardInterrupt, asyncio.CancelledError):  # stopped by the parent: torn down
        pass
    finally:
        conn.close()


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM raises :class:`SystemExit` meanwhile (main thread, default handler only),
    so that a stopped ``tune`` stops its real runs first."""

    def leave(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        yield
        return
    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _real_runs(
    runs: Sequence[tuple[Any, dict[str, Any], Path, str]],
    objectives: Sequence[Any],
    jobs: int,
    say: Any,
) -> list[RealSide]:
    """Each run (scenario, params, history, label) in a process of its own, ``jobs`` at
    once; their sides in ``runs``' order. However this ends, no run's process is left."""
    forks = "fork" in multiprocessing.get_all_start_methods()  # no re-import per run
    ctx = multiprocessing.get_context("fork") if forks else multiprocessing.get_context("spawn")
    sides: list[RealSide | None] = [None] * len(runs)
    running: dict[Connection, tuple[int, BaseProcess]] = {}

    def collect() -> None:
        for conn in wait(list(running)):
            assert isinstance(conn, Connection)
            index, process = running.pop(conn)
            try:
                sides[index] = conn.recv()
            except EOFError:  # the process died without an answer
                process.join()
                sides[index] = RealSide(
                    runs[index][0].name,
                    "crashed",
                    f"the run's process ended with exit code {process.exitcode}",
                )
            conn.close()
            process.join()

    try:
        with _sigterm_exits():
            for index, (scenario, params, path, label) in enumerate(runs):
                while len(running) >= jobs:
                    collect()
                if say is not None:
                    say(f"confirming {label} on {scenario.name} (real, local backend) …")
                receive, send = ctx.Pipe(duplex=False)
                process = ctx.Process(
                    target=_child,
                    args=(send, scenario, params, list(objectives), path),
                    name=f"confirm {label} {scenario.name}",
                )
                process.start()
                send.close()
                running[receive] = (index, process)
            while running:
                collect()
    finally:
        left = [proc for _, proc in running.values()]
        for proc in left:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the run is cancelled and tears down
        for proc in left:
            proc.join(STOP_TIMEOUT_S)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in running:
            conn.close()
    done = [side for side in sides if side is not None]
    assert len(done) == len(runs)
    return done


def confirm(
    scenarios: Sequence[Any],
    candidates: Sequence[Any],
    objectives: Sequence[Any],
    output: Path,
    *,
    jobs: int = 0,
    say: Any = None,
) -> list[Confirmation]:
    """Run each candidate on every scenario for real; histories go to ``output``.

    Every run is a process of its own with its own environment (servers on
    free ports, files in a directory of their own); up to ``jobs`` run at once
    (0: :func:`default_jobs`).
    """
    output.mkdir(parents=True, exist_ok=True)
    out = [Confirmation(candidate, list(objectives)) for candidate in candidates]
    runs = [
        (
            scenario,
            dict(conf.candidate.params),
            output / f"confirm-{conf.candidate.number}-{scenario.name}.jsonl",
            f"#{conf.candidate.number}",
        )
        for conf in out
        for scenario in scenarios
    ]
    sides = iter(_real_runs(runs, objectives, jobs or default_jobs(len(runs)), say))
    for conf in out:
        conf.real = [next(sides) for _ in scenarios]
    return out


def default_jobs(runs: int) -> int:
    """Real runs at once by default: one per core, at most ``runs``.

    A real run mostly waits (03-postgres-down at 200/s takes a third of a
    core), so more would fit, but they then wake up late when the machine is
    busy: on 2 cores shared with other work, 3 at once held every gate of
    03-postgres-down and tripled its lookups' p(99), 2 at once moved it by a
    quarter (docs/simulation.md). A confirmation is there to measure the
    real stack, so one run per core.
    """
    return max(1, min(runs, os.cpu_count() or 1))


def recommendation(confirmations: Sequence[Confirmation]) -> tuple[Confirmation | None, str]:
    """The first configuration holding every gate for real, and its ``service:`` block."""
    from resilience.sim.real_run import settings_block

    for conf in confirmations:
        if conf.passed:
            return conf, settings_block(conf.candidate.params)
    return None, ""
