"""Checking gates against a plain mapping of metric name → value.

A value is a number (a rate, a ratio or a count) or a sequence of samples
(latencies in seconds). Aggregations apply to samples: ``avg``, ``min``,
``max``, ``med``, ``p(N)`` (exact, nearest rank), ``count``, ``sum`` and
``rate`` (count per second of ``window_s``). ``per_s``/``per_min``/``per_hour``
turn a count (or the number of samples) into a rate over the mapping's
``window_s`` entry (seconds observed). A gate with no aggregation on samples
means ``avg``.

A metric that is absent fails the gate (the message suggests close names);
a metric with no samples, or a ratio with no denominator (``None``), gives
the status ``nodata`` (NO DATA): a gate that saw nothing is not a pass, so it
fails the run unless the gate allows it (``… if any`` or ``allow_no_data``,
:attr:`ScopedGate.allow_no_data`).

An upper-limited rate gate (``per_s``/``per_min``/``per_hour``/``rate`` with
``<`` or ``<=``) on a small count is judged on its 95 % Poisson upper bound
(:mod:`resilience.scenario.gates.confidence`): ``pass`` when the bound meets
the limit, ``fail`` when the estimate misses it, and in between
``inconclusive`` (there is data, too little to judge at 95 %: the run was too
short to show the limit; it does not fail a run). Its
:attr:`GateResult.bound` holds the count, the estimate, the bound and which
one the verdict used.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from resilience.scenario.gates.confidence import PER_SECONDS, RateBound, rate_bound
from resilience.scenario.gates.grammar import Gate, ScopedGate

__all__ = [
    "GateResult",
    "GateStatus",
    "MetricValue",
    "Metrics",
    "aggregate",
    "check",
    "evaluate",
    "no_data",
    "percentile",
]

MetricValue = float | int | Sequence[float] | None
Metrics = Mapping[str, MetricValue]
GateStatus = Literal["pass", "fail", "nodata", "inconclusive"]

WINDOW_KEY = "window_s"


@dataclass(frozen=True, slots=True)
class GateResult:
    """The verdict of one gate: status, observed value (base units) and a message.

    ``observed`` is the estimate; for a rate gate, ``bound`` adds its 95 %
    upper bound and says which of the two the verdict used.
    """

    gate: ScopedGate
    status: GateStatus
    observed: float | None
    message: str
    bound: RateBound | None = None

    @property
    def passed(self) -> bool:
        """Whether the run may pass: ``pass``, ``inconclusive``, or ``nodata`` on a gate
        that allows it (``if any``); a gate that saw no data otherwise fails the run."""
        if self.status == "nodata":
            return self.gate.allow_no_data
        return self.status != "fail"

    @property
    def inconclusive(self) -> bool:
        """A rate gate whose estimate meets the target but whose upper bound does not yet."""
        return self.status == "inconclusive"

    @property
    def label(self) -> str:
        """``PASS``, ``FAIL``, ``NO DATA``, ``NO DATA (allowed)`` or ``INCONCLUSIVE``."""
        if self.status == "nodata" and self.gate.allow_no_data:
            return "NO DATA (allowed)"
        return {
            "pass": "PASS",
            "fail": "FAIL",
            "nodata": "NO DATA",
            "inconclusive": "INCONCLUSIVE",
        }[self.status]

    @property
    def bound_text(self) -> str:
        """The upper bound as the gate writes values, ``""`` for gates without one."""
        if self.bound is None:
            return ""
        return f"≤ {self.gate.gate.format_value(self.bound.upper)}"

    @property
    def verdict_on(self) -> str:
        """``estimate`` or ``upper bound``: what the verdict compared with the target."""
        if self.bound is not None and self.bound.verdict_on == "upper_bound":
            return "upper bound"
        return "estimate"

    @property
    def observed_text(self) -> str:
        """The observed value; for a recovery gate the time it took (``recovered in 3.0s``)."""
        if self.observed is None:
            return "no data"
        if self.gate.phase.kind == "recovery":
            return f"recovered in {self.observed:.1f}s"
        return self.gate.gate.format_value(self.observed)

    @property
    def target_text(self) -> str:
        """The rule; for a recovery gate the rule and the time limit (``< 0.02 within 8s``)."""
        if self.gate.phase.kind == "recovery":
            return f"{self.gate.gate.target} again within {self.gate.phase.within_s:g}s"
        return self.gate.gate.target

    def to_dict(self) -> dict[str, object]:
        return {
            "gate": self.gate.source,
            "metric": self.gate.gate.subject,
            "phase": str(self.gate.phase),
            "status": self.status,
            "passed": self.passed,
            "allow_no_data": self.gate.allow_no_data,
            "observed": self.observed,
            "observed_text": self.observed_text,
            "target": self.target_text,
            "message": self.message,
            "inconclusive": self.inconclusive,
            "bound": None if self.bound is None else self.bound.to_dict(),
            "verdict_on": self.verdict_on,
        }


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """The exact ``q``-th percentile (nearest rank) of already sorted samples."""
    if not sorted_samples:
        raise ValueError("percentile of no samples")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_samples)))
    return float(sorted_samples[min(rank, len(sorted_samples)) - 1])


def aggregate(gate: Gate, value: MetricValue, window_s: float | None) -> float | None:
    """The number ``gate`` compares, or ``None`` when there is no data."""
    agg = gate.aggregation
    per = {"per_s": 1.0, "per_min": 60.0, "per_hour": 3600.0, "rate": 1.0}
    if value is None:
        return None
    if isinstance(value, int | float):
        if agg in per:
            if not window_s:
                return None
            return float(value) * per[agg] / window_s
        if agg in (None, "avg", "min", "max", "med", "sum", "count", "p"):
            return float(value)
        return float(value)
    samples = value
    if agg == "count":
        return float(len(samples))
    if agg in per:
        if not window_s:
            return None
        return len(samples) * per[agg] / window_s
    if not samples:
        return None
    if agg == "sum":
        return float(math.fsum(samples))
    if agg in (None, "avg"):
        return math.fsum(samples) / len(samples)
    if agg == "min":
        return float(min(samples))
    if agg == "max":
        return float(max(samples))
    ordered = sorted(samples)
    if agg == "med":
        return percentile(ordered, 50)
    return percentile(ordered, gate.percentile or 50)


def check(gate: Gate | ScopedGate, metrics: Metrics) -> GateResult:
    """Evaluate one gate against ``metrics`` (phase scoping is the caller's job)."""
    scoped = gate if isinstance(gate, ScopedGate) else ScopedGate(gate)
    g = scoped.gate
    if g.metric not in metrics:
        hint = difflib.get_close_matches(g.metric, [k for k in metrics if k != WINDOW_KEY], n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        return GateResult(scoped, "fail", None, f"{g.metric}: no such metric{did}")
    window = metrics.get(WINDOW_KEY)
    observed = aggregate(
        g, metrics[g.metric], float(window) if isinstance(window, int | float) else None
    )
    if observed is None:
        return no_data(scoped, f"{g.subject}: no data to check {g.target}")
    bound = _rate_bound(g, metrics[g.metric], window)
    if bound is not None:
        return _check_rate(scoped, observed, bound)
    if g.holds(observed):
        return GateResult(
            scoped, "pass", observed, f"{g.subject} {g.target}: observed {g.format_value(observed)}"
        )
    return GateResult(
        scoped,
        "fail",
        observed,
        f"{g.subject} must be {g.target} but was {g.format_value(observed)}",
    )


def no_data(scoped: ScopedGate, why: str) -> GateResult:
    """The ``nodata`` result of ``scoped`` for the reason ``why``; the message says
    whether it fails the run."""
    if scoped.allow_no_data:
        return GateResult(scoped, "nodata", None, f"{why} (allowed: 'if any')")
    return GateResult(
        scoped,
        "nodata",
        None,
        f"{why}; a gate that saw no data fails the run (add 'if any' if it may be empty)",
    )


def _rate_bound(gate: Gate, value: MetricValue, window: MetricValue) -> RateBound | None:
    """The bound of an upper-limited rate gate on a count; ``None`` for other gates."""
    per = PER_SECONDS.get(gate.aggregation or "")
    if per is None or gate.op not in ("<", "<=") or not isinstance(window, int | float):
        return None
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    count = value if isinstance(value, int) else len(value)
    if window <= 0:
        return None
    return rate_bound(count, float(window), per_s=per, limit=gate.threshold)


def _check_rate(scoped: ScopedGate, observed: float, bound: RateBound) -> GateResult:
    g = scoped.gate
    seen = (
        f"{bound.count} events in {_span(bound.window_s)}: estimate {g.format_value(observed)}, "
        f"{bound.confidence:.0%} upper bound {g.format_value(bound.upper)}"
    )
    if not g.holds(observed):
        return GateResult(
            scoped,
            "fail",
            observed,
            f"{g.subject} must be {g.target} but was {g.format_value(observed)} ({seen})",
            bound,
        )
    if bound.verdict_on == "estimate" or g.holds(bound.upper):
        on = "bound" if bound.verdict_on == "upper_bound" else "estimate"
        return GateResult(
            scoped, "pass", observed, f"{g.subject} {g.target} on the {on}: {seen}", bound
        )
    needed = (
        f"; a clean run of {_span(bound.window_needed_s)} would show it"
        if bound.window_needed_s is not None
        else ""
    )
    return GateResult(
        scoped,
        "inconclusive",
        observed,
        f"{g.subject} {g.target} not shown at {bound.confidence:.0%}: {seen}{needed}",
        bound,
    )


def _span(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 120:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def evaluate(gates: Iterable[Gate | ScopedGate], metrics: Metrics) -> list[GateResult]:
    """Check every gate against one mapping (all phases treated as ``all``)."""
    return [check(g, metrics) for g in gates]
