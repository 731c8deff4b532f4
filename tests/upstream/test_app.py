"""The booking stub over HTTP (in process, httpx ASGI transport): routes, statuses,
counting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from resilience.upstream.app import create_app
from resilience.upstream.stats import UpstreamStats

BODY = {"date": "2026-12-05", "time": "10:00", "customer": {"name": "Ada"}, "reference": "r1"}


@pytest_asyncio.fixture
async def stub() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(seed=3))
    async with httpx.AsyncClient(transport=transport, base_url="http://stub.test") as client:
        yield client


async def stats(client: httpx.AsyncClient) -> UpstreamStats:
    return UpstreamStats.from_json((await client.get("/_stats", params={"log": "1"})).json())


async def test_create_get_cancel_and_replay(stub: httpx.AsyncClient) -> None:
    created = await stub.post("/bookings", json=BODY, headers={"Idempotency-Key": "k1"})
    replay = await stub.post("/bookings", json=BODY, headers={"Idempotency-Key": "k1"})
    booking_id = created.json()["booking_id"]
    assert created.status_code == 201
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (200, "true")
    assert replay.json()["booking_id"] == booking_id
    assert (await stub.get(f"/bookings/{booking_id}")).json()["status"] == "confirmed"
    assert (await stub.delete(f"/bookings/{booking_id}")).json()["status"] == "cancelled"
    assert (await stub.get("/bookings/nope")).status_code == 404


async def test_every_request_is_counted_by_route_and_status_but_stats_are_not(
    stub: httpx.AsyncClient,
) -> None:
    await stub.get("/availability", params={"date": "2026-12-05"})
    await stub.get("/availability", params={"date": "bad"})
    await stub.post("/bookings", json=BODY)  # no key
    await stub.post("/bookings", content=b"{", headers={"Idempotency-Key": "k"})
    await stub.get("/nowhere")
    await stub.get("/_stats")
    got = await stats(stub)
    assert got.by_route == {
        "GET /availability": {"200": 1, "400": 1},
        "POST /bookings": {"400": 2},
        "GET (unknown route)": {"404": 1},
    }
    assert got.total == 5
    assert [entry[1] for entry in got.log][:2] == ["GET /availability"] * 2
    assert got.calls_between(0, got.log[-1][0] + 1) == 5


async def test_reset_zeroes_counts_and_bookings(stub: httpx.AsyncClient) -> None:
    await stub.post("/bookings", json=BODY, headers={"Idempotency-Key": "k1"})
    await stub.post("/_stats/reset")
    got = await stats(stub)
    assert (got.total, got.bookings["bookings"]) == (0, 0)
