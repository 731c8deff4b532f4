"""``GET /metrics``: the recorder's lookup metrics plus the service's own families.

The lookup counters, rates and exact latency summaries come from
:func:`resilience.metrics.render` (the harness's one Prometheus vocabulary);
this module adds breaker state and openings, the Redis tier, jobs, and the
background writers (analytics, error tracking).
"""

from __future__ import annotations

from typing import Any

from resilience.metrics import MetricFamily, render

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
    return render(recorder_snapshot, namespace=namespace, families=families)
