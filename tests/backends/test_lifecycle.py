"""Teardown leaves nothing behind: no process, no listener, no temp dir.

Also after SIGINT or SIGTERM of a process running the harness, and - through
the reaper - after SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from resilience.backends import Environment, EnvironmentConfig, StartupFailed
from resilience.backends.process import live_group_members
from resilience.backends.readiness import tcp_open
from resilience.backends.state import EnvironmentMarker, ProcessRecord, StateDir

HARNESS = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from resilience.backends import Environment, EnvironmentConfig

    config = EnvironmentConfig(state_dir=Path(sys.argv[1]))
    with Environment("local", config=config) as env:
        marker = env.backend.marker
        print(json.dumps({"dir": str(marker.directory),
                          "pids": [p.pid for p in marker.processes],
                          "urls": env.urls.as_dict()}), flush=True)
        while True:
            time.sleep(0.05)
    """
)


def _children(pid: int) -> set[int]:
    """Live (non-zombie) direct children of ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[1]) == pid:
                found.add(int(entry))
    return found


def _mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions ``text`` (servers name their dirs)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if text in cmdline and state != "Z":
                found.append(int(entry))
    return found


def _ports(urls: dict[str, str]) -> list[int]:
    return [int(u.rsplit(":", 1)[1].split("/")[0]) for u in urls.values()]


def _nothing_left(info: dict[str, object]) -> None:
    pids = info["pids"]
    assert isinstance(pids, list)
    deadline = time.monotonic() + 10
    while any(live_group_members(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if live_group_members(p)] == []
    urls = info["urls"]
    assert isinstance(urls, dict)
    assert [p for p in _ports(urls) if tcp_open("127.0.0.1", p)] == []


def test_stop_leaves_no_child_process_and_no_files(state_dir: Path) -> None:
    before = _children(os.getpid())
    env = Environment("local", config=EnvironmentConfig(state_dir=state_dir))
    with env:
        marker = env.backend.marker  # type: ignore[attr-defined]
        directory = marker.directory
        pids = [p.pid for p in marker.processes]
        assert len(pids) == 4  # proxy server, redis, booking API stub, postgres
        assert set(pids) <= _children(os.getpid())
        urls = env.urls.as_dict()
    assert _children(os.getpid()) == before
    assert not directory.exists()
    _nothing_left({"pids": pids, "urls": urls})


async def test_async_context_manager_starts_and_stops(state_dir: Path) -> None:
    before = _children(os.getpid())
    async with Environment("local", config=EnvironmentConfig(state_dir=state_dir)) as env:
        assert env.urls.postgres.startswith("postgresql://")
        assert env.toxiproxy.version()
        assert set(env.toxiproxy.proxies()) == {"postgres", "redis", "booking-api"}
    assert _children(os.getpid()) == before


def test_an_exception_in_the_block_still_tears_down(state_dir: Path) -> None:
    env = Environment("local", config=EnvironmentConfig(state_dir=state_dir))
    seen: list[Path] = []

    def body() -> None:
        with env:
            seen.append(env.backend.marker.directory)  # type: ignore[attr-defined]
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        body()
    directory = seen[0]
    assert not directory.exists()
    assert list((state_dir / "envs").iterdir()) == []


def test_a_failed_start_cleans_up_and_shows_the_log_tail(state_dir: Path) -> None:
    config = EnvironmentConfig(state_dir=state_dir, pg_settings={"shared_buffers": "nonsense"})
    before = _children(os.getpid())
    with pytest.raises(StartupFailed, match="log tail") as info:
        Environment("local", config=config).start()
    assert "shared_buffers" in str(info.value)
    assert _children(os.getpid()) == before
    assert list((state_dir / "envs").iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_the_harness_process_tears_everything_down(
    tmp_path: Path, state_dir: Path, sig: signal.Signals
) -> None:
    script = tmp_path / "harness.py"
    script.write_text(HARNESS)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(state_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info["pids"]) <= _children(proc.pid)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert _children(proc.pid) == set()
    _nothing_left(info)
    assert not Path(info["dir"]).exists()


def test_ctrl_c_during_start_leaves_nothing(tmp_path: Path, state_dir: Path) -> None:
    script = tmp_path / "harness.py"
    script.write_text(HARNESS)
    envs = state_dir / "envs"
    existing = set(envs.iterdir()) if envs.exists() else set()
    proc = subprocess.Popen([sys.executable, str(script), str(state_dir)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        # Interrupt as soon as the first server is recorded, before readiness.
        marker = None
        deadline = time.monotonic() + 30
        while marker is None and time.monotonic() < deadline:
            for directory in set(envs.iterdir()) - existing if envs.exists() else ():
                try:
                    loaded = EnvironmentMarker.load(directory)
                except (OSError, ValueError):
                    continue
                if loaded.processes:
                    marker = loaded
            time.sleep(0.002)
        assert marker is not None
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode != 0
    pids = [p.pid for p in marker.processes]
    deadline = time.monotonic() + 10
    while _mentioning(str(marker.directory)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _mentioning(str(marker.directory)) == []
    assert [p for p in pids if live_group_members(p)] == []
    assert not marker.directory.exists()


def test_after_sigkill_with_its_reaper_gone_the_next_start_reaps_the_leftovers(
    tmp_path: Path, state_dir: Path
) -> None:
    script = tmp_path / "harness.py"
    script.write_text(HARNESS)
    state = state_dir
    proc = subprocess.Popen([sys.executable, str(script), str(state)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    reaper_pid = int(EnvironmentMarker.load(Path(info["dir"])).info["reaper_pid"])
    os.kill(reaper_pid, signal.SIGKILL)  # the last line of defence is the next start
    proc.kill()
    proc.wait()
    assert Path(info["dir"]).exists()  # the marker stays behind
    with Environment("local", config=EnvironmentConfig(state_dir=state)) as env:
        assert not Path(info["dir"]).exists()
        assert env.urls.postgres
    _nothing_left(info)


def test_reaper_kills_recorded_processes_of_a_dead_owner(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    directory = state.envs / "orphan"
    directory.mkdir()
    marker = EnvironmentMarker(directory=directory, owner_pid=dead.pid, owner_start_time=1)
    marker.add_process(ProcessRecord("sleep", sleeper.pid, None))
    live = state.new_environment()  # our own: its owner is alive
    assert state.reap() == [directory]
    assert sleeper.wait(timeout=5) == -signal.SIGTERM
    assert not directory.exists()
    assert live.directory.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root caller runs PostgreSQL as another user")
@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs the system Python")
def test_orphaned_shared_memory_of_the_postgres_account_is_removed() -> None:
    from resilience.backends.postgres import remove_orphan_shared_memory, unprivileged_account

    run_as = unprivileged_account()
    assert run_as is not None
    make_segment = (
        "import ctypes, ctypes.util; libc = ctypes.CDLL(ctypes.util.find_library('c')); "
        "print(libc.shmget(0, 56, 0o1600))"  # IPC_PRIVATE, IPC_CREAT | 0600
    )
    # The system Python: the venv's may live where the unprivileged account cannot go.
    out = subprocess.run(["/usr/bin/python3", "-c", make_segment], user=run_as.uid,
                         group=run_as.gid, cwd="/", capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    shmid = int(out)
    assert shmid >= 0

    def present() -> bool:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
        return any(int(r.split()[1]) == shmid for r in rows)

    assert present()
    assert remove_orphan_shared_memory(run_as) >= 1
    assert not present()


def test_stop_leaves_no_postgres_backend_although_backends_leave_the_group(
    state_dir: Path,
) -> None:
    import psycopg

    from resilience.backends.reaper import process_start_time

    env = Environment("local", config=EnvironmentConfig(state_dir=state_dir))
    urls = env.start()
    try:
        conn = psycopg.connect(urls.postgres_direct)
        backend = conn.execute(b"SELECT pg_backend_pid()").fetchone()
        assert backend is not None
        started = process_start_time(backend[0])
        assert started is not None
    finally:
        env.stop()
    assert process_start_time(backend[0]) != started
    conn.close()
