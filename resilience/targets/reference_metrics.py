"""The reference service's gate metrics (its vocabulary; see docs/gates.md).

"Valid" lookups are those whose slug was well formed (known or unknown to
the database). Latencies are samples in seconds, rates ratios in [0, 1]
(``None`` when the denominator is 0).

=========================  =================================================
``lookup``                 latency of every valid lookup
``lookup.cache``           latency of lookups the in-memory tier answered
``lookup.redis``           latency of lookups the Redis tier answered
``lookup.db``              latency of lookups PostgreSQL answered
``lookup.fallback``        latency of lookups that fell back (no tier answered)
``lookup.invalid``         latency of refused (malformed) lookups
``lookup.attempts``        database attempts per valid lookup (samples)
``db.calls``               database attempts of the operations (count; per window
                           with ``@ each half_open``: at most half_open_max_calls)
``lookups``                lookups (count)
``job``                    latency of job posts
``cache.hit_rate``         (memory + Redis hits) / valid lookups
``cache.memory_hit_rate``  memory hits / valid lookups
``success_rate``           lookups answered correctly (a UUID, or "not found") / valid
``fallback_rate``          lookups whose outcome is ``fallback`` (any reason) / valid
``degraded_rate``          fallbacks caused by a failure (not "not found") / valid
``not_found_rate``         "not found" answers / valid lookups
``errors``/``error_rate``  errors (a failed job, a malformed slug not refused) / operations
``invalid.count``          malformed-slug operations
``invalid.refused_rate``   malformed slugs refused / malformed slugs sent
``invalid.retried``        malformed lookups that reached the database
``jobs``                   job posts;  ``jobs.accepted``, ``jobs.accepted_rate`` (/ valid posts)
``jobs.refused_rate``      refused / malformed-slug posts
``jobs.null_uuid``         accepted jobs stored without a ``micro_uuid``
``booking``                latency of bookings; ``booking.ok`` / ``booking.failed`` by outcome
``bookings``               booking operations; ``booking.success_rate`` booked / bookings
``upstream.calls``         requests the booking API stub received (whole run, counted there)
``upstream.booking_calls`` of them ``POST /bookings``
``upstream.calls_while_open`` requests that reached it while the booking breaker was open
(``booking.breaker_opens``: how many times that breaker opened)
``booking.duplicates``     bookings the stub holds twice for one reference (0: exactly once)
``upstream.calls_per_booking`` ``POST /bookings`` received / bookings made (retry cost)
``upstream.min_retry_gap_s`` shortest gap between two arrivals of one booking key
``jobs.stored`` …          the end-of-run reconciliation (whole run; ``None`` without
                           job posts): ``jobs.acknowledged``, ``jobs.stored`` (exactly
                           as sent, under its key), ``jobs.queued`` (still in the outbox
                           when the bounded drain ended), ``jobs.dead_lettered``,
                           ``jobs.lost``, ``jobs.duplicated`` (see targets/reconcile.py)
``migration.*``            backfill: runs, failed_runs, completed (1/0), pending,
                           failure_rate, skipped, consistent (statistics add up: 1/0)
=========================  =================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from resilience.targets.base import OpLike
from resilience.targets.reference import KIND
from resilience.targets.vocabulary import (
    MetricValue,
    Vocabulary,
    VocabularyInput,
    register_vocabulary,
)

__all__ = [
    "BOOKING_NAMES",
    "MIGRATION_NAMES",
    "NAMES",
    "RECONCILE_NAMES",
    "UPSTREAM_NAMES",
    "reference_metrics",
]

MIGRATION_NAMES = (
    "migration.runs",
    "migration.failed_runs",
    "migration.completed",
    "migration.pending",
    "migration.failure_rate",
    "migration.skipped",
    "migration.consistent",
)

BOOKING_NAMES = (
    "booking",
    "booking.ok",
    "booking.failed",
    "bookings",
    "booking.success_rate",
)
UPSTREAM_NAMES = (
    "upstream.calls",
    "upstream.booking_calls",
    "upstream.calls_while_open",
    "booking.duplicates",
    "upstream.calls_per_booking",
    "upstream.min_retry_gap_s",
    "booking.breaker_opens",
)
RECONCILE_NAMES = (
    "jobs.acknowledged",
    "jobs.stored",
    "jobs.queued",
    "jobs.dead_lettered",
    "jobs.lost",
    "jobs.duplicated",
)

NAMES = frozenset(
    {
        "lookup",
        "lookup.cache",
        "lookup.redis",
        "lookup.db",
        "lookup.fallback",
        "lookup.invalid",
        "lookup.attempts",
        "db.calls",
        "lookups",
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
        *MIGRATION_NAMES,
        *BOOKING_NAMES,
        *UPSTREAM_NAMES,
        *RECONCILE_NAMES,
    }
)


def _reconciled(records: Sequence[Mapping[str, Any]]) -> dict[str, MetricValue]:
    """The reconciliation's counts (whole run), ``None`` each when there was none."""
    check = next((r for r in reversed(records) if r.get("name") == "reconcile"), None)
    found = check.get("metrics", {}) if check is not None else {}
    return {name: found.get(name) for name in RECONCILE_NAMES}


_HIT_PATHS = frozenset({"cache", "redis"})


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _lat(records: Sequence[OpLike], path: str | None = None) -> list[float]:
    return [o.latency_us / 1e6 for o in records if path is None or o.path == path]


def reference_metrics(data: VocabularyInput) -> dict[str, MetricValue]:
    """The reference vocabulary over ``data.ops`` (and the run's migration records)."""
    ops = data.ops
    lookups = [o for o in ops if o.op == "lookup"]
    valid = [o for o in lookups if o.key != "invalid"]
    invalid = [o for o in lookups if o.key == "invalid"]
    jobs = [o for o in ops if o.op == "job"]
    valid_jobs = [o for o in jobs if o.key != "invalid"]
    invalid_jobs = [o for o in jobs if o.key == "invalid"]
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
    metrics: dict[str, MetricValue] = {
        "lookups": len(lookups),
        "lookup": _lat(valid),
        "lookup.cache": _lat(valid, "cache"),
        "lookup.redis": _lat(valid, "redis"),
        "lookup.db": _lat(valid, "db"),
        "lookup.fallback": _lat(valid, "fallback"),
        "lookup.invalid": _lat(invalid),
        "lookup.attempts": [float(o.attempts) for o in valid],
        "db.calls": sum(o.attempts for o in ops),
        "job": _lat(jobs),
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
    }
    metrics.update(_migration(data.records.get("migration", ())))
    bookings = [o for o in ops if o.op == "booking"]
    metrics["bookings"] = len(bookings)
    metrics["booking"] = _lat(bookings)
    metrics["booking.ok"] = _lat(bookings, "ok")
    metrics["booking.failed"] = _lat(bookings, "failed")
    metrics["booking.success_rate"] = _ratio(
        sum(1 for o in bookings if o.outcome == "booked"), len(bookings)
    )
    metrics.update(_upstream(data.records.get("sample", ())))
    metrics.update(_reconciled(data.records.get("check", ())))
    return metrics


def _upstream(samples: Sequence[Mapping[str, Any]]) -> dict[str, MetricValue]:
    """The booking stub's own counts, from the last sample that has them (whole run)."""
    for sample in reversed(samples):
        figures = sample.get("stats", {}).get("bookings", {}).get("upstream")
        if isinstance(figures, dict):
            return {
                "upstream.calls": figures["calls"],
                "upstream.booking_calls": figures["booking_calls"],
                "upstream.calls_while_open": figures["calls_while_open"],
                "booking.duplicates": figures["duplicates"],
                "upstream.calls_per_booking": _ratio(figures["booking_calls"], figures["bookings"]),
                "upstream.min_retry_gap_s": figures.get("min_retry_gap_s"),
                "booking.breaker_opens": figures.get("breaker_opens"),
            }
    return dict.fromkeys(UPSTREAM_NAMES)


def _migration(records: Sequence[Mapping[str, Any]]) -> dict[str, MetricValue]:
    """Backfill metrics (whole run, not windowed); ``None`` when there was no backfill."""
    if not records or any(r.get("event") == "unsupported" for r in records):
        return dict.fromkeys(MIGRATION_NAMES)
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


PATHS = frozenset({"cache", "redis", "db", "fallback", "invalid", "uuid", "null_uuid"})

register_vocabulary(Vocabulary(KIND, NAMES, reference_metrics, paths=PATHS))
