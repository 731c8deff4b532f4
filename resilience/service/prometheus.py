"""``GET /metrics``: the recorder's lookup metrics plus the service's own families.

The lookup counters, rates and exact latency summaries come from
:func:`resilience.metrics.render` (the harness's one Prometheus vocabulary);
this module adds breaker state and openings, the Redis tier, jobs, and the
background writers (analytics, error tracking).
"""

from __future__ import annotations

from typing import Any

from resilience.metrics import MetricFamily, render
from resilience.service.alerts import DEFAULT_RULES

__all__ = ["render_service_metrics"]

_STATES = ("closed", "half_open", "open")


def render_service_metrics(
    recorder_snapshot: dict[str, Any], stats: dict[str, Any], *, namespace: str = "resilience"
) -> str:
    """Exposition text from a recorder snapshot and a :meth:`LookupService.stats` dict."""
    breaker = stats.get("breaker", {})
    redis = stats.get("redis", {})
    jobs = stats.get("jobs", {})
    families = [
        MetricFamily(
            f"{namespace}_breaker_state",
            "gauge",
            "1 for the lookup breaker's current state.",
            tuple(({"state": s}, float(breaker.get("state") == s)) for s in _STATES),
        ),
        MetricFamily(
            f"{namespace}_breaker_opens",
            "counter",
            "Times the lookup breaker opened (shared across instances).",
            (({}, float(breaker.get("opens", 0))),),
        ),
        MetricFamily(
            f"{namespace}_redis_tier_available",
            "gauge",
            "1 while the Redis tier is usable.",
            (({}, float(bool(redis.get("available")))),),
        ),
        MetricFamily(
            f"{namespace}_lookup_reason",
            "counter",
            "Fallbacks and errors by reason.",
            tuple(({"reason": r}, float(n)) for r, n in sorted(stats.get("reasons", {}).items())),
        ),
        MetricFamily(
            f"{namespace}_jobs",
            "counter",
            "Job posts: stored, replayed by idempotency key, or queued in the outbox.",
            tuple(({"result": k}, float(jobs.get(k, 0))) for k in ("stored", "replayed", "queued")),
        ),
    ]
    outbox = stats.get("outbox")
    if outbox:
        families.append(
            MetricFamily(
                f"{namespace}_outbox_jobs",
                "counter",
                "Job outbox: jobs queued, drained (stored), dead-lettered; failed drains.",
                tuple(({"fate": k}, float(v)) for k, v in sorted(outbox.items())),
            )
        )
    for writer in ("analytics", "error_tracking"):
        counts = stats.get(writer)
        if counts:
            families.append(
                MetricFamily(
                    f"{namespace}_{writer}_events",
                    "gauge",
                    f"Background writer of {writer}: events by fate.",
                    tuple(({"fate": k}, float(v)) for k, v in sorted(counts.items())),
                )
            )
    notifications = stats.get("notifications")
    if notifications:
        families.append(
            MetricFamily(
                f"{namespace}_notify_events",
                "gauge",
                "/ws/events: subscribers now; events published, dropped (slow subscriber), "
                "subscriptions refused.",
                tuple(({"fate": k}, float(v)) for k, v in sorted(notifications.items())),
            )
        )
    alerts = stats.get("alerts")
    if alerts:
        firing = set(alerts.get("firing", ()))
        families.append(
            MetricFamily(
                f"{namespace}_alert_firing",
                "gauge",
                "1 while the service's alert rule is firing.",
                tuple(({"alert": r.name}, float(r.name in firing)) for r in DEFAULT_RULES),
            )
        )
        families.append(
            MetricFamily(
                f"{namespace}_migration_jobs",
                "counter",
                "Migration backfill jobs reported to the service, processed and failed.",
                (
                    ({"status": "processed"}, float(alerts.get("migration_processed", 0))),
                    ({"status": "failed"}, float(alerts.get("migration_failed", 0))),
                ),
            )
        )
    return render(recorder_snapshot, namespace=namespace, families=families)
