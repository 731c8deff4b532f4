"""``resilience load`` against any HTTP target: the tiny test app started as a command.

Real processes: the CLI, Locust, the tiny app (tests/targets/tiny_app.py) and,
for the fault run, a local environment. Every run uses a marker in the app's
command line so the tests can check that nothing is left running.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from loadtests.buckets import Buckets, degraded_metrics
from loadtests.gates import fault_timeline
from loadtests.profile import load_profile
from loadtests.timeline import parse_faults
from tests.targets.conftest import TINY_APP

SCENARIO = """\
name: tiny-scenario
seed: 5
target:
  command: "python app.py {port}"
  url: "http://127.0.0.1:{port}"
dependencies: {}
workload:
  duration: 5s
  rate: 10
  keys: {values: [alpha, beta]}
  requests:
    - {name: lookup, path: "/items/{key}", weight: 3}
    - {name: health, path: /health}
"""

TARGET = """\
target:
  command: "{python} {app} {{port}} {marker}"
  url: "http://127.0.0.1:{{port}}"
  ready: /health
  env: {{REDIS_URL: "{redis}"}}
  startup_timeout: 15s
  shutdown_timeout: 2s
"""


def _tiny_target(marker: str, redis: str = "{redis.url}") -> str:
    return TARGET.format(python=sys.executable, app=TINY_APP, marker=marker, redis=redis)


REQUESTS = """\
keys: [alpha, beta, gamma]
requests:
  - {name: item, path: "/items/{key}", weight: 4, degraded_when: [{header: X-Fallback}]}
  - {name: missing, path: /missing, weight: 1, status: {404: ok}}
"""


def _cli(*args: str, env: dict[str, str] | None = None, timeout_s: float = 120) -> (
    subprocess.CompletedProcess[str]
):
    return subprocess.run(
        [sys.executable, "-c", "from resilience.cli import main; main()", "load", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _left_running(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if marker.encode() in cmdline and b"tiny_app" in cmdline:
            found.append(int(entry.name))
    return found


def _gates(reports: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((reports / "gates.json").read_text())
    return data


# --- the profile's target sections ------------------------------------------------


def test_a_profile_takes_an_included_scenarios_target_and_picks_its_requests(
    tmp_path: Path,
) -> None:
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "shape: {kind: steady, users: 1, duration: 1s}\n"
        "include: scenario.yaml\n"
        "requests: [{name: lookup, weight: 7}]\n"
    )
    target = load_profile(profile).target_for(profile)
    assert target.is_http
    assert [(r.name, r.weight, r.path) for r in target.requests] == [
        ("lookup", 7.0, "/items/{key}")
    ]
    assert target.keys == ("alpha", "beta")
    assert target.seed == 5


def test_a_profile_naming_a_request_the_scenario_lacks_is_refused(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "shape: {kind: steady, users: 1, duration: 1s}\ninclude: scenario.yaml\nrequests: [lokup]\n"
    )
    with pytest.raises(ValueError, match=r"requests\[0\]: no request named 'lokup'.*'lookup'"):
        load_profile(profile).target_for(profile)
    result = _cli(str(profile), "--report-dir", str(tmp_path / "r"), timeout_s=60)
    assert result.returncode == 2, result.stderr
    assert "no request named 'lokup'" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_http_target_without_requests_exits_2_saying_so(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("shape: {kind: steady, users: 1, duration: 1s}\n" + _tiny_target("x"))
    result = _cli(str(profile), "--report-dir", str(tmp_path / "r"), timeout_s=60)
    assert result.returncode == 2, result.stderr
    assert "needs 'requests'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_fault_on_an_undeclared_dependency_is_refused(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "shape: {kind: steady, users: 1, duration: 1s}\n"
        + _tiny_target("x")
        + "dependencies: {redis: {}}\n"
        + REQUESTS
        + "faults: [{at: 1s, target: postgres, action: disable}]\n"
    )
    with pytest.raises(ValueError, match=r"'postgres' is not a proxied dependency.*redis"):
        load_profile(profile)


def test_a_url_that_does_not_answer_exits_2_naming_it(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: nothing answers there
        profile = tmp_path / "p.yaml"
        profile.write_text(
            "shape: {kind: steady, users: 1, duration: 1s}\n"
            "target: {url: 'http://127.0.0.1:1', ready: /health, startup_timeout: 1s}\n"
            + REQUESTS
        )
        url = f"http://127.0.0.1:{port}"
        result = _cli(str(profile), "--url", url, "--report-dir", str(tmp_path / "r"))
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"--url {url}: target.ready" in result.stderr
    assert "not ready within 1s" in result.stderr
    assert "Traceback" not in result.stderr


# --- per-second buckets and the fault timeline (pure) ----------------------------------


def test_buckets_slice_requests_by_phase_window_to_the_second() -> None:
    worker, master = Buckets(), Buckets()
    for second in range(6):  # test started at t=1000.0; one request a second per name
        worker.add("GET", "item", 1000.0 + second + 0.2, 10.0 + second, failed=second == 4,
                   degraded=2 <= second < 4)  # fmt: skip
    master.merge(worker.drain())  # as a worker's report reaches the master
    assert len(worker) == 0
    records, degraded = master.records([(2.0, 4.0)], start_s=1000.0)
    assert [(r.name, r.requests, r.failures) for r in records] == [("item", 2, 0)]
    assert records[0].histogram_ms == {12: 1, 13: 1}
    assert degraded_metrics(records, degraded, frozenset({"item"})) == {
        "http.item.degraded_ratio": 1.0,
        "degraded_ratio": 1.0,
    }
    after, _ = master.records([(4.0, 6.0)], start_s=1000.0)
    assert (after[0].requests, after[0].failures) == (2, 1)


def test_the_fault_timeline_has_one_window_per_occurrence_and_open_ones_run_to_the_end() -> None:
    faults = parse_faults(
        [
            {"name": "blip", "at": 1, "duration": 0.5, "every": 2, "times": 2,
             "target": "redis", "action": "disable"},
            {"name": "gone", "at": 4, "target": "postgres", "action": "disable"},
        ]
    )  # fmt: skip
    timeline = fault_timeline(tuple(faults), end_s=6.0)
    assert timeline.faults == {"blip": [(1.0, 1.5), (3.0, 3.5)], "gone": [(4.0, 6.0)]}


# --- real runs ----------------------------------------------------------------------


def test_a_command_on_the_command_line_loads_a_target_with_no_dependencies(
    tmp_path: Path,
) -> None:
    marker = f"no-deps-{tmp_path.name}"
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "shape: {kind: steady, users: 3, spawn_rate: 50, duration: 2s}\n"
        "workload: {wait_s: [0.01, 0.02]}\n"
        "target: {url: 'http://127.0.0.1:{port}', ready: /health, shutdown_timeout: 2s}\n"
        "dependencies: {}\n" + REQUESTS + "gates:\n"
        "  - failure_ratio == 0\n"
        "  - http.item.degraded_ratio > 0.9\n"  # no Redis at all: every item is a fallback
        "  - http.missing.requests >= 1\n"
    )
    command = f"{sys.executable} {TINY_APP} {{port}} {marker}"
    reports = tmp_path / "reports"
    result = _cli(str(profile), "--command", command, "--report-dir", str(reports),
                  "--", "--only-summary")  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = _gates(reports)
    assert report["passed"] is True
    assert "TargetUser" in result.stderr
    assert (reports / "target.log").read_text().startswith("tiny_app: listening")
    assert _left_running(marker) == []


@pytest.mark.slow
def test_a_fault_in_the_timeline_shows_in_the_phase_scoped_gates(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Redis disabled for 1.5 s: the app's answers are fallbacks during it, not before or after."""
    marker = f"fault-{tmp_path.name}"
    # a private state directory (not under pytest's 0700 tmp): PostgreSQL runs unprivileged
    state = Path(tempfile.mkdtemp(prefix="resilience-load-targets-"))
    state.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(state, ignore_errors=True))
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "shape: {kind: steady, users: 4, spawn_rate: 50, duration: 5s}\n"
        "workload: {wait_s: [0.01, 0.02], seed: 3}\n"
        + _tiny_target(marker)
        + "dependencies: {redis: {}, postgres: {}}\n"
        + REQUESTS
        + "faults:\n"
        "  - {name: redis-down, at: 1.5s, duration: 1.5s, target: redis, action: disable}\n"
        "gates:\n"
        "  - failure_ratio == 0\n"
        "  - 'http.item.degraded_ratio > 0.3 @ during: redis-down'\n"
        "  - 'http.item.degraded_ratio < 0.1 @ before'\n"
        "  - 'http.item.degraded_ratio < 0.1 @ after: redis-down'\n"
    )
    reports = tmp_path / "reports"
    result = _cli(str(profile), "--backend", "local", "--report-dir", str(reports),
                  "--", "--only-summary", env={"RESILIENCE_STATE_DIR": str(state)})  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = _gates(reports)
    assert report["passed"] is True
    gates = {g["gate"]: g for g in report["gates"]}  # type: ignore[attr-defined,index]
    during = next(g for name, g in gates.items() if "during" in name)
    assert during["observed"] > 0.3
    faults = report["faults"]
    assert [f["op"] for f in faults] == ["start", "stop"]  # type: ignore[attr-defined,index]
    assert _left_running(marker) == []
