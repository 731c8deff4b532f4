"""``/ws/events``: one WebSocket subscriber of the :class:`~resilience.service.notify.EventHub`.

The socket only sends. The first message is ``{"type": "hello", ...}`` (the
subscription is live from then on); then every published event, in order.
Messages from the client are ignored (the first one is answered with a
``notice`` saying so); a client that stops reading loses its own oldest
events once its queue is full, and is disconnected (close code 1008) when one
send stays blocked for ``send_timeout_s``. Beyond the hub's subscriber limit
a new socket is closed at once with code 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from resilience.service.notify import EventHub, HubFull, Subscription

__all__ = ["serve_events"]

_MAX_IGNORED = 10_000


async def serve_events(websocket: WebSocket, hub: EventHub, *, send_timeout_s: float = 5.0) -> None:
    """Serve one subscriber until it disconnects (or is disconnected)."""
    await websocket.accept()
    try:
        subscription = hub.subscribe()
    except HubFull as exc:
        await websocket.close(code=1013, reason=str(exc)[:120])
        return
    try:
        subscription.queue.put_nowait(
            orjson.dumps(
                {"type": "hello", "queue_size": hub.queue_size, "seq": hub.seq},
            )
        )
        sender = asyncio.create_task(_send(websocket, hub, subscription, send_timeout_s))
        receiver = asyncio.create_task(_receive(websocket, subscription))
        _, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    finally:
        hub.unsubscribe(subscription)
    with contextlib.suppress(Exception):
        await websocket.close()


async def _send(
    websocket: WebSocket, hub: EventHub, subscription: Subscription, timeout_s: float
) -> None:
    while True:
        data = await subscription.next()
        try:
            async with asyncio.timeout(timeout_s):
                await websocket.send_text(data.decode())
        except TimeoutError:
            hub.disconnected_slow += 1
            with contextlib.suppress(Exception):
                await websocket.close(code=1008, reason="not reading: events were dropped")
            return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        subscription.delivered += 1


async def _receive(websocket: WebSocket, subscription: Subscription) -> None:
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        if message["type"] == "websocket.disconnect":
            return
        subscription.ignored_messages += 1
        if subscription.ignored_messages == 1 and not subscription.queue.full():
            subscription.queue.put_nowait(
                orjson.dumps(
                    {
                        "type": "notice",
                        "message": "this socket only sends events; client messages are ignored",
                    }
                )
            )
        if subscription.ignored_messages >= _MAX_IGNORED:
            return
