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
from dataclasses import dataclass, field

from resilience.scenario.gates.evaluate import GateResult, Metrics, check, no_data
from resilience.scenario.gates.grammar import Phase, ScopedGate

__all__ = ["Timeline", "Window", "evaluate_scoped", "windows_for"]

Window = tuple[float, float]
"""``(start_s, end_s)``, start inclusive, end exclusive."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """The measured part of a run and its fault windows.

    ``start_s`` is the end of warm-up, ``end_s`` the end of the workload;
    ``faults`` maps each fault name to its windows (a repeated fault has several).
    """

    start_s: float
    end_s: float
    faults: Mapping[str, Sequence[Window]] = field(default_factory=dict)

    def fault_windows(self, name: str | None = None) -> list[Window]:
        """Windows of ``name`` (or of every fault), clipped to the measured part, sorted."""
        if name is not None and name not in self.faults:
            hint = difflib.get_close_matches(name, list(self.faults), n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            known = ", ".join(self.faults) or "none"
            raise KeyError(f"no fault named {name!r}{did} (faults: {known})")
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


def evaluate_scoped(
    gates: Iterable[ScopedGate],
    timeline: Timeline,
    metrics_for: Callable[[Sequence[Window]], Metrics],
    *,
    step_s: float = 1.0,
    min_window_s: float = 1.0,
) -> list[GateResult]:
    """Evaluate each gate on the windows of its phase.

    A ``recovery within D`` gate is checked on consecutive ``step_s`` buckets
    from the end of the fault; the recovery time is the start of the first
    bucket after which every bucket with data holds. It passes when that time
    is at most D, and reports it in seconds.
    """
    results: list[GateResult] = []
    for gate in gates:
        try:
            windows = windows_for(gate.phase, timeline)
        except KeyError as exc:
            results.append(GateResult(gate, "fail", None, str(exc.args[0])))
            continue
        if gate.phase.kind == "recovery":
            results.append(_recovery(gate, timeline, metrics_for, step_s, min_window_s))
            continue
        if not windows:
            results.append(no_data(gate, f"phase {gate.phase} is empty in this run"))
            continue
        results.append(check(gate, metrics_for(windows)))
    return results


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
