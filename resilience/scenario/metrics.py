"""Gate metrics computed from a history, for any set of time windows.

The core metrics exist for every target; the target kind's vocabulary
(:mod:`resilience.targets.vocabulary`; the reference service's in
:mod:`resilience.targets.reference_metrics`) adds its own names, and its
values win over a core metric of the same name. Latencies are samples in
seconds; rates are ratios in [0, 1] (``None`` when the denominator is 0);
counts are numbers.

Core metrics (``<op>`` is an operation name of the target, ``<path>`` and
``<outcome>`` values it recorded):

=========================  =================================================
``<op>``                   latency of the operation's calls
``<op>.<path>``            latency of its calls answered by that path
``<op>.count``             its calls;  ``<op>.error_rate``: errors / calls
``<op>.outcome.<outcome>`` share of its calls with that outcome
``errors``/``error_rate``  operations with outcome ``error`` / operations
``breaker.opens``          breaker transitions to open (targets with a breaker)
``late_rate``              starts later than the tolerance / operations
``late``                   start lateness samples (seconds)
``throughput``             operations per second;  ``ops``: their count
``steady_state.before`` / ``steady_state.after``  1 when the check passed
``window_s``               seconds covered (used by per_hour and friends)
=========================  =================================================

:func:`metrics_for` takes an optional ``where`` filter over op-record fields
(``op``, ``key``, ``outcome``, ``path``, ``reason``, ``status``, ``phase``):
only matching operations count (label filters of gates use it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from resilience.scenario.gates import (
    GateResult,
    Metrics,
    MetricValue,
    ScopedGate,
    Timeline,
    Window,
    evaluate_scoped,
)
from resilience.scenario.history import History, OpRecord
from resilience.scenario.notify import NAMES as _NOTIFY_NAMES
from resilience.scenario.notify import notify_metrics
from resilience.targets.reference_metrics import NAMES as _REFERENCE_NAMES
from resilience.targets.vocabulary import VocabularyInput, vocabulary_of

__all__ = [
    "CORE_NAMES",
    "METRIC_NAMES",
    "OP_FIELDS",
    "evaluate_history",
    "known_metric",
    "metric_names",
    "metrics_for",
    "timeline_of",
    "within",
]

CORE_NAMES = frozenset(
    {
        "errors",
        "error_rate",
        "breaker.opens",
        "late_rate",
        "late",
        "throughput",
        "ops",
        "steady_state.before",
        "steady_state.after",
        "window_s",
    }
)
"""The metric names every target has (besides the per-operation ones)."""

METRIC_NAMES = CORE_NAMES | _REFERENCE_NAMES | _NOTIFY_NAMES
"""The fixed metric names of the default (reference) target: the core and its vocabulary."""

OP_FIELDS = frozenset({"op", "key", "outcome", "path", "reason", "status", "phase", "slug"})
"""Op-record fields a ``where`` filter may name."""


def known_metric(name: str, kind: str = "reference", operations: Sequence[str] = ()) -> bool:
    """Whether a gate may name ``name`` for a target of ``kind`` with ``operations``.

    The core names, the kind's vocabulary, and for each operation ``<op>``,
    ``<op>.count``, ``<op>.error_rate``, ``<op>.outcome.<x>`` and
    ``<op>.<path>`` (any path, unless the vocabulary lists its paths).
    """
    if name in CORE_NAMES or name in _NOTIFY_NAMES:  # notify.* come from any event stream
        return True
    vocabulary = vocabulary_of(kind)
    if vocabulary is not None and vocabulary.knows(name):
        return True
    head, _, rest = name.partition(".")
    if head not in operations:
        return False
    if rest in ("", "count", "error_rate") or rest.startswith("outcome."):
        return True
    paths = vocabulary.paths if vocabulary is not None else None
    return "." not in rest and (paths is None or rest in paths)


def metric_names(kind: str = "reference") -> frozenset[str]:
    """The fixed names a target of ``kind`` has (for suggestions)."""
    vocabulary = vocabulary_of(kind)
    named = vocabulary.names if vocabulary is not None else frozenset()
    return CORE_NAMES | _NOTIFY_NAMES | named


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _ops_in(history: History, windows: Sequence[Window]) -> list[OpRecord]:
    if len(windows) == 1:
        return history.ops_between(*windows[0])
    out: list[OpRecord] = []
    for a, b in windows:
        out.extend(history.ops_between(a, b))
    return out


def within(t_s: float, windows: Sequence[Window]) -> bool:
    """Whether ``t_s`` falls in one of ``windows`` (start included, end excluded)."""
    return any(a <= t_s < b for a, b in windows)


def _field_text(op: OpRecord, name: str) -> str:
    value = getattr(op, name)
    return "" if value is None else str(value)


def select_ops(ops: Sequence[OpRecord], where: Mapping[str, str]) -> list[OpRecord]:
    """The operations whose fields equal every value of ``where`` (``reason`` None is "")."""
    unknown = sorted(set(where) - OP_FIELDS)
    if unknown:
        fields = ", ".join(sorted(OP_FIELDS))
        raise ValueError(f"no op-record field {unknown[0]!r} to filter on (fields: {fields})")
    items = [(name, str(value)) for name, value in where.items()]
    return [o for o in ops if all(_field_text(o, name) == value for name, value in items)]


def _per_operation(ops: Sequence[OpRecord]) -> dict[str, MetricValue]:
    """``<op>``, ``<op>.<path>``, ``<op>.count``, ``<op>.error_rate``, ``<op>.outcome.<x>``."""
    by_op: dict[str, list[OpRecord]] = {}
    for o in ops:
        by_op.setdefault(o.op, []).append(o)
    out: dict[str, MetricValue] = {}
    for name, records in by_op.items():
        out[name] = [o.latency_us / 1e6 for o in records]
        by_path: dict[str, list[float]] = {}
        outcomes: dict[str, int] = {}
        for o in records:
            if o.path:
                by_path.setdefault(o.path, []).append(o.latency_us / 1e6)
            outcomes[o.outcome] = outcomes.get(o.outcome, 0) + 1
        for path, samples in by_path.items():
            out[f"{name}.{path}"] = samples
        n = len(records)
        out[f"{name}.count"] = n
        out[f"{name}.error_rate"] = _ratio(outcomes.get("error", 0), n)
        for outcome, count in outcomes.items():
            out[f"{name}.outcome.{outcome}"] = count / n
    return out


def metrics_for(
    history: History,
    windows: Sequence[Window],
    *,
    late_tolerance_s: float | None = None,
    where: Mapping[str, str] | None = None,
) -> dict[str, MetricValue]:
    """The metrics mapping of the operations that started inside ``windows``.

    ``where`` keeps only the operations whose record fields equal the given
    values (e.g. ``{"op": "lookup", "reason": "connection"}``); ``{"name": rule}``
    alone keeps one alert rule in the notification metrics.
    """
    if where and set(where) == {"name"}:
        # ``alerts.fired{name=Rule}``: an alert rule's name selects nothing else, so only
        # the notification metrics exist under it (``lookup{name=…}`` is "no such metric").
        return dict(notify_metrics(history.notify, windows, where))
    if late_tolerance_s is None:
        late_tolerance_s = float(history.config.get("workload", {}).get("late_tolerance", 0.005))
    ops = _ops_in(history, windows)
    labels: dict[str, str] = {}
    if where:
        scraped = bool(history.other.get("scrape"))
        op_filters = {k: v for k, v in where.items() if k in OP_FIELDS or not scraped}
        labels = {str(k): str(v) for k, v in where.items()}  # scraped series: every label
        ops = select_ops(ops, op_filters) if op_filters else ops
    window_s = sum(max(0.0, b - a) for a, b in windows)
    errors = sum(1 for o in ops if o.outcome == "error")
    opens = sum(
        1
        for r in history.breaker
        if r.get("to") == "open" and within(float(r["t_us"]) / 1e6, windows)
    )
    late = [o.late_us / 1e6 for o in ops]
    metrics: dict[str, MetricValue] = _per_operation(ops)
    metrics.update(
        {
            "window_s": window_s,
            "ops": len(ops),
            "throughput": (len(ops) / window_s) if window_s else None,
            "errors": errors,
            "error_rate": _ratio(errors, len(ops)),
            "breaker.opens": opens,
            "late_rate": _ratio(sum(1 for x in late if x > late_tolerance_s), len(late)),
            "late": late,
        }
    )
    vocabulary = vocabulary_of(history.target_kind)
    if vocabulary is not None:
        records: dict[str, Sequence[Mapping[str, Any]]] = {
            **history.other,
            "migration": history.migration,
            "sample": history.samples,
            "check": history.checks,
        }
        metrics.update(
            vocabulary.compute(
                VocabularyInput(
                    ops=ops,
                    records=records,
                    windows=windows,
                    config=history.config,
                    labels=labels,
                )
            )
        )
    metrics.update(notify_metrics(history.notify, windows))
    for when in ("before", "after"):
        checks = [r for r in history.steady if r.get("when") == when]
        metrics[f"steady_state.{when}"] = (1.0 if checks[-1].get("ok") else 0.0) if checks else None
    return metrics


def timeline_of(history: History) -> Timeline:
    """The measured part of the run (after warm-up) and its fault windows, from the history."""
    return Timeline(
        history.warmup_s, history.duration_s, history.fault_windows(), _breaker_states(history)
    )


def _breaker_states(history: History) -> dict[str, list[Window]]:
    """Breaker state → the windows (s) the breaker spent in it (closed until a record)."""
    out: dict[str, list[Window]] = {}
    state, since = "closed", 0.0
    for record in history.breaker:
        t_s = float(record["t_us"]) / 1e6
        if t_s > since:
            out.setdefault(state, []).append((since, t_s))
        state, since = str(record.get("to", state)), t_s
    end = max(history.duration_s, since)
    if end > since:
        out.setdefault(state, []).append((since, end))
    return out


def evaluate_history(history: History, gates: Sequence[ScopedGate]) -> list[GateResult]:
    """Evaluate ``gates`` on ``history``, each in its phase (windows memoised)."""
    cache: dict[tuple[Window, ...], Metrics] = {}

    def for_windows(windows: Sequence[Window]) -> Metrics:
        key = tuple(windows)
        if key not in cache:
            cache[key] = metrics_for(history, windows)
        return cache[key]

    def where(windows: Sequence[Window], filters: Mapping[str, str]) -> Metrics:
        return metrics_for(history, windows, where=filters)

    return evaluate_scoped(gates, timeline_of(history), for_windows, metrics_where=where)


def summary(history: History) -> dict[str, Any]:
    """Headline numbers of the measured part of the run (for reports)."""
    tl = timeline_of(history)
    m = metrics_for(history, [(tl.start_s, tl.end_s)])
    out: dict[str, Any] = {}
    for key, value in m.items():
        if isinstance(value, list):
            ordered = sorted(value)
            out[key] = {
                "count": len(ordered),
                "avg": (sum(ordered) / len(ordered)) if ordered else None,
                "p50": ordered[len(ordered) // 2] if ordered else None,
                "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
                if ordered
                else None,
                "max": ordered[-1] if ordered else None,
            }
        else:
            out[key] = value
    return out
