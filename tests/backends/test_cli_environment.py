"""`resilience up` / `down`: URLs printed (also as JSON), Ctrl-C and --detach/down stop all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from resilience.backends.readiness import tcp_open

CLI = [sys.executable, "-c", "from resilience.cli import main; main()"]


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_up_json_serves_until_ctrl_c(state_dir: Path) -> None:
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(state_dir)}
    proc = subprocess.Popen([*CLI, "up", "--backend", "local", "--json"], stdout=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        assert urls["backend"] == "local"
        with psycopg.connect(urls["postgres"]) as conn:  # the schema is applied
            assert conn.execute(b"SELECT count(*) FROM micro_services").fetchone() == (0,)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert not tcp_open("127.0.0.1", _port(urls["postgres_direct"]))


def test_up_detach_then_down(state_dir: Path) -> None:
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(state_dir)}
    up = subprocess.run([*CLI, "up", "--detach", "--json", "--seed", "42"], env=env,
                        capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert up.returncode == 0, up.stderr
    urls = json.loads(up.stdout)
    record = json.loads((state_dir / "up.json").read_text())
    with psycopg.connect(urls["postgres"]) as conn:
        assert conn.execute(b"SELECT count(*) FROM micro_services").fetchone() == (300,)
    again = subprocess.run([*CLI, "up", "--detach"], env=env, capture_output=True, text=True,
                           check=False)  # fmt: skip
    assert again.returncode == 1
    assert "already up" in again.stderr
    down = subprocess.run([*CLI, "down"], env=env, capture_output=True, text=True, check=False)
    assert down.returncode == 0, down.stderr
    assert f"pid {record['pid']}" in down.stdout
    assert not (state_dir / "up.json").exists()
    assert not tcp_open("127.0.0.1", _port(urls["postgres_direct"]))
    assert not tcp_open("127.0.0.1", _port(urls["toxiproxy_api"]))
