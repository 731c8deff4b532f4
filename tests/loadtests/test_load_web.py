"""``resilience load --web``: Locust's web UI with our fault timeline and gates (real run)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from resilience.backends.readiness import free_port
from resilience.loadrun import find_locustfile, locust_command

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROFILE = """
name: web
catalogue: {seed: 42, size: 300}
shape: {kind: steady, users: 4, spawn_rate: 50, duration: 6s}
workload: {unknown_ratio: 0.3, invalid_ratio: 0.0, job_ratio: 0.0, wait_s: [0.01, 0.03]}
faults:
  - {name: pg-down, at: 1s, duration: 2s, target: postgres, action: disable}
gates: ["http.lookup.failure_ratio < 1%", "fallback_rate > 0"]
"""


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_web_ui_shows_our_faults_and_gates_while_the_load_runs(
    tmp_path: Path, service: str, environment: Any
) -> None:
    url, toxiproxy = service, environment.urls.toxiproxy_api
    profile = tmp_path / "web.yaml"
    profile.write_text(PROFILE)
    web_port = free_port()
    command = locust_command(
        locustfile=find_locustfile(ROOT / "loadtests" / "locustfile.py"),
        host_url=url,
        profile=profile,
        report_dir=tmp_path,
        toxiproxy_url=toxiproxy,
        processes=0,
        web=("127.0.0.1", web_port, 1.0),
    )
    assert "--headless" not in command
    states: list[dict[str, Any]] = []
    pages: list[str] = []
    log = tmp_path / "locust.log"
    with (
        log.open("wb") as sink,
        subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT) as locust,
    ):
        deadline = time.monotonic() + 60
        while locust.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                states.append(_get_json(f"http://127.0.0.1:{web_port}/resilience.json"))
                if not pages:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{web_port}/resilience", timeout=5
                    ) as response:
                        pages.append(response.read().decode())
            except OSError:
                continue
        if locust.poll() is None:
            locust.kill()
        code = locust.wait(10)
    assert code == 0, log.read_text()[-3000:]
    assert pages
    assert "Fault timeline" in pages[0]
    assert states[0]["planned_faults"][0]["name"] == "pg-down"
    ops = {(r["op"], r["fault"], r["ok"]) for s in states for r in s["faults"]}
    assert ("start", "pg-down", True) in ops
    judged = [s["gates"] for s in states if s["gates"]]
    assert judged
    assert {g["gate"] for g in judged[-1]} == {"http.lookup.failure_ratio", "fallback_rate"}
    assert json.loads((tmp_path / "gates.json").read_text())["passed"] is True
