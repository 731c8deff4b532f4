"""Real headless Locust runs against the real service on loopback (a few seconds each).

One local environment (PostgreSQL, Redis, proxies) serves the module; each
test gets a fresh service process so ``/stats`` starts from zero. The first
test goes through ``resilience load`` end to end instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from resilience.backends.readiness import free_port
from resilience.loadrun import find_locustfile, locust_command

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = find_locustfile(ROOT / "loadtests" / "locustfile.py")

PROFILE = """
name: {name}
catalogue: {{seed: 42, size: 300}}
shape: {{kind: steady, users: {users}, spawn_rate: 50, duration: {duration}}}
workload: {{unknown_ratio: {unknown}, invalid_ratio: 0.01, job_ratio: 0.2, wait_s: [0.01, 0.03]}}
faults: {faults}
gates: {gates}
"""


def write_profile(
    directory: Path,
    name: str,
    *,
    users: int = 8,
    duration: str = "3s",
    unknown: float = 0.02,
    faults: list[dict[str, Any]] | None = None,
    gates: list[str] | None = None,
) -> Path:
    path = directory / f"{name}.yaml"
    body = PROFILE.format(
        name=name,
        users=users,
        duration=duration,
        unknown=unknown,
        faults=json.dumps(faults or []),
        gates=json.dumps(gates or ["failure_ratio < 1%", "http.lookup p(95) < 200ms"]),
    )
    path.write_text(body)
    return path


def run_locust(
    url: str,
    profile: Path,
    report_dir: Path,
    *extra: str,
    toxiproxy_url: str | None = None,
    processes: int = 0,
) -> subprocess.CompletedProcess[str]:
    command = locust_command(
        locustfile=LOCUSTFILE,
        host_url=url,
        profile=profile,
        report_dir=report_dir,
        toxiproxy_url=toxiproxy_url,
        processes=processes,
        extra=["--only-summary", *extra],
    )
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def gates_report(report_dir: Path) -> dict[str, Any]:
    return json.loads((report_dir / "gates.json").read_text())


def test_resilience_load_brings_everything_up_and_passes_its_gates(tmp_path: Path) -> None:
    profile = write_profile(tmp_path, "short")
    reports = tmp_path / "reports"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from resilience.cli import main; main()",
            "load",
            str(profile),
            "--backend",
            "local",
            "--report-dir",
            str(reports),
            "--",
            "--only-summary",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all gates passed" in result.stdout
    report = gates_report(reports)
    assert report["passed"] is True
    assert report["endpoints"]["lookup"]["requests"] > 50
    assert report["service_stats"]["lookups"] > 50  # /stats was read from the service
    for name in ("locust_stats.csv", "locust.html", "gates.junit.xml"):
        assert (reports / name).is_file(), name


def test_an_impossible_gate_makes_locust_exit_non_zero(tmp_path: Path, service: str) -> None:
    profile = write_profile(tmp_path, "impossible", duration="2s")
    result = run_locust(service, profile, tmp_path, "--gate", "http.lookup p(50) < 1us")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "1 of 3 gates FAILED" in result.stdout
    report = gates_report(tmp_path)
    assert report["passed"] is False
    failed = [g for g in report["gates"] if g["status"] == "fail"]
    assert [g["gate"] for g in failed] == ["http.lookup p(50) < 1us"]
    suite = ET.parse(tmp_path / "gates.junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")


def test_a_postgres_outage_in_the_timeline_shows_in_the_results(
    tmp_path: Path, service: str, environment: Any
) -> None:
    """Unknown slugs must reach PostgreSQL: while it is cut off they fall back, then recover."""
    profile = write_profile(
        tmp_path,
        "outage",
        duration="4s",
        unknown=0.5,
        faults=[
            {
                "name": "pg-down",
                "at": "0.5s",
                "duration": "2s",
                "target": "postgres",
                "action": "disable",
            }
        ],
        gates=["http.lookup.failure_ratio < 1%", "fallback_rate > 0"],
    )
    api = environment.urls.toxiproxy_api
    result = run_locust(service, profile, tmp_path, toxiproxy_url=api)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = gates_report(tmp_path)
    assert [(f["op"], f["fault"], f["ok"]) for f in report["faults"]] == [
        ("start", "pg-down", True),
        ("stop", "pg-down", True),
    ]
    stats = report["service_stats"]
    assert stats["fallback_rate"] > 0.01
    assert stats["reasons"]  # why they fell back: connection, timeout or circuit_open
    with urllib.request.urlopen(f"{api}/proxies/postgres") as response:
        assert json.loads(response.read())["enabled"] is True  # put back at the end


def test_faults_are_removed_even_when_the_run_ends_first(
    tmp_path: Path, service: str, environment: Any
) -> None:
    profile = write_profile(
        tmp_path,
        "cut-short",
        duration="2s",
        faults=[
            {
                "name": "slow",
                "at": "0.2s",
                "target": "postgres",
                "toxic": "latency",
                "attributes": {"latency": 50},
            }
        ],
        gates=["http.lookup.requests > 0"],
    )
    api = environment.urls.toxiproxy_api
    result = run_locust(service, profile, tmp_path, toxiproxy_url=api)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [f["op"] for f in gates_report(tmp_path)["faults"]] == ["start"]
    with urllib.request.urlopen(f"{api}/proxies/postgres/toxics") as response:
        assert json.loads(response.read()) == []


def test_distributed_run_with_two_local_worker_processes(tmp_path: Path, service: str) -> None:
    profile = write_profile(tmp_path, "distributed", users=10)
    # a seed of its own: the database keeps the jobs of the module's other runs
    result = run_locust(service, profile, tmp_path, "--seed", "4242", processes=2)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = gates_report(tmp_path)
    assert report["locust_workers"] == 2
    assert report["passed"] is True
    assert report["endpoints"]["lookup"]["requests"] > 50  # aggregated from both workers
    assert report["service_stats"]["jobs"]["replayed"] == 0  # workers do not share key sequences


def test_master_and_separate_workers_as_across_machines(tmp_path: Path, service: str) -> None:
    """Workers started on their own get the profile options from the master."""
    profile = write_profile(tmp_path, "master", users=6, duration="2s")
    port = free_port()
    worker = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
              "--master-host", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
    workers = [subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for _ in range(2)]  # fmt: skip
    try:
        result = run_locust(
            service, profile, tmp_path,
            "--master", "--expect-workers", "2", "--master-bind-port", str(port),
        )  # fmt: skip
    finally:
        for process in workers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = gates_report(tmp_path)
    assert report["locust_workers"] == 2
    assert report["endpoints"]["job_post"]["requests"] > 0  # workers ran the profile's mix


def test_a_fault_that_cannot_be_applied_makes_the_run_an_error(
    tmp_path: Path, service: str
) -> None:
    """As for scenarios: exit 2 and a JUnit ``run`` error when the proxy API refuses."""
    profile = write_profile(
        tmp_path, "no-proxy", duration="1s",
        faults=[{"at": 0, "duration": "0.5s", "target": "postgres", "action": "disable"}],
        gates=["http.lookup.requests > 0"],
    )  # fmt: skip
    dead_api = f"http://127.0.0.1:{free_port()}"
    result = run_locust(service, profile, tmp_path, toxiproxy_url=dead_api)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    report = gates_report(tmp_path)
    assert report["fault_errors"]
    assert [f["ok"] for f in report["faults"]] == [False, False]
    assert 'name="run"' in (tmp_path / "gates.junit.xml").read_text()
