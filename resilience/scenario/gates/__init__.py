"""Gates: k6-style thresholds on metrics, optionally scoped to a phase of a run.

Reusable on its own: parse with :func:`parse_gate` / :func:`parse_scoped_gate`,
then call a gate with a mapping of metric name → value (a number, or latency
samples in seconds), or use :func:`evaluate_scoped` with a :class:`Timeline`.
Rate gates on small counts are judged on a 95 % Poisson upper bound
(:mod:`.confidence`). See docs/gates.md.
"""

from __future__ import annotations

from resilience.scenario.gates.confidence import (
    CONFIDENCE,
    SMALL_COUNT,
    RateBound,
    hours_needed,
    poisson_upper,
    rate_upper_bound,
)
from resilience.scenario.gates.defaults import DEFAULT_GATES, default_gates
from resilience.scenario.gates.evaluate import (
    GateResult,
    GateStatus,
    Metrics,
    MetricValue,
    aggregate,
    check,
    evaluate,
    percentile,
)
from resilience.scenario.gates.grammar import (
    Gate,
    GateSyntaxError,
    Phase,
    ScopedGate,
    parse_gate,
    parse_phase,
    parse_scoped_gate,
)
from resilience.scenario.gates.phases import Timeline, Window, evaluate_scoped, windows_for

__all__ = [
    "CONFIDENCE",
    "DEFAULT_GATES",
    "SMALL_COUNT",
    "Gate",
    "GateResult",
    "GateStatus",
    "GateSyntaxError",
    "MetricValue",
    "Metrics",
    "Phase",
    "RateBound",
    "ScopedGate",
    "Timeline",
    "Window",
    "aggregate",
    "check",
    "default_gates",
    "evaluate",
    "evaluate_scoped",
    "hours_needed",
    "parse_gate",
    "parse_phase",
    "parse_scoped_gate",
    "percentile",
    "poisson_upper",
    "rate_upper_bound",
    "windows_for",
]
