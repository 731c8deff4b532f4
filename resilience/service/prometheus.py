"""``GET /metrics``: the service's counters in Prometheus text format 0.0.4."""

from __future__ import annotations

from typing import Any

__all__ = ["render_prometheus"]

_STATES = ("closed", "half_open", "open")


def render_prometheus(stats: dict[str, Any], *, prefix: str = "resilience_service") -> str:
    """Render a :meth:`LookupService.stats` dict as Prometheus exposition text."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> str:
        full = f"{prefix}_{name}"
        lines.append(f"# HELP {full} {help_text}")
        lines.append(f"# TYPE {full} {kind}")
        return full

    name = family("lookups_total", "counter", "Lookups by outcome and path.")
    outcomes = stats.get("outcomes", {})
    for outcome, count in sorted(outcomes.items()):
        lines.append(f'{name}{{outcome="{outcome}"}} {count}')
    name = family("lookup_path_total", "counter", "Lookups by the tier that answered.")
    for path, count in sorted(stats.get("paths", {}).items()):
        lines.append(f'{name}{{path="{path}"}} {count}')
    name = family("lookup_reason_total", "counter", "Fallbacks and errors by reason.")
    for reason, count in sorted(stats.get("reasons", {}).items()):
        lines.append(f'{name}{{reason="{reason}"}} {count}')
    name = family("lookup_duration_us", "summary", "Lookup latency in microseconds by path.")
    for path, summary in sorted(stats.get("latency_us", {}).items()):
        for q in ("p50", "p90", "p95", "p99"):
            quantile = int(q[1:]) / 100
            lines.append(f'{name}{{path="{path}",quantile="{quantile}"}} {summary[q]}')
        lines.append(f'{name}_sum{{path="{path}"}} {round(summary["mean"] * summary["count"])}')
        lines.append(f'{name}_count{{path="{path}"}} {summary["count"]}')
    for key, help_text in (
        ("hit_rate", "Share of valid lookups answered by a cache tier."),
        ("success_rate", "Share of valid lookups that found a UUID."),
        ("fallback_rate", "Share of valid lookups answered slug-only."),
        ("error_rate", "Share of valid lookups that failed."),
    ):
        name = family(key, "gauge", help_text)
        lines.append(f"{name} {stats.get(key, 0.0)}")
    breaker = stats.get("breaker", {})
    name = family("breaker_state", "gauge", "1 for the breaker's current state.")
    for state in _STATES:
        lines.append(f'{name}{{state="{state}"}} {int(breaker.get("state") == state)}')
    name = family("breaker_opens_total", "counter", "Times the breaker opened.")
    lines.append(f"{name} {breaker.get('opens', 0)}")
    redis = stats.get("redis", {})
    name = family("redis_available", "gauge", "1 while the Redis tier is usable.")
    lines.append(f"{name} {int(bool(redis.get('available')))}")
    jobs = stats.get("jobs", {})
    name = family("jobs_total", "counter", "Job posts: stored once, or replayed by key.")
    for kind in ("stored", "replayed"):
        lines.append(f'{name}{{result="{kind}"}} {jobs.get(kind, 0)}')
    analytics = stats.get("analytics")
    if analytics:
        name = family("analytics_events_total", "counter", "Analytics events by fate.")
        for kind in ("written", "dropped", "pending"):
            lines.append(f'{name}{{result="{kind}"}} {analytics.get(kind, 0)}')
    return "\n".join(lines) + "\n"
