"""Notifications: every error event, breaker transition, health change and alert, to subscribers.

:class:`EventHub` is the fan-out behind ``/ws/events``. Each subscriber has a
bounded queue; :meth:`EventHub.publish` puts the event in every queue without
waiting, so a subscriber that reads slowly (or not at all) loses its own
oldest-pending events (counted per subscriber and in total) and never slows
the service or the other subscribers. Events are JSON objects::

    {"type": "error" | "breaker" | "health" | "alert" | "notice",
     "seq": 17, "sent_at": 1733390000.123, ...}

``seq`` increases by one per published event (a subscriber sees gaps when it
lost events), ``sent_at`` is the wall-clock second the hub published it.
:meth:`EventHub.publish_threadsafe` is for callers on other threads (a shared
breaker store delivers transitions from its subscriber thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from resilience.breaker.state import Transition
from resilience.service.error_events import ErrorEvent

__all__ = ["EventHub", "HubFull", "Subscription", "breaker_listener", "error_payload"]


class HubFull(Exception):
    """Raised by :meth:`EventHub.subscribe` when ``max_subscribers`` are connected."""


@dataclass(eq=False)
class Subscription:
    """One subscriber's bounded queue of encoded events (JSON bytes)."""

    queue: asyncio.Queue[bytes]
    dropped: int = 0
    delivered: int = 0
    ignored_messages: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def next(self) -> bytes:
        """The next event to send (waits for one)."""
        return await self.queue.get()


class EventHub:
    """Fan-out of JSON events to at most ``max_subscribers`` queues of ``queue_size`` each.

    Attributes may be changed while running (new subscribers use the new values).
    """

    def __init__(
        self,
        *,
        queue_size: int = 256,
        max_subscribers: int = 10_000,
        send_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self.send_timeout_s = send_timeout_s
        """A subscriber whose one send stays blocked this long is disconnected."""
        self._clock = clock
        self._subscribers: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.seq = 0
        self.published = 0
        self.dropped = 0
        self.refused = 0
        self.disconnected_slow = 0

    def subscribe(self) -> Subscription:
        """A new subscription; :class:`HubFull` when the limit is reached."""
        if len(self._subscribers) >= self.max_subscribers:
            self.refused += 1
            raise HubFull(f"{self.max_subscribers} subscribers already connected")
        self._loop = asyncio.get_running_loop()
        subscription = Subscription(asyncio.Queue(self.queue_size))
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        subscription.closed.set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop :meth:`publish_threadsafe` hands events to."""
        self._loop = loop

    def publish(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue ``payload`` (plus ``type``, ``seq``, ``sent_at``) for every subscriber.

        Never waits: a full queue loses its oldest event to make room (counted).
        Returns the event as published. Call on the event loop's thread.
        """
        self.seq += 1
        event = {"type": kind, "seq": self.seq, "sent_at": self._clock(), **payload}
        self.published += 1
        if not self._subscribers:
            return event
        data = orjson.dumps(event, default=str)
        for subscription in self._subscribers:
            queue = subscription.queue
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                subscription.dropped += 1
                self.dropped += 1
            queue.put_nowait(data)
        return event

    def publish_error(self, payload: dict[str, Any]) -> None:
        """:meth:`publish` of an ``error`` event."""
        self.publish("error", payload)

    def publish_threadsafe(self, kind: str, payload: dict[str, Any]) -> None:
        """:meth:`publish` from any thread (dropped when no loop is bound or it closed)."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.publish, kind, payload)

    def stats(self) -> dict[str, int]:
        """Counts for ``/metrics`` and ``/health``."""
        return {
            "subscribers": len(self._subscribers),
            "published": self.published,
            "dropped": self.dropped,
            "refused": self.refused,
            "disconnected_slow": self.disconnected_slow,
        }


def error_payload(event: ErrorEvent) -> dict[str, Any]:
    """The ``error`` notification of an :class:`ErrorEvent` (no stack trace: it is in the DB)."""
    occurred = event.occurred_at
    return {
        "id": event.id,
        "component": event.component,
        "severity": event.severity,
        "category": event.error_type,
        "message": event.message,
        "correlation_id": event.correlation_id,
        "job_id": event.job_id,
        "occurred_at": None if occurred is None else occurred.timestamp(),
    }


class _BreakerNotifier:
    def __init__(self, hub: EventHub) -> None:
        self._hub = hub

    def on_transition(self, breaker: Any, transition: Transition) -> None:
        self._hub.publish_threadsafe(
            "breaker",
            {
                "breaker": str(getattr(breaker, "name", "breaker")),
                "from_state": transition.from_state.value,
                "to_state": transition.to_state.value,
                "reason": transition.reason[:500],
                "at": transition.at_wall,
            },
        )


def breaker_listener(hub: EventHub) -> Any:
    """A breaker listener publishing each transition as a ``breaker`` event."""
    return _BreakerNotifier(hub)
