"""The target's event stream in a run: subscribed, recorded, gated on; and the crash fault.

:class:`NotifyRecorder` subscribes to the target's notifications for the
whole run — in process to the service's
:class:`~resilience.service.notify.EventHub` (the reference service), or over
``ws://…/ws/events`` for a target with a ``base_url`` — and writes each event
into the history as ``{"type": "notify", "t_us", "arrival_wall", "event"}``.
At the end, :meth:`NotifyRecorder.finish` writes one ``notify_db`` record: the
``error``/``critical`` error events the target's database holds for the run,
so ``notify.missed`` can tell which never arrived.

:func:`crash_component` is ``action: crash``: the target's own background
component fails (in process through its supervisor; over HTTP through
``POST /harness/crash/{component}``, which exists only under the harness).
When the crash has a ``duration``, its end resolves the component's error
events (:func:`resolve_component_errors`), as an operator would.

Gate metrics (:func:`notify_metrics`), per phase window:

=============================  ================================================
``notify.latency``             error event time → arrival at the subscriber (s)
``notify.events``              events received
``notify.missed``              ``error``/``critical`` rows never seen on the stream
``alerts.fired``               alert transitions to firing;
``alerts.fired.<Rule>``        … of one rule (e.g. ``alerts.fired.FallbackRateHigh``;
                               ``alerts.fired{name=<Rule>}`` is the same)
``alerts.firing``              alerts firing at the window's end
``health.degraded``            1 if the health status was not healthy in the window
``health.healthy``             1 if the status is healthy at the window's end
=============================  ================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from resilience.service.alerts import DEFAULT_RULES

__all__ = [
    "NAMES",
    "NotifyRecorder",
    "crash_component",
    "notify_metrics",
    "resolve_component_errors",
    "uses_stream",
]

NAMES = frozenset(
    {
        "notify.latency",
        "notify.events",
        "notify.missed",
        "alerts.fired",
        "alerts.firing",
        "health.degraded",
        "health.healthy",
    }
    | {f"alerts.fired.{rule.name}" for rule in DEFAULT_RULES}
)
"""The gate metric names this module computes."""

HIGH_SEVERITIES = ("error", "critical")

_STREAM_PREFIXES = ("notify.", "alerts.", "health.")
"""Every name of :data:`NAMES` starts with one of these."""


def uses_stream(metrics: Iterable[str]) -> bool:
    """Whether gates on these metric names read the event stream (``notify.*``,
    ``alerts.*``, ``health.*``).

    A target reached over HTTP is subscribed to only then: a service without
    ``/ws/events`` would otherwise see a failed WebSocket handshake in its own
    metrics and logs, caused by the harness and read by nobody.
    """
    return any(name.startswith(_STREAM_PREFIXES) for name in metrics)


def _service(target: Any) -> Any:
    return getattr(target, "service", None)


async def crash_component(target: Any, component: str | None) -> None:
    """Crash background ``component`` of ``target`` (raises with a clear message if it cannot)."""
    service = _service(target)
    supervisor = getattr(service, "supervisor", None)
    if supervisor is not None:
        supervisor.crash(str(component))
        return
    base_url = getattr(target, "base_url", None)
    if base_url is None:
        raise RuntimeError("this target has no background components to crash")
    import httpx

    async with httpx.AsyncClient(base_url=str(base_url), timeout=5.0) as client:
        response = await client.post(f"/harness/crash/{component}")
    if response.status_code != 200:
        raise RuntimeError(f"crash {component}: HTTP {response.status_code} {response.text[:200]}")


async def resolve_component_errors(target: Any, component: str | None) -> int:
    """Resolve the unresolved error events of ``component`` (the end of a crash window).

    The operator's part of the walk-through: after a crash the service stays
    degraded until its critical error is resolved. Returns how many were.
    """
    tracker = getattr(_service(target), "error_tracker", None)
    if tracker is not None:
        await tracker.drain()
        events = await tracker.repository.recent(1000)
        ids = [e.id for e in events if e.component == component and not e.resolved]
        for event_id in ids:
            await tracker.repository.mark_resolved(event_id)
        return len(ids)
    base_url = getattr(target, "base_url", None)
    if base_url is None:
        return 0
    import httpx

    async with httpx.AsyncClient(base_url=str(base_url), timeout=5.0) as client:
        listed = (await client.get("/errors", params={"unresolved": "true"})).json()
        ids = [e["id"] for e in listed if e.get("component") == component]
        for event_id in ids:
            (await client.post(f"/errors/{event_id}/resolve")).raise_for_status()
    return len(ids)


class NotifyRecorder:
    """Records the target's notification stream into the history (see the module doc)."""

    def __init__(
        self,
        target: Any,
        write: Callable[[dict[str, Any]], None],
        t_us: Callable[[], int],
        *,
        remote: bool = True,
    ) -> None:
        """``remote``: subscribe over ``ws://`` to a target with a ``base_url``
        (the in-process service's hub is always subscribed to: it costs nothing)."""
        self._target = target
        self._write = write
        self._t_us = t_us
        self._remote = remote
        self._started_wall = time.time()

    async def run(self) -> None:
        """Subscribe and record until cancelled (returns at once without a stream)."""
        hub = getattr(_service(self._target), "notifications", None)
        if hub is not None:
            subscription = hub.subscribe()
            try:
                while True:
                    self._record(json.loads(await subscription.next()))
            finally:
                hub.unsubscribe(subscription)
        base_url = getattr(self._target, "base_url", None)
        if base_url is None or not self._remote:
            return
        import websockets

        url = "ws" + str(base_url).removeprefix("http").rstrip("/") + "/ws/events"
        async with websockets.connect(url, max_size=None) as ws:
            async for raw in ws:
                self._record(json.loads(raw))

    def _record(self, event: dict[str, Any]) -> None:
        if event.get("type") in ("hello", "notice"):
            return
        self._write(
            {"type": "notify", "t_us": self._t_us(), "arrival_wall": time.time(), "event": event}
        )

    async def finish(self) -> None:
        """Write the ``notify_db`` record: the run's error events of high severity, as stored."""
        tracker = getattr(_service(self._target), "error_tracker", None)
        if tracker is None:
            return
        since = datetime.fromtimestamp(self._started_wall, UTC)
        with contextlib.suppress(Exception):  # the database may be away: no record, no gate
            await asyncio.wait_for(tracker.drain(), 5.0)
        try:
            events = await asyncio.wait_for(tracker.repository.recent(10_000), 5.0)
        except Exception as exc:
            self._write({"type": "notify_db", "t_us": self._t_us(), "error": str(exc)[:200]})
            return
        rows = [
            {
                "correlation_id": e.correlation_id,
                "severity": e.severity,
                "component": e.component,
                "occurred_wall": e.occurred_at.timestamp() if e.occurred_at else None,
            }
            for e in events
            if e.severity in HIGH_SEVERITIES
            and e.occurred_at is not None
            and e.occurred_at >= since
        ]
        self._write(
            {
                "type": "notify_db",
                "t_us": self._t_us(),
                "start_wall": self._started_wall,
                "run_t0_wall": time.time() - self._t_us() / 1e6,
                "rows": rows,
            }
        )


def _in(t_s: float, windows: Sequence[tuple[float, float]]) -> bool:
    return any(a <= t_s < b for a, b in windows)


def notify_metrics(
    records: Sequence[Mapping[str, Any]],
    windows: Sequence[tuple[float, float]],
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The gate metrics of the module doc from ``notify``/``notify_db`` records (none: empty).

    A ``name`` label (``alerts.fired{name=FallbackRateHigh}``) keeps only that
    rule's alerts in ``alerts.fired`` and ``alerts.firing``.
    """
    if not records:
        return {}
    only = (labels or {}).get("name")
    stream = [r for r in records if r.get("type") == "notify"]
    db = next((r for r in records if r.get("type") == "notify_db"), None)
    out: dict[str, Any] = {}
    inside = [r for r in stream if _in(float(r["t_us"]) / 1e6, windows)]
    latency = []
    for r in inside:
        event = r["event"]
        if event.get("type") == "error" and event.get("occurred_at") is not None:
            latency.append(max(0.0, float(r["arrival_wall"]) - float(event["occurred_at"])))
    out["notify.latency"] = latency
    out["notify.events"] = len(inside)
    alerts = [r["event"] for r in inside if r["event"].get("type") == "alert"]
    fired = [a for a in alerts if a.get("state") == "firing"]
    out["alerts.fired"] = sum(1 for a in fired if only is None or a.get("name") == only)
    for rule in DEFAULT_RULES:
        out[f"alerts.fired.{rule.name}"] = sum(1 for a in fired if a.get("name") == rule.name)
    start_s = min((a for a, _ in windows), default=0.0)
    end_s = max((b for _, b in windows), default=0.0)
    firing: set[str] = set()
    status: str | None = None
    status_before: str | None = None
    degraded = False
    for r in stream:
        t_s = float(r["t_us"]) / 1e6
        if t_s >= end_s:
            break
        event = r["event"]
        if event.get("type") == "alert" and (only is None or event.get("name") == only):
            (firing.add if event.get("state") == "firing" else firing.discard)(str(event["name"]))
        elif event.get("type") == "health":
            status = str(event.get("status"))
            if t_s < start_s:
                status_before = status
            elif status != "healthy":
                degraded = True
    if status_before not in (None, "healthy"):
        degraded = True  # already degraded when the window opened
    out["alerts.firing"] = len(firing)
    out["health.degraded"] = 1.0 if degraded else 0.0
    out["health.healthy"] = None if status is None else float(status == "healthy")
    if db is not None and "rows" in db:
        seen = {
            r["event"].get("correlation_id") for r in stream if r["event"].get("type") == "error"
        }
        t0 = float(db["run_t0_wall"])
        missed = [
            row
            for row in db["rows"]
            if row["occurred_wall"] is not None
            and _in(float(row["occurred_wall"]) - t0, windows)
            and row["correlation_id"] not in seen
        ]
        out["notify.missed"] = len(missed)
    return out
