"""``resilience serve --workers 2``: /stats and the Locust gates see every worker's traffic."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from resilience.backends.readiness import free_port
from resilience.loadrun import (
    find_locustfile,
    locust_command,
    running,
    serve_command,
    wait_until_up,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROFILE = """
name: two-workers
catalogue: {seed: 42, size: 50}
shape: {kind: steady, users: 8, spawn_rate: 50, duration: 3s}
workload: {unknown_ratio: 0.02, invalid_ratio: 0.01, job_ratio: 0.2, wait_s: [0.01, 0.03]}
gates: ["failure_ratio < 1%", "service.workers >= 2"]
"""


@pytest.fixture
def two_workers(urls: Any) -> Iterator[str]:
    """A fresh ``resilience serve --workers 2`` on the test environment."""
    port = free_port()
    command = serve_command(
        host="127.0.0.1",
        port=port,
        workers=2,
        postgres_url=urls.postgres,
        redis_url=urls.redis,
    )
    url = f"http://127.0.0.1:{port}"
    with running(command) as process:
        wait_until_up(f"{url}/health", timeout_s=30, process=process)
        yield url


async def _until_both_publish(client: httpx.AsyncClient) -> dict[str, Any]:
    for _ in range(100):
        stats: dict[str, Any] = (await client.get("/stats")).json()
        if stats["workers"] == 2:
            return stats
        await asyncio.sleep(0.1)
    raise AssertionError(f"the second worker never published: {stats}")


async def test_stats_count_every_workers_lookups(two_workers: str, known: dict[str, Any]) -> None:
    """200 lookups over new connections (spread by the kernel): /stats counts all 200."""
    slug = next(iter(known))
    async with httpx.AsyncClient(base_url=two_workers) as client:
        await _until_both_publish(client)

        async def one() -> None:
            # A new connection each time, so both workers take some.
            response = await client.get(f"/services/{slug}", headers={"Connection": "close"})
            assert response.status_code == 200

        for _ in range(25):
            await asyncio.gather(*(one() for _ in range(8)))
        stats = (await client.get("/stats")).json()
        metrics = (await client.get("/metrics")).text
    assert (stats["scope"], stats["workers"], stats["lookups"]) == ("service", 2, 200)
    assert stats["success_rate"] == 1.0
    assert 'resilience_operations_total{operation="lookup",outcome="success"} 200' in metrics


def test_locust_gates_see_the_full_count(two_workers: str, tmp_path: Path) -> None:
    """The gates' /stats covers both workers: every lookup and job post Locust sent."""
    profile = tmp_path / "two-workers.yaml"
    profile.write_text(PROFILE)
    command = locust_command(
        locustfile=find_locustfile(ROOT / "loadtests" / "locustfile.py"),
        host_url=two_workers,
        profile=profile,
        report_dir=tmp_path,
        toxiproxy_url=None,
        processes=0,
        extra=["--only-summary"],
    )
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "gates.json").read_text())
    stats, endpoints = report["service_stats"], report["endpoints"]
    sent = endpoints["lookup"]["requests"] + endpoints["job_post"]["requests"]
    assert (stats["scope"], stats["workers"]) == ("service", 2)
    # Every job post looks its slug up once; a request cut off when Locust stopped
    # (at most one per user, 8) reached the service but is not in Locust's count.
    assert sent <= stats["lookups"] <= sent + 8
