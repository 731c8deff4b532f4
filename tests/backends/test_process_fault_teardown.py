"""A harness stopped in the middle of a pause leaves no server stopped and none behind.

`resilience run` of a scenario that pauses PostgreSQL, in a child process with
a private state dir; once the server is stopped (state T), the harness gets
SIGINT, SIGTERM or SIGKILL. Afterwards no process of that environment is
left, stopped or not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCENARIO = """
name: pause-then-stop
description: PostgreSQL is paused and the harness is stopped during the pause (a test)
workload: {duration: 30s, warmup: 0.5s, rate: 20, mix: {lookup: 1.0}}
faults:
  - {name: frozen, at: 1s, duration: 20s, target: postgres, action: pause}
"""


RESILIENCE = str(Path(sys.executable).parent / "resilience")


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return None


def _server_pids(state_dir: Path, name: str | None = None) -> list[int]:
    pids = []
    for marker in state_dir.glob("envs/*/marker.json"):
        data = json.loads(marker.read_text())
        pids += [p["pid"] for p in data.get("processes", []) if name in (None, p["name"])]
    return pids


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])  # Ctrl-C: test_process_faults
def test_stopping_the_harness_during_a_pause_leaves_nothing_stopped_or_running(
    tmp_path: Path, state_dir: Path, signum: int
) -> None:
    scenario = tmp_path / "pause.yaml"
    scenario.write_text(SCENARIO)
    private = state_dir / f"teardown-{signum}"
    private.mkdir(mode=0o711)
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(private)}
    harness = subprocess.Popen(
        [RESILIENCE, "run", str(scenario), "--report-dir", str(tmp_path / "reports")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        paused: list[int] = []
        while time.monotonic() < deadline and not paused:
            paused = [pid for pid in _server_pids(private, "postgres") if _state(pid) == "T"]
            time.sleep(0.1)
        assert paused, "the pause never took effect"
        servers = _server_pids(private)  # postgres, redis, the proxy server
        harness.send_signal(signum)
        harness.wait(timeout=60)
        deadline = time.monotonic() + 20  # the reaper's grace periods
        while time.monotonic() < deadline and any(_state(p) for p in servers):
            time.sleep(0.1)
        assert [p for p in servers if _state(p) not in (None, "Z")] == []
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
