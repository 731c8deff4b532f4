"""Phase scoping: which time windows of a run a gate is evaluated on.

The caller describes the run as a :class:`Timeline` (seconds since the start
of the workload) and supplies ``metrics_for(windows)``, a function giving the
metrics mapping of the operations that started inside those windows. This
module never sees a history, so any harness that can slice its measurements
by time can reuse it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from resilience.scenario.gates.evaluate import GateResult, Metrics, check, no_data
from resilience.scenario.gates.grammar import BREAKER_STATES, Gate, Phase, ScopedGate

__all__ = ["Timeline", "Window", "evaluate_scoped", "windows_for"]

Window = tuple[float, float]
"""``(start_s, end_s)``, start inclusive, end exclusive."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """The measured part of a run and its fault windows.

    ``start_s`` is the end of warm-up, ``end_s`` the end of the workload;
    ``faults`` maps each fault name to its windows (a repeated fault has several,
    one per occurrence); ``states`` maps a breaker state to the windows the
    breaker spent in it (a phase may name one where no fault has that name).
    """

    start_s: float
    end_s: float
    faults: Mapping[str, Sequence[Window]] = field(default_factory=dict)
    states: Mapping[str, Sequence[Window]] = field(default_factory=dict)

    def occurrences(self, name: str) -> list[Window]:
        """Each window of fault (or breaker state) ``name`` on its own, clipped, in order."""
        if name not in self.faults and name in BREAKER_STATES:
            source = self.states.get(name, ())
        else:
            self._known(name)
            source = self.faults[name]
        spans = [(max(a, self.start_s), min(b, self.end_s)) for a, b in sorted(source)]
        return [s for s in spans if s[1] > s[0]]

    def _known(self, name: str) -> None:
        if name not in self.faults:
            hint = difflib.get_close_matches(name, list(self.faults), n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            known = ", ".join(self.faults) or "none"
            raise KeyError(f"no fault named {name!r}{did} (faults: {known})")

    def fault_windows(self, name: str | None = None) -> list[Window]:
        """Windows of ``name`` (or of every fault), clipped to the measured part, sorted."""
        if name is not None and name not in self.faults and name in BREAKER_STATES:
            return _merge(self.occurrences(name))
        if name is not None:
            self._known(name)
        source = [self.faults[name]] if name is not None else list(self.faults.values())
        spans = [(max(a, self.start_s), min(b, self.end_s)) for ws in source for a, b in ws]
        return _merge([s for s in spans if s[1] > s[0]])


def _merge(spans: Iterable[Window]) -> list[Window]:
    merged: list[Window] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def windows_for(phase: Phase, timeline: Timeline) -> list[Window]:
    """The windows ``phase`` covers (``recovery`` covers what follows its fault)."""
    full = (timeline.start_s, timeline.end_s)
    if phase.kind == "all":
        return [full]
    if phase.kind == "each":
        return timeline.occurrences(phase.fault or "")
    if phase.occurrence is not None and phase.fault is not None:
        every = timeline.occurrences(phase.fault)
        if phase.occurrence > len(every):
            raise KeyError(
                f"{phase.fault}#{phase.occurrence}: {phase.fault!r} has {len(every)} "
                "occurrence(s) in the measured part of this run"
            )
        return [every[phase.occurrence - 1]]
    faults = timeline.fault_windows(phase.fault)
    if phase.kind == "during":
        return faults
    if not faults:
        return [full] if phase.kind == "before" else []
    if phase.kind == "before":
        first = faults[0][0]
        return [(timeline.start_s, first)] if first > timeline.start_s else []
    last = faults[-1][1]
    return [(last, timeline.end_s)] if last < timeline.end_s else []


MetricsWhere = Callable[[Sequence[Window], Mapping[str, str]], Metrics]
"""``metrics_where(windows, where)``: the metrics of the operations whose fields equal
``where`` (label filters such as ``lookup{reason=connection}``)."""


def evaluate_scoped(
    gates: Iterable[ScopedGate],
    timeline: Timeline,
    metrics_for: Callable[[Sequence[Window]], Metrics],
    *,
    step_s: float = 1.0,
    min_window_s: float = 1.0,
    metrics_where: MetricsWhere | None = None,
) -> list[GateResult]:
    """Evaluate each gate on the windows of its phase.

    A ``recovery within D`` gate is checked on consecutive ``step_s`` buckets
    from the end of the fault; the recovery time is the start of the first
    bucket after which every bucket with data holds. It passes when that time
    is at most D, and reports it in seconds. An ``each`` gate is checked on
    every window of its phase on its own: it fails when one fails (the
    message names which), and shows the worst value. A gate with label
    filters is checked on ``metrics_where``; a phase comparison first
    computes its reference in the reference's phase.
    """
    measure = _Measure(metrics_for, metrics_where)
    results: list[GateResult] = []
    for gate in gates:
        try:
            windows = windows_for(gate.phase, timeline)
            resolved = _resolve(gate, timeline, windows, measure)
            if isinstance(resolved, GateResult):
                results.append(resolved)
                continue
            if gate.phase.kind == "recovery":
                metrics = measure.bind(resolved.gate)
                result = _recovery(resolved, timeline, metrics, step_s, min_window_s)
            elif not windows:
                result = no_data(gate, f"phase {gate.phase} is empty in this run")
            elif gate.phase.kind == "each":
                result = _each(resolved, windows, measure)
            else:
                result = check(resolved, measure(resolved.gate, windows))
        except (KeyError, ValueError) as exc:
            results.append(GateResult(gate, "fail", None, str(exc.args[0])))
            continue
        results.append(_as(gate, result))
    return results


class _Measure:
    """Metrics of windows, with a gate's label filters applied (memoised by the caller)."""

    def __init__(self, metrics_for: Callable[[Sequence[Window]], Metrics], where: Any) -> None:
        self.metrics_for = metrics_for
        self.where: MetricsWhere | None = where

    def __call__(self, gate: Gate, windows: Sequence[Window]) -> Metrics:
        if not gate.labels:
            return self.metrics_for(windows)
        plain = self.metrics_for(windows)
        if gate.labelled in plain:  # a labelled series (prom.x{status="500"})
            return {gate.metric: plain[gate.labelled], "window_s": plain.get("window_s")}
        if self.where is None:
            raise ValueError(f"{gate.labelled}: label filters are not available here")
        return self.where(windows, dict(gate.labels))

    def bind(self, gate: Gate) -> Callable[[Sequence[Window]], Metrics]:
        return lambda windows: self(gate, windows)


def _resolve(
    gate: ScopedGate, timeline: Timeline, windows: Sequence[Window], measure: _Measure
) -> ScopedGate | GateResult:
    """``gate`` with a phase comparison's threshold computed (factor × reference)."""
    ref = gate.gate.ref
    if ref is None:
        return gate
    ref_phase = ref.phase or gate.phase
    ref_windows = (
        windows if ref.phase is None and gate.phase.kind not in ("recovery", "each") else None
    )
    if ref_windows is None:
        ref_windows = windows_for(ref_phase if ref.phase else Phase("before"), timeline)
    if not ref_windows:
        return no_data(gate, f"the reference phase {ref_phase} is empty in this run")
    reference = check(ref.gate, measure(ref.gate, ref_windows))
    if reference.observed is None:
        return no_data(gate, f"the reference {ref} has no data ({reference.message})")
    threshold = gate.gate.threshold * reference.observed
    concrete = replace(gate.gate, threshold=threshold, ref=None, unit=ref.gate.unit)
    return replace(gate, gate=concrete)


def _as(original: ScopedGate, result: GateResult) -> GateResult:
    """``result`` shown as ``original`` (a resolved comparison keeps its written form)."""
    if result.gate is original:
        return result
    ref = original.gate.ref
    message = result.message
    if ref is not None:
        value = result.gate.gate.format_value(result.gate.gate.threshold)
        message = f"{message} (target {original.gate.target} = {value})"
    return replace(result, gate=original, message=message)


def _each(gate: ScopedGate, windows: Sequence[Window], measure: _Measure) -> GateResult:
    """Every window on its own: the first failure, else the worst value that held."""
    judged = [(w, check(gate, measure(gate.gate, [w]))) for w in windows]
    with_data = [(w, r) for w, r in judged if r.status != "nodata"]
    if not with_data:
        return no_data(gate, f"no data in any window of {gate.phase}")
    for i, ((a, b), r) in enumerate(judged, 1):
        if not r.passed:
            where = f"window {i} of {len(judged)} ({a:.1f}–{b:.1f} s)"
            return replace(r, message=f"{where}: {r.message}")
    upper = gate.gate.op in ("<", "<=")
    observed = [r.observed for _, r in with_data if r.observed is not None]
    worst = (max if upper else min)(observed) if observed else None
    return GateResult(
        gate,
        "pass",
        worst,
        f"{gate.gate.subject} {gate.gate.target} in each of {len(with_data)} window(s) "
        f"with data (worst {gate.gate.format_value(worst) if worst is not None else '-'})",
    )


def _recovery(
    gate: ScopedGate,
    timeline: Timeline,
    metrics_for: Callable[[Sequence[Window]], Metrics],
    step_s: float,
    min_window_s: float,
) -> GateResult:
    """Recovered at the start of the first ``step_s`` bucket after which every bucket holds."""
    faults = timeline.fault_windows(gate.phase.fault)
    limit = gate.phase.within_s or 0.0
    if not faults:
        return no_data(gate, "no fault ended in this run, nothing to recover from")
    ref = faults[-1][1]
    buckets: list[tuple[float, GateResult]] = []
    t = ref
    while t < timeline.end_s - 1e-9:
        stop = min(t + step_s, timeline.end_s)
        if stop - t >= min(min_window_s, step_s) - 1e-9 or not buckets:
            buckets.append((t, check(gate, metrics_for([(t, stop)]))))
        t += step_s
    held = [(start, r) for start, r in buckets if r.status != "nodata"]
    if not held:
        return no_data(gate, "no data after the fault to judge recovery")
    last_failure = max((i for i, (_, r) in enumerate(held) if r.status == "fail"), default=-1)
    if last_failure == len(held) - 1:
        return GateResult(
            gate,
            "fail",
            None,
            f"{gate.gate.subject} never got back to {gate.gate.target} after the fault "
            f"ended at {ref:.1f}s (last: {held[-1][1].message})",
        )
    took = 0.0 if last_failure < 0 else held[last_failure + 1][0] - ref
    if took <= limit + 1e-9:
        return GateResult(
            gate,
            "pass",
            took,
            f"{gate.gate.subject} {gate.gate.target} from {took:.1f}s after the fault on "
            f"(limit {limit:g}s)",
        )
    return GateResult(
        gate,
        "fail",
        took,
        f"{gate.gate.subject} {gate.gate.target} only from {took:.1f}s after the fault on; "
        f"must recover within {limit:g}s",
    )
