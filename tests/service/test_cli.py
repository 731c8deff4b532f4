"""``resilience serve`` and ``resilience migrate`` against the session environment."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
from typer.testing import CliRunner

from resilience.backends.readiness import free_port
from resilience.cli import app


def test_migrate_prints_statistics_that_add_up(urls: Any) -> None:
    from resilience.db.catalogue import catalogue, generate_jobs, insert_jobs

    insert_jobs(urls.postgres_direct, generate_jobs(catalogue(size=50), count=40))
    result = CliRunner().invoke(app, ["migrate", "--postgres-url", urls.postgres, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["total_jobs"] == 40
    assert report["run"]["succeeded"] + report["run"]["skipped"] == 40
    assert report["jobs_with_uuid"] + report["jobs_without_uuid"] == report["total_jobs"]


def test_serve_rejects_a_bad_setting_with_a_clear_message() -> None:
    result = CliRunner().invoke(app, ["serve", "--postgres-url", "x", "--set", "breaker.nope=1"])
    assert result.exit_code != 0
    assert "nope" in result.output


def test_serve_answers_over_http_and_stops_on_sigint(urls: Any) -> None:
    port = free_port()
    command = [
        sys.executable, "-c", "from resilience.cli import main; main()", "serve",
        "--postgres-url", urls.postgres, "--redis-url", urls.redis, "--port", str(port),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                health = httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise AssertionError("the server did not come up")
        lookup = httpx.get(f"{base}/services/roof-repair", timeout=5)
    finally:
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=15)
    assert health.status_code == 200
    assert lookup.status_code == 200
    assert lookup.json()["outcome"] == "success"
    assert code == 0
