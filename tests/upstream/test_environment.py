"""The environment starts the booking stub behind proxy ``booking-api``."""

from __future__ import annotations

from typing import Any

import httpx

from resilience.upstream import fetch_stats


def test_booking_api_answers_through_its_proxy_and_counts_at_the_stub(
    resilience_env: Any, resilience_clean: None
) -> None:
    urls = resilience_env.urls
    assert urls.booking_api != urls.booking_api_direct
    proxy = resilience_env.toxiproxy.get_proxy("booking-api")
    assert proxy.upstream.endswith(urls.booking_api_direct.rsplit(":", 1)[1])
    with httpx.Client(base_url=urls.booking_api) as http:
        assert http.get("/availability", params={"date": "2026-12-05"}).status_code == 200
        resilience_env.toxiproxy.add_toxic(
            "booking-api", "http_error", stream="upstream", attributes={"status": 503}
        )
        assert http.get("/availability", params={"date": "2026-12-05"}).status_code == 503
    stats = fetch_stats(urls.booking_api_direct)
    assert stats.by_route == {"GET /availability": {"200": 1}}
