"""Rate gates checked with a confidence bound, not only the point estimate.

A gate such as ``breaker.opens per_hour < 1`` passes on a run with 0 opens in
ten minutes, yet that says little. :func:`rate_gate_bounds` re-checks every
*upper-bounded rate gate* of a history (aggregation ``per_s``, ``per_min``,
``per_hour`` or ``rate`` on a count metric, compared with ``<`` or ``<=``)
against the exact one-sided Poisson upper bound of the rate
(:func:`~resilience.sim.bounds.rate_upper_bound`): ``confident`` is true only
when even the bound satisfies the gate. For a zero count it also says how many
clean hours of simulation would make the claim hold at that confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from resilience.sim.bounds import poisson_upper, rate_upper_bound

__all__ = ["RateBound", "rate_gate_bounds"]

_PER_S = {"per_s": 1.0, "per_min": 60.0, "per_hour": 3600.0, "rate": 1.0}


@dataclass(frozen=True, slots=True)
class RateBound:
    """One rate gate: the observed count and window, the point rate and its bound."""

    gate: str
    count: int
    window_s: float
    rate: float
    upper: float
    confidence: float
    passes: bool
    """The gate holds on the point estimate (what the scenario's gate reports)."""
    confident: bool
    """The gate holds on the upper bound too."""
    window_needed_s: float | None
    """Clean (zero-event) seconds that would make the bound hold; ``None`` if unreachable."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "count": self.count,
            "window_s": self.window_s,
            "rate": self.rate,
            "upper": self.upper,
            "confidence": self.confidence,
            "passes": self.passes,
            "confident": self.confident,
            "window_needed_s": self.window_needed_s,
        }


def rate_gate_bounds(
    history: Any, gates: Sequence[Any], *, confidence: float = 0.95
) -> list[RateBound]:
    """Bounds for the upper-bounded rate gates among ``gates`` (``ScopedGate`` objects)."""
    from resilience.scenario.gates import windows_for
    from resilience.scenario.metrics import metrics_for, timeline_of

    timeline = timeline_of(history)
    out: list[RateBound] = []
    for scoped in gates:
        gate = getattr(scoped, "gate", scoped)
        per = _PER_S.get(gate.aggregation or "")
        if per is None or gate.op not in ("<", "<="):
            continue
        phase = getattr(scoped, "phase", None)
        if phase is not None and phase.kind == "recovery":
            continue
        try:
            windows = windows_for(phase, timeline) if phase is not None else None
        except KeyError:
            continue
        if windows is None:
            windows = [(timeline.start_s, timeline.end_s)]
        if not windows:
            continue
        metrics = metrics_for(history, windows)
        count = metrics.get(gate.metric)
        window_s = float(metrics.get("window_s") or 0.0)  # type: ignore[arg-type]
        if not isinstance(count, int) or isinstance(count, bool) or window_s <= 0:
            continue
        rate = count * per / window_s
        upper = rate_upper_bound(count, window_s, per_s=per, confidence=confidence)
        needed: float | None = None
        if gate.threshold > 0:
            needed = poisson_upper(0, confidence) * per / gate.threshold
        out.append(
            RateBound(
                gate=str(getattr(scoped, "source", gate.source)),
                count=count,
                window_s=window_s,
                rate=rate,
                upper=upper,
                confidence=confidence,
                passes=gate.holds(rate),
                confident=gate.holds(upper),
                window_needed_s=needed,
            )
        )
    return out
