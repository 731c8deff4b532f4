"""Gate metrics computed from a history, for any set of time windows.

Latencies are samples in seconds; rates are ratios in [0, 1] (``None`` when
the denominator is 0); counts are numbers. "Valid" lookups are those whose
slug was well formed (known or unknown to the database).

=====================  =====================================================
``lookup``             latency of every valid lookup
``lookup.cache``       latency of lookups the in-memory tier answered
``lookup.redis``       latency of lookups the Redis tier answered
``lookup.db``          latency of lookups PostgreSQL answered
``lookup.fallback``    latency of lookups that fell back (no tier answered)
``lookup.invalid``     latency of refused (malformed) lookups
``lookup.attempts``    database attempts per valid lookup (samples)
``job``                latency of job posts
``cache.hit_rate``     (memory + Redis hits) / valid lookups
``cache.memory_hit_rate``  memory hits / valid lookups
``success_rate``       lookups answered correctly (a UUID, or "not found") / valid
``fallback_rate``      lookups whose outcome is ``fallback`` (any reason) / valid
``degraded_rate``      fallbacks caused by a failure (not "not found") / valid
``not_found_rate``     "not found" answers / valid lookups
``error_rate``         errors / operations;  ``errors``: their count
``invalid.refused_rate``  malformed slugs refused / malformed slugs sent
``invalid.retried``    malformed lookups that reached the database
``jobs``               job posts;  ``jobs.accepted_rate``: accepted / valid posts
``jobs.refused_rate``  refused / malformed-slug posts
``jobs.null_uuid``     accepted jobs stored without a ``micro_uuid``
``breaker.opens``      breaker transitions to open
``late_rate``          starts later than the tolerance / operations
``late``               start lateness samples (seconds)
``throughput``         operations per second;  ``ops``: their count
``steady_state.before`` / ``steady_state.after``  1 when the check passed
``migration.*``        backfill: runs, failed_runs, completed (1/0), pending,
                       failure_rate, skipped, consistent (statistics add up: 1/0)
``window_s``           seconds covered (used by per_hour and friends)
=====================  =====================================================
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
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

__all__ = ["METRIC_NAMES", "evaluate_history", "metrics_for", "timeline_of", "within"]

_MIGRATION_NAMES = (
    "migration.runs",
    "migration.failed_runs",
    "migration.completed",
    "migration.pending",
    "migration.failure_rate",
    "migration.skipped",
    "migration.consistent",
)

METRIC_NAMES = frozenset(
    {
        "lookup",
        "lookup.cache",
        "lookup.redis",
        "lookup.db",
        "lookup.fallback",
        "lookup.invalid",
        "lookup.attempts",
        "job",
        "cache.hit_rate",
        "cache.memory_hit_rate",
        "success_rate",
        "fallback_rate",
        "degraded_rate",
        "not_found_rate",
        "error_rate",
        "errors",
        "invalid.refused_rate",
        "invalid.retried",
        "invalid.count",
        "jobs",
        "jobs.accepted",
        "jobs.accepted_rate",
        "jobs.refused_rate",
        "jobs.null_uuid",
        "breaker.opens",
        "late_rate",
        "late",
        "throughput",
        "ops",
        "lookups",
        "steady_state.before",
        "steady_state.after",
        "window_s",
    }
)
METRIC_NAMES = METRIC_NAMES | frozenset(_MIGRATION_NAMES)
"""Every metric name the scenario harness produces (gates are checked against it)."""

_HIT_PATHS = frozenset({"cache", "redis"})


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _ops_in(history: History, windows: Sequence[Window]) -> list[OpRecord]:
    starts = [o.t_us for o in history.ops]
    out: list[OpRecord] = []
    for a, b in windows:
        lo = bisect.bisect_left(starts, int(a * 1e6))
        hi = bisect.bisect_left(starts, int(b * 1e6))
        out.extend(history.ops[lo:hi])
    return out


def within(t_s: float, windows: Sequence[Window]) -> bool:
    """Whether ``t_s`` falls in one of ``windows`` (start included, end excluded)."""
    return any(a <= t_s < b for a, b in windows)


def metrics_for(
    history: History, windows: Sequence[Window], *, late_tolerance_s: float | None = None
) -> dict[str, MetricValue]:
    """The metrics mapping of the operations that started inside ``windows``."""
    if late_tolerance_s is None:
        late_tolerance_s = float(history.config.get("workload", {}).get("late_tolerance", 0.005))
    ops = _ops_in(history, windows)
    window_s = sum(max(0.0, b - a) for a, b in windows)
    lookups = [o for o in ops if o.op == "lookup"]
    valid = [o for o in lookups if o.key != "invalid"]
    invalid = [o for o in lookups if o.key == "invalid"]
    jobs = [o for o in ops if o.op == "job"]
    valid_jobs = [o for o in jobs if o.key != "invalid"]
    invalid_jobs = [o for o in jobs if o.key == "invalid"]

    def lat(records: list[OpRecord], path: str | None = None) -> list[float]:
        return [o.latency_us / 1e6 for o in records if path is None or o.path == path]

    n = len(valid)
    hits = sum(1 for o in valid if o.path in _HIT_PATHS)
    memory_hits = sum(1 for o in valid if o.path == "cache")
    success = sum(
        1
        for o in valid
        if o.outcome == "success" or (o.outcome == "fallback" and o.reason == "not_found")
    )
    fallback = sum(1 for o in valid if o.outcome == "fallback")
    not_found = sum(1 for o in valid if o.outcome == "fallback" and o.reason == "not_found")
    errors = sum(
        1 for o in ops if o.outcome == "error" or (o.op == "job" and o.outcome == "failed")
    )
    errors += sum(1 for o in invalid if o.outcome not in ("invalid",) and o.outcome != "refused")
    accepted = [o for o in valid_jobs if o.outcome == "accepted"]
    opens = sum(
        1
        for r in history.breaker
        if r.get("to") == "open" and within(float(r["t_us"]) / 1e6, windows)
    )
    late = [o.late_us / 1e6 for o in ops]
    metrics: dict[str, MetricValue] = {
        "window_s": window_s,
        "ops": len(ops),
        "lookups": len(lookups),
        "throughput": (len(ops) / window_s) if window_s else None,
        "lookup": lat(valid),
        "lookup.cache": lat(valid, "cache"),
        "lookup.redis": lat(valid, "redis"),
        "lookup.db": lat(valid, "db"),
        "lookup.fallback": lat(valid, "fallback"),
        "lookup.invalid": lat(invalid),
        "lookup.attempts": [float(o.attempts) for o in valid],
        "job": lat(jobs),
        "cache.hit_rate": _ratio(hits, n),
        "cache.memory_hit_rate": _ratio(memory_hits, n),
        "success_rate": _ratio(success, n),
        "fallback_rate": _ratio(fallback, n),
        "degraded_rate": _ratio(fallback - not_found, n),
        "not_found_rate": _ratio(not_found, n),
        "errors": errors,
        "error_rate": _ratio(errors, len(ops)),
        "invalid.count": len(invalid) + len(invalid_jobs),
        "invalid.refused_rate": _ratio(
            sum(1 for o in invalid if o.outcome == "invalid")
            + sum(1 for o in invalid_jobs if o.outcome == "refused"),
            len(invalid) + len(invalid_jobs),
        ),
        "invalid.retried": sum(1 for o in invalid if o.attempts > 0),
        "jobs": len(jobs),
        "jobs.accepted": len(accepted),
        "jobs.accepted_rate": _ratio(len(accepted), len(valid_jobs)),
        "jobs.refused_rate": _ratio(
            sum(1 for o in invalid_jobs if o.outcome == "refused"), len(invalid_jobs)
        ),
        "jobs.null_uuid": sum(1 for o in accepted if o.path == "null_uuid"),
        "breaker.opens": opens,
        "late_rate": _ratio(sum(1 for x in late if x > late_tolerance_s), len(late)),
        "late": late,
    }
    metrics.update(_migration(history))
    for when in ("before", "after"):
        checks = [r for r in history.steady if r.get("when") == when]
        metrics[f"steady_state.{when}"] = (1.0 if checks[-1].get("ok") else 0.0) if checks else None
    return metrics


def _migration(history: History) -> dict[str, MetricValue]:
    """Backfill metrics (whole run, not windowed); ``None`` when there was no backfill."""
    records = history.migration
    if not records or any(r.get("event") == "unsupported" for r in records):
        return dict.fromkeys(_MIGRATION_NAMES)
    final = next((r["stats"] for r in reversed(records) if r.get("event") == "final"), None)
    out: dict[str, MetricValue] = {
        "migration.runs": sum(1 for r in records if r.get("event") == "run_start"),
        "migration.failed_runs": sum(1 for r in records if r.get("event") == "run_error"),
        "migration.completed": 1.0 if any(r.get("event") == "run_end" for r in records) else 0.0,
        "migration.pending": None,
        "migration.failure_rate": None,
        "migration.skipped": None,
        "migration.consistent": None,
    }
    if isinstance(final, dict):
        logged = final["logged_success"] + final["logged_skipped"] + final["logged_failed"]
        out["migration.pending"] = final["pending_jobs"]
        out["migration.skipped"] = final["logged_skipped"]
        out["migration.failure_rate"] = _ratio(final["logged_failed"], logged)
        consistent = (
            final["total_jobs"] == final["jobs_with_uuid"] + final["jobs_without_uuid"]
            and final["jobs_without_uuid"] == final["unknown_slug_jobs"] + final["pending_jobs"]
            and final["logged_success"] <= final["jobs_with_uuid"]
        )
        out["migration.consistent"] = 1.0 if consistent else 0.0
    return out


def timeline_of(history: History) -> Timeline:
    """The measured part of the run (after warm-up) and its fault windows, from the history."""
    return Timeline(history.warmup_s, history.duration_s, history.fault_windows())


def evaluate_history(history: History, gates: Sequence[ScopedGate]) -> list[GateResult]:
    """Evaluate ``gates`` on ``history``, each in its phase (windows memoised)."""
    cache: dict[tuple[Window, ...], Metrics] = {}

    def for_windows(windows: Sequence[Window]) -> Metrics:
        key = tuple(windows)
        if key not in cache:
            cache[key] = metrics_for(history, windows)
        return cache[key]

    return evaluate_scoped(gates, timeline_of(history), for_windows)


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
