"""/ws/events, supervised background components, error resolution, on a real server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from notify_support import serving
from service_support import FAST

from resilience.service import create_app
from resilience.service.runtime import open_service


async def _next_of(ws: Any, kind: str, timeout_s: float = 10.0, **match: Any) -> dict[str, Any]:
    """The next event of type ``kind`` whose fields equal ``match`` (others skipped)."""
    deadline = time.monotonic() + timeout_s
    while True:
        raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        event: dict[str, Any] = json.loads(raw)
        if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
            return event


async def test_crashed_component_is_logged_notified_recovered_and_resolved(urls: Any) -> None:
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        app = create_app(service, harness_control=True)
        async with (
            serving(app) as address,
            httpx.AsyncClient(base_url=f"http://{address}") as client,
            websockets.connect(f"ws://{address}/ws/events") as ws,
        ):
            hello = json.loads(await ws.recv())
            healthy = (await client.get("/health")).json()
            crashed = await client.post("/harness/crash/monitor")
            error = await _next_of(ws, "error", component="monitor")
            degraded = (await client.get("/health")).json()
            health_event = await _next_of(ws, "health", status="degraded")
            await asyncio.sleep(service.supervisor.restart_delay_s + 0.3)
            states = (await client.get("/harness/components")).json()
            unknown = await client.post("/harness/crash/no-such-thing")
            resolved = await client.post(f"/errors/{error['id']}/resolve")
            after = (await client.get("/health")).json()
            healthy_event = await _next_of(ws, "health", status="healthy")
            missing = await client.post("/errors/999999/resolve")
            listed = (await client.get("/errors")).json()
    row = await _error_row(urls.postgres_direct, error["id"])
    assert hello["type"] == "hello"
    assert healthy["status"] == "healthy"
    assert crashed.status_code == 200
    assert (error["severity"], error["category"]) == ("critical", "ComponentCrash")
    assert error["id"] is not None
    assert error["correlation_id"]
    assert error["occurred_at"] <= error["sent_at"]
    assert row["component"] == "monitor"
    assert "ComponentCrash" in row["stack_trace"]
    assert row["correlation_id"] == error["correlation_id"]
    assert degraded["status"] == "degraded"
    assert degraded["components"]["error_tracking"]["unresolved_critical"] == 1
    assert health_event["components"]["error_tracking"] == "degraded"
    assert states["monitor"]["status"] == "running"
    assert states["monitor"]["crashes"] == 1
    assert unknown.status_code == 404
    assert "monitor" in unknown.json()["message"]
    assert resolved.json() == {"id": error["id"], "resolved": True, "changed": True}
    assert after["status"] == "healthy"
    assert after["components"]["background"]["components"]["monitor"]["status"] == "running"
    assert healthy_event["previous"] == "degraded"
    assert missing.status_code == 404
    assert [e["resolved"] for e in listed if e["id"] == error["id"]] == [True]


async def test_crash_endpoint_exists_only_under_the_harness(urls: Any) -> None:
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        transport = httpx.ASGITransport(app=create_app(service, harness_control=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            response = await client.post("/harness/crash/monitor")
    assert response.status_code == 404
    assert service.supervisor.states()["monitor"]["crashes"] == 0


async def test_slow_garbage_and_stalled_subscribers_never_block_the_service_or_a_reader(
    urls: Any, known: dict[str, uuid.UUID]
) -> None:
    slug = next(iter(known))
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        hub = service.notifications
        hub.send_timeout_s = 0.5
        app = create_app(service, harness_control=True)
        async with serving(app) as address:
            hub.queue_size = 4096  # the reader's queue holds every event of the test
            async with (
                httpx.AsyncClient(base_url=f"http://{address}") as client,
                websockets.connect(f"ws://{address}/ws/events", max_size=None) as reader,
            ):
                assert json.loads(await reader.recv())["type"] == "hello"
                hub.queue_size = 16
                stalled = await _stalled_subscriber(address)
                garbage = await websockets.connect(f"ws://{address}/ws/events")
                assert json.loads(await garbage.recv())["type"] == "hello"
                await garbage.send("{not json")
                await garbage.send(b"\x00\xff" * 1000)
                notice = await _next_of(garbage, "notice")
                # It goes on reading (and sending garbage), so only the stalled one is cut off.
                garbage_reads = asyncio.create_task(_read_and_babble(garbage))
                received: list[int] = []

                async def read_all(count: int) -> None:
                    while len(received) < count:
                        event = json.loads(await reader.recv())
                        if event["type"] == "notice":
                            received.append(event["i"])

                reading = asyncio.create_task(read_all(2000))
                lookups = []
                for i in range(2000):  # ~8 MB in all: more than the stalled socket can buffer
                    hub.publish("notice", {"i": i, "pad": "x" * 4000})
                    if i % 10 == 0:
                        await asyncio.sleep(0.002)
                    if i % 100 == 0:
                        lookups.append((await client.get(f"/services/{slug}")).status_code)
                await asyncio.wait_for(reading, 30)
                # An error event while the bad subscribers are still connected: stored and
                # delivered like any other (nothing lost in the database).
                crashed = (await client.post("/harness/crash/breaker_events")).status_code
                error = await _next_of(reader, "error", component="breaker_events")
                for _ in range(100):  # the stalled subscriber is cut off after its send timeout
                    if hub.disconnected_slow:
                        break
                    await asyncio.sleep(0.05)
                metrics = (await client.get("/metrics")).text
                health = (await client.get("/health")).json()
                garbage_reads.cancel()
                await garbage.close()
            stalled.close()
    row = await _error_row(urls.postgres_direct, error["id"])
    assert crashed == 200
    assert (row["component"], row["correlation_id"]) == ("breaker_events", error["correlation_id"])
    assert notice["message"].startswith("this socket only sends")
    assert received == list(range(2000))
    assert lookups == [200] * 20
    assert hub.disconnected_slow == 1
    assert hub.dropped > 0
    dropped_line = next(
        line
        for line in metrics.splitlines()
        if line.startswith('resilience_notify_events{fate="dropped"}')
    )
    assert 0 < float(dropped_line.split()[-1]) <= hub.dropped  # later events may drop more
    assert health["components"]["notifications"]["disconnected_slow"] == 1


async def test_a_burst_drops_the_oldest_events_per_subscriber_and_counts_them(
    urls: Any,
) -> None:
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        hub = service.notifications
        async with (
            serving(create_app(service)) as address,
            websockets.connect(f"ws://{address}/ws/events") as ws,
        ):
            assert json.loads(await ws.recv())["type"] == "hello"
            first = hub.seq + 1
            for i in range(hub.queue_size + 100):  # no await: nobody can read in between
                hub.publish("notice", {"i": i})
            seqs = [json.loads(await ws.recv())["seq"] for _ in range(hub.queue_size)]
    assert hub.dropped == 100
    assert seqs == list(range(first + 100, first + 100 + hub.queue_size))


async def test_subscribers_beyond_the_limit_are_refused_and_the_rest_all_receive(
    urls: Any, known: dict[str, uuid.UUID]
) -> None:
    slug = next(iter(known))
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        hub = service.notifications
        hub.max_subscribers = 150
        async with (
            serving(create_app(service)) as address,
            httpx.AsyncClient(base_url=f"http://{address}") as client,
        ):
            sockets = await asyncio.gather(
                *(websockets.connect(f"ws://{address}/ws/events") for _ in range(200))
            )
            try:
                firsts = await asyncio.gather(*(_first_or_close(ws) for ws in sockets))
                lookup = await client.get(f"/services/{slug}")
                hub.publish("notice", {"to": "all"})
                live = [ws for ws, first in zip(sockets, firsts, strict=True) if first == "hello"]
                got = await asyncio.gather(*(_next_of(ws, "notice", to="all") for ws in live))
            finally:
                await asyncio.gather(*(ws.close() for ws in sockets))
    assert firsts.count("hello") == 150
    assert firsts.count(1013) == 50
    assert hub.refused == 50
    assert len(got) == 150
    assert lookup.status_code == 200


@pytest.mark.slow
async def test_thousands_of_real_subscribers_all_get_the_error_and_lookups_go_on(
    urls: Any, known: dict[str, uuid.UUID]
) -> None:
    """2000 WebSocket subscribers: each gets the crash's error event; the row is stored."""
    slug = next(iter(known))
    async with (
        open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        serving(create_app(service, harness_control=True)) as address,
        httpx.AsyncClient(base_url=f"http://{address}") as client,
    ):
        limit = asyncio.Semaphore(100)

        async def connect() -> Any:
            async with limit:
                ws = await websockets.connect(f"ws://{address}/ws/events", open_timeout=60)
                assert json.loads(await ws.recv())["type"] == "hello"
                return ws

        sockets = await asyncio.gather(*(connect() for _ in range(2000)))
        try:
            subscribers = service.notifications.stats()["subscribers"]
            crashed = await client.post("/harness/crash/alert_events")
            got = await asyncio.gather(
                *(_next_of(ws, "error", 60, component="alert_events") for ws in sockets)
            )
            lookups = [(await client.get(f"/services/{slug}")).status_code for _ in range(5)]
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    row = await _error_row(urls.postgres_direct, got[0]["id"])
    assert subscribers == 2000
    assert crashed.status_code == 200
    assert len({e["correlation_id"] for e in got}) == 1
    assert row["correlation_id"] == got[0]["correlation_id"]
    assert lookups == [200] * 5
    assert service.notifications.dropped == 0


async def _error_row(dsn: str, event_id: int) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow("SELECT * FROM error_events WHERE id = $1", event_id)
    finally:
        await conn.close()


async def _read_and_babble(ws: Any) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for _ in ws:
            await ws.send("garbage")


async def _stalled_subscriber(address: str) -> socket.socket:
    """A subscriber that completes the handshake and then never reads (tiny receive buffer)."""
    host, port = address.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, int(port)))
    await loop.sock_sendall(
        sock,
        (
            f"GET /ws/events HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode(),
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)  # byte by byte: nothing past the headers
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def _first_or_close(ws: Any) -> Any:
    try:
        return json.loads(await ws.recv())["type"]
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
