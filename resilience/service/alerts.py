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


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("LookupLatencyHigh", "lookup_latency_avg_s", ">", 0.050, "warning",
              "average lookup time above 50 ms"),
    AlertRule("LookupLatencyCritical", "lookup_latency_avg_s", ">", 0.100, "critical",
              "average lookup time above 100 ms"),
    AlertRule("LookupFailureRateHigh", "failure_rate", ">", 0.05, "warning",
              "lookup failure rate above 5 %"),
    AlertRule("LookupFailureRateCritical", "failure_rate", ">", 0.10, "critical",
              "lookup failure rate above 10 %"),
    AlertRule("FallbackRateHigh", "fallback_rate", ">", 0.20, "warning",
              "fallback rate above 20 %"),
    AlertRule("FallbackRateCritical", "fallback_rate", ">", 0.40, "critical",
              "fallback rate above 40 %"),
    AlertRule("MigrationFailureRateHigh", "migration_failure_rate", ">", 0.05, "warning",
              "migration failures above 5 %"),
    AlertRule("MigrationFailureRateCritical", "migration_failure_rate", ">", 0.10, "critical",
              "migration failures above 10 %"),
    AlertRule("CacheHitRateLow", "cache_hit_rate", "<", 0.50, "warning",
              "cache hit rate below 50 %"),
    AlertRule("BreakerOpensHigh", "breaker_opens_per_hour", ">", 5.0, "warning",
              "lookup breaker opened more than 5 times in an hour"),
)  # fmt: skip


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


def _expression(rule: AlertRule, ns: str, window: str) -> str:
    total = f'sum(rate({ns}_operations_total{{{_OPS},outcome!="invalid"}}[{window}]))'
    if rule.metric == "lookup_latency_avg_s":
        value = (
            f"sum(rate({ns}_operation_latency_seconds_sum{{{_OPS}}}[{window}])) / "
            f"sum(rate({ns}_operation_latency_seconds_count{{{_OPS}}}[{window}]))"
        )
    elif rule.metric == "failure_rate":
        value = (
            f'sum(rate({ns}_lookup_reason_total{{reason!="not_found",'
            f'reason!="invalid_slug"}}[{window}])) / {total}'
        )
    elif rule.metric == "fallback_rate":
        fallbacks = f'{ns}_operations_total{{{_OPS},outcome="fallback"}}'
        value = f"sum(rate({fallbacks}[{window}])) / {total}"
    elif rule.metric == "cache_hit_rate":
        hits = f'{ns}_operation_path_total{{{_OPS},path="cache"}}'
        value = f"sum(rate({hits}[{window}])) / {total}"
    elif rule.metric == "breaker_opens_per_hour":
        value = f"increase({ns}_breaker_opens_total[1h])"
    else:
        value = (
            f'sum(rate({ns}_migration_jobs_total{{status="failed"}}[{window}])) / '
            f'sum(rate({ns}_migration_jobs_total{{status="processed"}}[{window}]))'
        )
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
