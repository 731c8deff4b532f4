"""Alert rules: the documented "alert at" thresholds over a sliding window.

:data:`DEFAULT_RULES` are the thresholds of ../shared/TARGETS.md: average
lookup time > 50 ms (warning) / > 100 ms (critical), failure rate > 5 % / >
10 %, fallback rate > 20 % / > 40 %, migration failures > 5 % / > 10 %, and
from the targets table cache hit rate < 50 % and breaker opens > 5 per hour.

:class:`AlertEvaluator` is a lookup listener keeping the last ``window_s``
seconds of lookups (60 s); :meth:`AlertEvaluator.evaluate` computes each
metric over that window and returns the transitions (``firing`` when a rule's
condition starts holding, ``resolved`` when it stops). Rate rules need at
least ``min_samples`` lookups in the window, so a handful of lookups cannot
fire them. :func:`prometheus_rules` renders the same rules as a Prometheus
alerting-rules file over the service's ``/metrics`` names.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from resilience.service.model import LookupResult

__all__ = [
    "DEFAULT_RULES",
    "AlertEvaluator",
    "AlertRule",
    "AlertTransition",
    "prometheus_rules",
]

Metric = Literal[
    "lookup_latency_avg_s",
    "failure_rate",
    "fallback_rate",
    "cache_hit_rate",
    "breaker_opens_per_hour",
    "migration_failure_rate",
]


@dataclass(frozen=True, slots=True)
class AlertRule:
    """``metric op threshold`` at ``severity``; ``name`` is unique per rule."""

    name: str
    metric: Metric
    op: Literal[">", "<"]
    threshold: float
    severity: Literal["warning", "critical"]
    summary: str

    def holds(self, value: float) -> bool:
        return value > self.threshold if self.op == ">" else value < self.threshold


@dataclass(frozen=True, slots=True)
class _Thresholds:
    """One metric's documented "alert at" levels: a warning and, if any, a critical one."""

    stem: str
    metric: Metric
    op: Literal[">", "<"]
    warning: float
    critical: float | None
    what: str
    unit: Literal["ms", "%", ""]

    def rules(self) -> tuple[AlertRule, ...]:
        side = "above" if self.op == ">" else "below"
        levels: list[tuple[str, Literal["warning", "critical"], float]] = [
            ("High" if self.op == ">" else "Low", "warning", self.warning)
        ]
        if self.critical is not None:
            levels.append(("Critical", "critical", self.critical))
        return tuple(
            AlertRule(f"{self.stem}{suffix}", self.metric, self.op, threshold, severity,
                      f"{self.what} {side} {_shown(threshold, self.unit)}")
            for suffix, severity, threshold in levels
        )  # fmt: skip


def _shown(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value * 1e3:g} ms"
    if unit == "%":
        return f"{value * 100:g} %"
    return f"{value:g}"


_THRESHOLDS = (
    _Thresholds("LookupLatency", "lookup_latency_avg_s", ">", 0.050, 0.100,
                "average lookup time", "ms"),
    _Thresholds("LookupFailureRate", "failure_rate", ">", 0.05, 0.10, "lookup failure rate", "%"),
    _Thresholds("FallbackRate", "fallback_rate", ">", 0.20, 0.40, "fallback rate", "%"),
    _Thresholds("MigrationFailureRate", "migration_failure_rate", ">", 0.05, 0.10,
                "migration failures", "%"),
    _Thresholds("CacheHitRate", "cache_hit_rate", "<", 0.50, None, "cache hit rate", "%"),
    _Thresholds("BreakerOpens", "breaker_opens_per_hour", ">", 5.0, None,
                "lookup breaker openings per hour", ""),
)  # fmt: skip

DEFAULT_RULES: tuple[AlertRule, ...] = tuple(r for t in _THRESHOLDS for r in t.rules())
"""``LookupLatencyHigh``/``…Critical``, ``LookupFailureRateHigh``/``…Critical``,
``FallbackRateHigh``/``…Critical``, ``MigrationFailureRateHigh``/``…Critical``,
``CacheHitRateLow``, ``BreakerOpensHigh``."""


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """A rule starting (``firing``) or stopping (``resolved``) to hold."""

    rule: AlertRule
    state: Literal["firing", "resolved"]
    value: float
    at_wall: float
    window_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.rule.name,
            "state": self.state,
            "severity": self.rule.severity,
            "metric": self.rule.metric,
            "value": self.value,
            "threshold": self.rule.threshold,
            "summary": self.rule.summary,
            "window_s": self.window_s,
            "at": self.at_wall,
        }


_FAILURE = 1
_FALLBACK = 2
_CACHE = 4


class AlertEvaluator:
    """Lookup listener + rule evaluation over the last ``window_s`` seconds (wall clock)."""

    def __init__(
        self,
        rules: tuple[AlertRule, ...] = DEFAULT_RULES,
        *,
        window_s: float = 60.0,
        min_samples: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = rules
        self.window_s = window_s
        self.min_samples = min_samples
        self._clock = clock
        self._lookups: deque[tuple[float, float, int]] = deque()  # (at, duration_s, flags)
        self._opens: deque[float] = deque()
        self._migration: deque[tuple[float, int, int]] = deque()  # (at, processed, failed)
        self.firing: dict[str, AlertTransition] = {}
        self.migration_processed = 0
        self.migration_failed = 0

    def __call__(self, result: LookupResult) -> None:
        outcome = result.outcome
        if outcome == "invalid":
            return
        flags = 0
        if outcome == "error" or (outcome == "fallback" and result.reason != "not_found"):
            flags |= _FAILURE
        if outcome == "fallback":
            flags |= _FALLBACK
        if result.path == "cache":
            flags |= _CACHE
        self._lookups.append((self._clock(), result.duration_us / 1e6, flags))

    def on_transition(self, breaker: Any, transition: Any) -> None:
        """Breaker listener: counts openings (any thread; a deque append is atomic)."""
        if getattr(transition.to_state, "value", "") == "open":
            self._opens.append(self._clock())

    def record_migration(self, processed: int, failed: int) -> None:
        """A migration batch's outcome (feeds the migration failure rules)."""
        self._migration.append((self._clock(), processed, failed))
        self.migration_processed += processed
        self.migration_failed += failed

    def values(self, now: float | None = None) -> dict[str, float | None]:
        """Each metric over the window (``None`` without enough samples)."""
        now = self._clock() if now is None else now
        start = now - self.window_s
        while self._lookups and self._lookups[0][0] < start:
            self._lookups.popleft()
        while self._migration and self._migration[0][0] < start:
            self._migration.popleft()
        while self._opens and self._opens[0] < now - 3600.0:
            self._opens.popleft()
        lookups = list(self._lookups)
        n = len(lookups)
        values: dict[str, float | None] = dict.fromkeys(
            ("lookup_latency_avg_s", "failure_rate", "fallback_rate", "cache_hit_rate"), None
        )
        if n >= self.min_samples:
            values["lookup_latency_avg_s"] = sum(d for _, d, _ in lookups) / n
            values["failure_rate"] = sum(1 for *_, f in lookups if f & _FAILURE) / n
            values["fallback_rate"] = sum(1 for *_, f in lookups if f & _FALLBACK) / n
            values["cache_hit_rate"] = sum(1 for *_, f in lookups if f & _CACHE) / n
        processed = sum(p for _, p, _ in self._migration)
        values["migration_failure_rate"] = (
            sum(f for *_, f in self._migration) / processed if processed else None
        )
        values["breaker_opens_per_hour"] = float(len(self._opens))
        return values

    def evaluate(self, now: float | None = None) -> list[AlertTransition]:
        """Transitions since the last call; a rule without a value keeps its state."""
        now = self._clock() if now is None else now
        values = self.values(now)
        transitions: list[AlertTransition] = []
        for rule in self.rules:
            value = values.get(rule.metric)
            if value is None:
                continue
            active = rule.holds(value)
            if active and rule.name not in self.firing:
                transition = AlertTransition(rule, "firing", value, now, self.window_s)
                self.firing[rule.name] = transition
                transitions.append(transition)
            elif not active and rule.name in self.firing:
                del self.firing[rule.name]
                transitions.append(AlertTransition(rule, "resolved", value, now, self.window_s))
        return transitions

    def stats(self) -> dict[str, Any]:
        return {"firing": sorted(self.firing), "window_s": self.window_s}


_OPS = 'operation="lookup"'


_PROMQL: dict[str, str] = {
    "lookup_latency_avg_s": (
        "sum(rate({ns}_operation_latency_seconds_sum{{{ops}}}[{w}])) / "
        "sum(rate({ns}_operation_latency_seconds_count{{{ops}}}[{w}]))"
    ),
    "failure_rate": (
        'sum(rate({ns}_lookup_reason_total{{reason!="not_found",reason!="invalid_slug"}}[{w}]))'
        " / {total}"
    ),
    "fallback_rate": 'sum(rate({ns}_operations_total{{{ops},outcome="fallback"}}[{w}])) / {total}',
    "cache_hit_rate": 'sum(rate({ns}_operation_path_total{{{ops},path="cache"}}[{w}])) / {total}',
    "breaker_opens_per_hour": "increase({ns}_breaker_opens_total[1h])",
    "migration_failure_rate": (
        'sum(rate({ns}_migration_jobs_total{{status="failed"}}[{w}])) / '
        'sum(rate({ns}_migration_jobs_total{{status="processed"}}[{w}]))'
    ),
}
"""Each metric over the service's ``/metrics`` names (``{total}``: valid lookups per second)."""


def _expression(rule: AlertRule, ns: str, window: str) -> str:
    total = f'sum(rate({ns}_operations_total{{{_OPS},outcome!="invalid"}}[{window}]))'
    value = _PROMQL[rule.metric].format(ns=ns, ops=_OPS, w=window, total=total)
    return f"{value} {rule.op} {rule.threshold:g}"


def prometheus_rules(
    rules: tuple[AlertRule, ...] = DEFAULT_RULES,
    *,
    namespace: str = "resilience",
    window_s: float = 60.0,
    for_s: float = 0.0,
) -> dict[str, Any]:
    """The rules as a Prometheus alerting-rules document (dump it as YAML)."""
    window = f"{max(1, round(window_s))}s"
    entries: list[dict[str, Any]] = []
    for rule in rules:
        entry: dict[str, Any] = {
            "alert": rule.name,
            "expr": _expression(rule, namespace, window),
            "labels": {"severity": rule.severity, "metric": rule.metric},
            "annotations": {
                "summary": rule.summary,
                "description": f"{rule.metric} {rule.op} {rule.threshold:g} over {window}",
            },
        }
        if for_s > 0:
            entry["for"] = f"{round(for_s)}s"
        entries.append(entry)
    return {"groups": [{"name": f"{namespace}-lookup", "rules": entries}]}
