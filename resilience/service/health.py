"""``GET /health``: component status and the documented degraded/critical rules.

Components: ``postgres`` (a ``SELECT 1`` answered within the timeout),
``redis`` (PING, or ``disabled``), ``breaker`` (closed / half_open / open),
``error_tracking`` (``error_events``: degraded if any unresolved critical
error, more than 10 unresolved, or more than 20 in the last 24 h) and
``lookups`` (recent failures: degraded at a failure rate ≥ 25 %, critical at
≥ 3 failures in the last minute or ≥ 5 critical-severity failures),
``background`` (each supervised background component's state: degraded while
one is failing or recovering) and ``notifications`` (``/ws/events``
subscribers and dropped events; informational).

Overall: ``critical`` when PostgreSQL is unreachable or the lookups are
critical; ``degraded`` when any component is not healthy; else ``healthy``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.detector import FailureDetector
from resilience.service.model import LookupResult
from resilience.service.stats import breaker_state
from resilience.service.timeouts import bounded

__all__ = ["HealthProbes", "LookupFailureWindow", "check_health"]

Probe = Callable[[], Awaitable[Any]]


@dataclass(slots=True)
class HealthProbes:
    """Async probes, each bounded by ``timeout_s``; ``None`` means "not configured"."""

    postgres: Probe | None = None
    redis: Probe | None = None
    error_stats: Callable[[], Awaitable[dict[str, Any]]] | None = None
    timeout_s: float = 1.0
    background: Callable[[], dict[str, dict[str, Any]]] | None = None
    """Supervised background components' states (:meth:`Supervisor.states`)."""
    notifications: Callable[[], dict[str, Any]] | None = None
    """The notification hub's counts (:meth:`EventHub.stats`)."""


class LookupFailureWindow:
    """A lookup listener feeding a :class:`~resilience.detector.FailureDetector`.

    Failure = outcome ``error`` (critical severity) or a fallback caused by a
    dependency (medium severity); a plain "not found" and a cache answer are
    successes; invalid slugs are not counted.
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, window_s: float = 60.0) -> None:
        self.detector = FailureDetector(clock=clock, window_s=window_s)

    def __call__(self, result: LookupResult) -> None:
        outcome = result.outcome
        if outcome == "success":  # the common case first
            self.detector.record_success()
        elif outcome == "invalid":
            return
        elif outcome == "error":
            self.detector.record_failure(severity="critical", component="postgres")
        elif outcome == "fallback" and result.reason != "not_found":
            self.detector.record_failure(severity="medium", component="postgres")
        else:
            self.detector.record_success()

    def status(self) -> dict[str, Any]:
        return self.detector.snapshot()


async def _probe(probe: Probe | None, timeout_s: float) -> dict[str, Any]:
    if probe is None:
        return {"status": "disabled"}
    try:
        await bounded(probe(), timeout_s, what="health probe")
    except Exception as exc:  # any failure of a probe is the component being down
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"status": "up"}


def _error_tracking_status(stats: dict[str, Any]) -> str:
    if (
        stats.get("unresolved_critical", 0) > 0
        or stats.get("unresolved", 0) > 10
        or stats.get("last_24h", 0) > 20
    ):
        return "degraded"
    return "healthy"


async def check_health(
    probes: HealthProbes,
    *,
    breaker: Any,
    lookups: LookupFailureWindow | None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``GET /health`` body: ``status`` plus one entry per component.

    ``extra``: more graded components (``bookings``: the booking API's failure
    detector); one that is ``critical`` makes the whole critical, as lookups do.
    """
    postgres, redis = await asyncio.gather(
        _probe(probes.postgres, probes.timeout_s), _probe(probes.redis, probes.timeout_s)
    )
    if probes.error_stats is None:
        tracking: dict[str, Any] = {"status": "disabled"}
    else:
        try:
            stats = await bounded(probes.error_stats(), probes.timeout_s, what="error stats")
            tracking = {"status": _error_tracking_status(stats), **stats}
        except Exception as exc:  # the error store lives in PostgreSQL, which may be down
            tracking = {"status": "unknown", "error": f"{type(exc).__name__}: {exc}"[:200]}
    state = breaker_state(breaker)
    components: dict[str, Any] = {
        "postgres": postgres,
        "redis": redis,
        "breaker": {"status": "healthy" if state == "closed" else "degraded", "state": state},
        "error_tracking": tracking,
    }
    if lookups is not None:
        components["lookups"] = lookups.status()
    if probes.background is not None:
        states = probes.background()
        failing = sorted(n for n, c in states.items() if c["status"] in ("failing", "recovering"))
        components["background"] = {
            "status": "degraded" if failing else "healthy",
            "failing": failing,
            "components": states,
        }
    if probes.notifications is not None:
        # Drops are the slow subscriber's loss, not the service's: reported, not graded.
        components["notifications"] = {"status": "healthy", **probes.notifications()}
    components.update(extra or {})
    graded = ("lookups", *(extra or {}))
    if postgres["status"] == "down" or any(
        components.get(name, {}).get("status") == "critical" for name in graded
    ):
        overall = "critical"
    elif any(c["status"] not in ("up", "healthy", "disabled") for c in components.values()):
        overall = "degraded"
    else:
        overall = "healthy"
    return {"status": overall, "components": components}
