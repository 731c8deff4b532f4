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


def test_the_per_test_reset_zeroes_the_stubs_counts(resilience_env: Any) -> None:
    """So each test's (and each scenario's) ``upstream.*`` figures are its own."""
    from resilience.pytest_factories import reset

    urls = resilience_env.urls
    with httpx.Client(base_url=urls.booking_api_direct) as http:
        assert http.get("/availability", params={"date": "2026-12-05"}).status_code == 200
    assert fetch_stats(urls.booking_api_direct).total >= 1
    reset(resilience_env)
    assert fetch_stats(urls.booking_api_direct).total == 0


def test_the_docker_backend_runs_the_stub_from_the_project_image() -> None:
    """The container runs the same module as the local process, on the image's own Python
    (the fault-proxy image installs the package there), listening on loopback only."""
    from resilience.backends.booking_api import container_spec
    from resilience.backends.config import EnvironmentConfig
    from resilience.backends.images import DOCKERFILES, LOCAL_IMAGES

    image = EnvironmentConfig().booking_api_image
    assert image == LOCAL_IMAGES["toxiproxy"]
    spec = container_spec(image, port=18080, seed=3)
    assert spec.entrypoint.startswith("/opt/resilience/")
    assert "python3 -m venv /opt/resilience" in DOCKERFILES["toxiproxy"]
    assert spec.command == [
        "-m", "resilience.upstream", "--host", "127.0.0.1", "--port", "18080", "--seed", "3",
    ]  # fmt: skip
