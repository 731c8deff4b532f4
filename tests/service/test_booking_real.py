"""The booking flow end to end: the service's HTTP API, the real booking stub behind
proxy ``booking-api`` with HTTP toxics, PostgreSQL for error and breaker events."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
from service_support import FAST

from resilience.service import create_app
from resilience.service.runtime import open_service
from resilience.upstream import fetch_stats

BOOKING_FAST = FAST.with_overrides(
    {
        "booking.initial_delay_s": 0.01,
        "booking.max_delay_s": 0.05,
        "booking.attempt_timeout_s": 1.0,
        "booking.breaker_open_s": 60,
    }
)
BODY = {
    "date": "2026-12-05",
    "time": "11:00",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
}


def _client(service: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(service))
    return httpx.AsyncClient(transport=transport, base_url="http://service.test")


async def test_bookings_are_exactly_once_when_answers_are_lost_on_the_way_back(
    urls: Any, resilience_toxiproxy: Any
) -> None:
    """A third of the booking answers are replaced by a 503 after the stub booked
    (downstream http_error): every booking still succeeds, through retries with the same
    key, and the stub holds each exactly once. (Eight attempts and no breaker here, so
    no booking runs out of attempts by chance: 0.3^8 per booking.)"""
    resilience_toxiproxy.add_toxic(
        "booking-api",
        "http_error",
        stream="downstream",
        attributes={"rate": 0.3, "methods": ["POST"], "paths": ["/bookings"]},
    )
    config = BOOKING_FAST.with_overrides(
        {"booking.max_attempts": 8, "booking.breaker_failures": 1000}
    )
    async with (
        open_service(
            config, postgres_url=urls.postgres, booking_api_url=urls.booking_api
        ) as service,
        _client(service) as client,
    ):
        statuses = []
        for i in range(8):
            body = {**BODY, "time": "09:00" if i % 2 else "11:00", "date": f"2026-12-{i + 10}"}
            statuses.append((await client.post("/bookings", json=body)).status_code)
    stats = fetch_stats(urls.booking_api_direct)
    assert statuses == [201] * 8
    assert stats.bookings["bookings"] == 8
    assert stats.duplicates == 0
    assert stats.bookings["idempotent_replays"] == stats.calls("POST /bookings") - 8


async def test_invalid_customer_is_422_by_field_and_nothing_reaches_the_api(urls: Any) -> None:
    async with (
        open_service(
            BOOKING_FAST, postgres_url=urls.postgres, booking_api_url=urls.booking_api
        ) as service,
        _client(service) as client,
    ):
        bad = {**BODY, "customer": {"name": "", "email": "not-an-email"}, "time": "9am"}
        response = await client.post("/bookings", json=bad)
    fields = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert response.status_code == 422
    assert {("body", "time"), ("body", "customer", "name"), ("body", "customer", "email")} <= fields
    assert fetch_stats(urls.booking_api_direct).total == 0


async def test_api_down_writes_error_events_opens_the_breaker_and_degrades_health(
    urls: Any, resilience_toxiproxy: Any
) -> None:
    """Every failed call is an error_events row, the opening a circuit_breaker_events row;
    once open no call reaches the stub; /health grades the bookings critical."""
    resilience_toxiproxy.add_toxic(
        "booking-api", "http_error", stream="upstream", attributes={"status": 503}
    )
    async with (
        open_service(
            BOOKING_FAST, postgres_url=urls.postgres, booking_api_url=urls.booking_api
        ) as service,
        _client(service) as client,
    ):
        answers = [
            await client.get("/availability", params={"date": "2026-12-05"}) for _ in range(4)
        ]
        health = (await client.get("/health")).json()
    assert [a.status_code for a in answers] == [503] * 4
    assert "retry-after" in answers[-1].headers
    assert health["components"]["bookings"]["status"] == "critical"
    assert health["components"]["bookings"]["breaker"] == "open"
    assert fetch_stats(urls.booking_api_direct).total == 0  # answered by the proxy
    conn = await asyncpg.connect(urls.postgres_direct)
    try:
        errors = await conn.fetchval(
            "SELECT count(*) FROM error_events WHERE component = 'booking-api'"
        )
        transitions = await conn.fetch(
            "SELECT from_state, to_state FROM circuit_breaker_events "
            "WHERE breaker_name = 'booking-api'"
        )
    finally:
        await conn.close()
    assert errors == 4
    assert [(r["from_state"], r["to_state"]) for r in transitions] == [("closed", "open")]
