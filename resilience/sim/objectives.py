"""What tuning optimises and what it must respect: objectives and gate constraints.

An objective is any metric a gate can name, with the gate's aggregation and
optionally its phase — the left-hand side of a gate: ``fallback_rate``,
``lookup p(95)``, ``cache.hit_rate``, ``breaker.opens per_hour``,
``lookup.db p(99) @ during pg-down``. It is measured on a history exactly as
the gate would measure it (:mod:`resilience.scenario.gates`), in the gate's
base units (seconds for latencies, ratios for rates).

The scenario's gates are the constraints: :func:`violation` turns a gate
result into a number that is 0 when the gate holds and grows with how far it
misses (optuna's ``constraints_func`` convention: feasible when every value
is ≤ 0).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from resilience.scenario.gates import ScopedGate, parse_scoped_gate

__all__ = [
    "ALIASES",
    "DEFAULT_HTTP_OBJECTIVES",
    "DEFAULT_OBJECTIVES",
    "REFERENCE_OPERATIONS",
    "Objective",
    "ObjectiveError",
    "measure",
    "parse_objective",
    "target_of",
    "violation",
]

ALIASES = {
    "p50_ms": "lookup p(50)",
    "p95_ms": "lookup p(95)",
    "p99_ms": "lookup p(99)",
    "hit_rate": "cache.hit_rate",
    "opens": "breaker.opens",
    "opens_per_hour": "breaker.opens per_hour",
}
"""Names of the earlier ``tune`` table, accepted for the gate expressions they stand for."""

DEFAULT_OBJECTIVES = (
    ("fallback_rate", False),
    ("lookup p(99)", False),
    ("breaker.opens per_hour", False),
)
"""``(expression, maximize)`` used when the command line names no objective."""

DEFAULT_HTTP_OBJECTIVES = (
    ("http.error_rate", False),
    ("http p(99)", False),
)
"""The defaults for a team's own HTTP service: what its clients saw."""

REFERENCE_OPERATIONS = ("lookup", "job")
_NUMBER_AGGREGATIONS = ("count", "rate", "per_s", "per_min", "per_hour")


class ObjectiveError(ValueError):
    """An objective that names no known metric or does not parse (the message says why)."""


@dataclass(frozen=True, slots=True)
class Objective:
    """One metric to minimise or maximise; ``scoped`` carries metric, aggregation and phase."""

    text: str
    maximize: bool
    scoped: ScopedGate
    timed: bool = False
    """Whether values are seconds (shown in milliseconds)."""

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        """``minimize`` or ``maximize`` (optuna's words)."""
        return "maximize" if self.maximize else "minimize"

    @property
    def is_duration(self) -> bool:
        """Whether values are seconds (shown in milliseconds)."""
        return self.timed

    def format(self, value: float | None) -> str:
        """``value`` for people: milliseconds, percent or a plain number."""
        if value is None:
            return "–"
        if self.is_duration:
            return f"{value * 1000:.2f} ms"
        if self.scoped.gate.metric.endswith("_rate") and self.scoped.gate.aggregation is None:
            return f"{value * 100:.2f}%"
        return f"{value:.4g}"

    def worse(self, a: float, b: float) -> float:
        """The worse of two values in this objective's direction."""
        return min(a, b) if self.maximize else max(a, b)

    def signed(self, value: float) -> float:
        """``value`` turned so that smaller is better."""
        return -value if self.maximize else value


def target_of(scenario: Any) -> tuple[str, tuple[str, ...]]:
    """``(kind, operations)`` of ``scenario``'s target, for :func:`parse_objective`."""
    if scenario.target_kind == "reference":
        return "reference", REFERENCE_OPERATIONS
    return scenario.target_kind, tuple(r.name for r in scenario.workload.requests)


def _timed(scoped: ScopedGate, kind: str, operations: Collection[str]) -> bool:
    """Latency samples: an operation's (or ``http``'s, ``late``) with a sample aggregation."""
    gate = scoped.gate
    roots = {"late", *operations} | ({"http"} if kind != "reference" else set())
    root, _, rest = gate.metric.partition(".")
    counted = gate.metric == "lookup.attempts" or rest == "count" or rest.endswith("_rate")
    return root in roots and not counted and gate.aggregation not in _NUMBER_AGGREGATIONS


def parse_objective(
    text: str,
    *,
    maximize: bool,
    kind: str = "reference",
    operations: Collection[str] = REFERENCE_OPERATIONS,
) -> Objective:
    """Parse ``metric [aggregation] [@ phase]``; unknown metrics get a did-you-mean.

    Known: what a gate of a ``kind`` target with ``operations`` may name
    (:func:`target_of` gives both for a scenario).
    """
    from resilience.scenario.metrics import known_metric, metric_names

    source = ALIASES.get(text.strip(), text.strip()) if kind == "reference" else text.strip()
    head, at, phase = source.partition("@")
    if not head.strip():
        example = "lookup p(95)" if kind == "reference" else "http p(95)"
        raise ObjectiveError(f"objective {text!r}: name a metric, e.g. {example!r}")
    try:
        scoped = parse_scoped_gate(f"{head.strip()} < 0", phase.strip() if at else None)
    except ValueError as exc:
        first = str(exc).splitlines()[0].replace(" < 0", "")
        raise ObjectiveError(f"objective {text!r}: {first}") from None
    metric = scoped.gate.metric
    if not known_metric(metric, kind, tuple(operations)):
        known = sorted(n for n in metric_names(kind) | set(operations) if n != "window_s")
        aliases = list(ALIASES) if kind == "reference" else []
        hint = difflib.get_close_matches(metric, [*known, *aliases], n=1, cutoff=0.5)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ObjectiveError(
            f"objective {text!r}: unknown metric {metric!r}{did} "
            f"(metrics: {', '.join(known)}; with an aggregation such as p(95), per_hour)"
        )
    return Objective(
        text=source.strip(),
        maximize=maximize,
        scoped=scoped,
        timed=_timed(scoped, kind, operations),
    )


def measure(objectives: Sequence[Objective], history: Any) -> list[float | None]:
    """Each objective's value on ``history`` (``None`` when its phase has no data)."""
    from resilience.scenario.gates import aggregate, windows_for
    from resilience.scenario.metrics import metrics_for, timeline_of

    timeline = timeline_of(history)
    cache: dict[tuple[tuple[float, float], ...], dict[str, Any]] = {}
    out: list[float | None] = []
    for objective in objectives:
        try:
            windows = tuple(windows_for(objective.scoped.phase, timeline))
        except KeyError:
            out.append(None)
            continue
        if not windows:
            out.append(None)
            continue
        if windows not in cache:
            cache[windows] = metrics_for(history, list(windows))
        metrics = cache[windows]
        window_s = metrics.get("window_s")
        out.append(
            aggregate(
                objective.scoped.gate,
                metrics.get(objective.scoped.gate.metric),
                float(window_s) if isinstance(window_s, int | float) else None,
            )
        )
    return out


def violation(result: Any) -> float:
    """0 when the gate result lets the run pass, else how far it misses (> 0).

    The same verdict as ``resilience run`` (:attr:`GateResult.passed`): a gate
    that saw no data misses (1) unless it allows it (``if any``); an
    inconclusive rate gate holds. The miss of a failed gate is relative to
    the threshold (``|observed − threshold| / |threshold|``), at least 0.001
    so a bare miss still counts; a failure without an observed value is 1.
    """
    if result.passed:
        return 0.0
    observed = result.observed
    if result.status == "nodata" or observed is None:
        return 1.0
    threshold = float(result.gate.gate.threshold)
    scale = abs(threshold) if abs(threshold) > 1e-12 else 1.0
    return max(abs(float(observed) - threshold) / scale, 0.001)
