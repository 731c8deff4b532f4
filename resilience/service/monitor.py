"""The monitor: alert rules and the health status, checked every ``interval_s``.

Each tick evaluates the :class:`~resilience.service.alerts.AlertEvaluator`
(every transition is published as an ``alert`` event and written to
``alert_events``) and, every ``health_interval_s``, the health body (a change
of the overall status is published as a ``health`` event; the probes cost a
``SELECT 1`` and one error-statistics query on the pool). ``GET /health`` answers feed
:meth:`Monitor.observe_health` too, so a change seen there is published at
once. The monitor is a supervised background component (``monitor``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from resilience.service.alerts import AlertEvaluator, AlertTransition
from resilience.service.analytics import BatchWriter, unnest_writer
from resilience.service.notify import EventHub

__all__ = ["AlertRow", "Monitor", "alert_row_writer"]


@dataclass(frozen=True, slots=True)
class AlertRow:
    name: str
    state: str
    severity: str
    metric: str
    value: float
    threshold: float
    window_s: float
    at_wall: float


def alert_row_writer(pool: Any) -> BatchWriter[AlertRow]:
    """A :class:`BatchWriter` of ``alert_events`` rows (not started)."""
    query = (
        "INSERT INTO alert_events (name, state, severity, metric, value, threshold, window_s, "
        "occurred_at) SELECT n, s, v, m, x, t, w, to_timestamp(a) FROM unnest($1::text[], "
        "$2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[], "
        "$8::float8[]) AS u(n, s, v, m, x, t, w, a)"
    )
    write = unnest_writer(
        pool,
        query,
        [
            lambda r: r.name,
            lambda r: r.state,
            lambda r: r.severity,
            lambda r: r.metric,
            lambda r: r.value,
            lambda r: r.threshold,
            lambda r: r.window_s,
            lambda r: r.at_wall,
        ],
    )
    return BatchWriter(write, batch_size=10, flush_interval_s=0.5)


class Monitor:
    """Alert and health transitions → ``hub`` (and ``alert_events`` through ``rows``)."""

    def __init__(
        self,
        hub: EventHub,
        evaluator: AlertEvaluator,
        health: Callable[[], Awaitable[dict[str, Any]]],
        *,
        rows: BatchWriter[AlertRow] | None = None,
        interval_s: float = 1.0,
        health_interval_s: float = 1.0,
    ) -> None:
        self.hub = hub
        self.evaluator = evaluator
        self._health = health
        self.rows = rows
        self.interval_s = interval_s
        self.health_interval_s = health_interval_s
        """0: the monitor never probes health itself (``/health`` answers still publish)."""
        self._health_due = 0.0
        self.health_status: str | None = None
        self.fired = 0
        self.resolved = 0

    async def run(self) -> None:
        """Tick every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.tick()

    async def tick(self) -> None:
        for transition in self.evaluator.evaluate():
            self.publish_alert(transition)
        now = time.monotonic()
        if self.health_interval_s > 0 and now >= self._health_due:
            self._health_due = now + self.health_interval_s
            self.observe_health(await self._health())

    def publish_alert(self, transition: AlertTransition) -> None:
        if transition.state == "firing":
            self.fired += 1
        else:
            self.resolved += 1
        self.hub.publish("alert", transition.to_dict())
        if self.rows is not None:
            rule = transition.rule
            self.rows.add(
                AlertRow(
                    name=rule.name,
                    state=transition.state,
                    severity=rule.severity,
                    metric=rule.metric,
                    value=transition.value,
                    threshold=rule.threshold,
                    window_s=transition.window_s,
                    at_wall=transition.at_wall,
                )
            )

    def observe_health(self, body: dict[str, Any]) -> None:
        """Publish a ``health`` event when the overall status differs from the last seen."""
        status = str(body.get("status"))
        if status == self.health_status:
            return
        previous, self.health_status = self.health_status, status
        components = body.get("components", {})
        self.hub.publish(
            "health",
            {
                "status": status,
                "previous": previous,
                "components": {
                    name: c.get("status") for name, c in components.items() if isinstance(c, dict)
                },
            },
        )

    def stats(self) -> dict[str, Any]:
        return {
            "fired": self.fired,
            "resolved": self.resolved,
            "migration_processed": self.evaluator.migration_processed,
            "migration_failed": self.evaluator.migration_failed,
            **self.evaluator.stats(),
        }
