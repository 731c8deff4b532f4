"""Nothing outlives the harness, SIGKILL included: the watchdog's reaper and `resilience down`.

Every test uses a private state dir and only ever signals processes it started
(or that the harness it started started).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from resilience.backends.readiness import http_json, tcp_open
from resilience.backends.reaper import (
    descendants,
    live_group_members,
    process_start_time,
    tagged_processes,
)
from resilience.backends.state import EnvironmentMarker
from resilience.backends.watchdog import Watchdog

CLI = [sys.executable, "-c", "from resilience.cli import main; main()"]

OWNER = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    from resilience.backends.watchdog import Watchdog

    watchdog = Watchdog.start(grace_s=1.0)
    data = Path(sys.argv[1])
    data.mkdir()
    watchdog.remove_on_reap(data)
    group = subprocess.Popen(["sleep", "300"], start_new_session=True, env=watchdog.child_env())
    watchdog.register(group.pid, kind="target", label="sleeper")
    # A wrapper whose child leaves the group (as a daemonising server does):
    # only the tag in its environment finds it.
    wrapper = subprocess.Popen(
        ["sh", "-c", "setsid sleep 300 & echo $!; wait"],
        stdout=subprocess.PIPE, text=True, env=watchdog.child_env(),
    )
    escaped = int(wrapper.stdout.readline())
    # A registered leader whose child leaves its session and clears its environment
    # (no tag): found as a descendant of the leader.
    leader = subprocess.Popen(
        ["sh", "-c", "env -i setsid sleep 300 & echo $!; wait"],
        stdout=subprocess.PIPE, text=True, start_new_session=True, env=watchdog.child_env(),
    )
    watchdog.register(leader.pid, kind="stub", label="leader")
    untagged = int(leader.stdout.readline())
    print(json.dumps({"group": group.pid, "escaped": escaped, "untagged": untagged,
                      "reaper": watchdog.pid}), flush=True)
    sys.stdin.read()
    """
)

SCENARIO = textwrap.dedent(
    """
    name: killed-mid-fault
    seed: 1
    workload:
      duration: 60s
      warmup: 1s
      rate: 20
      mix: {lookup: 1.0}
      keys: {catalogue_size: 20, unknown_share: 0.0}
    faults:
      - name: pg-down
        at: 1s
        duration: 55s
        target: postgres
        action: disable
    gates:
      - errors == 0
    """
)


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _alive(pid: int) -> bool:
    return process_start_time(pid) is not None


def _env(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "RESILIENCE_STATE_DIR": str(state_dir)}


def _ports(marker: EnvironmentMarker) -> list[int]:
    return [
        int(url.rsplit(":", 1)[1].split("/")[0])
        for key, url in marker.info.items()
        if isinstance(url, str) and "://" in url and key != "reaper_tag"
    ]


def _nothing_of(marker: EnvironmentMarker) -> bool:
    """No server group of the environment alive, no port open, no files left.

    Nor any process carrying its reaper's tag: PostgreSQL's backends call
    setsid(), so they are not in the postmaster's group.
    """
    return (
        not any(live_group_members(p.pid) for p in marker.processes)
        and not tagged_processes(str(marker.info["reaper_tag"]))
        and not any(tcp_open("127.0.0.1", port) for port in _ports(marker))
        and not marker.directory.exists()
    )


def test_sigkill_of_the_owner_reaps_registered_groups_tagged_escapees_and_paths(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(data)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    pids: dict[str, int] = {}
    try:
        assert owner.stdout is not None
        pids = json.loads(owner.stdout.readline())
        assert data.exists()
        assert _alive(pids["group"])
        assert _alive(pids["escaped"])
        assert _alive(pids["untagged"])
        owner.kill()
        owner.wait()
        gone = _wait_for(lambda: not any(_alive(pid) for pid in pids.values()), 5.0)
        assert gone, {k: _alive(v) for k, v in pids.items()}
        assert not data.exists()
        assert bystander.poll() is None  # an untagged, unregistered process is never touched
    finally:
        for key in ("group", "escaped", "untagged"):
            if key in pids and _alive(pids[key]):
                os.kill(pids[key], signal.SIGKILL)
        bystander.kill()
        bystander.wait()
        owner.kill()
        owner.wait()


FORKING_OWNER = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    from resilience.backends.watchdog import Watchdog

    watchdog = Watchdog.start(grace_s=1.0)
    group = subprocess.Popen(["sleep", "300"], start_new_session=True, env=watchdog.child_env())
    watchdog.register(group.pid, kind="stub", label="sleeper")
    forked = os.fork()  # keeps the pipe's write end open: no end-of-file when we die
    if forked == 0:
        time.sleep(300)
        os._exit(0)
    print(json.dumps({"group": group.pid, "forked": forked}), flush=True)
    sys.stdin.read()
    """
)


def test_the_owners_death_is_seen_even_when_a_forked_child_holds_the_pipe() -> None:
    owner = subprocess.Popen([sys.executable, "-c", FORKING_OWNER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    pids: dict[str, int] = {}
    try:
        assert owner.stdout is not None
        pids = json.loads(owner.stdout.readline())
        owner.kill()
        owner.wait()
        assert _wait_for(lambda: not _alive(pids["group"]), 5.0)
    finally:
        for pid in pids.values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        owner.kill()
        owner.wait()


def test_close_reaps_only_what_is_still_registered(tmp_path: Path) -> None:
    watchdog = Watchdog.start(grace_s=0.5)
    stopped = subprocess.Popen(["sleep", "300"], start_new_session=True)
    handed_over = subprocess.Popen(["sleep", "300"], start_new_session=True)
    forgotten = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        watchdog.register(stopped.pid, kind="server", label="stopped")
        watchdog.register(handed_over.pid, kind="server", label="handed over")
        watchdog.register(forgotten.pid, kind="stub", label="forgotten")
        watchdog.unregister(handed_over.pid)
        stopped.terminate()
        stopped.wait()
        watchdog.close()
        assert not watchdog.alive()
        assert forgotten.wait(timeout=5) == -signal.SIGTERM
        assert handed_over.poll() is None
    finally:
        for proc in (stopped, handed_over, forgotten):
            proc.kill()
            proc.wait()


def _start_run(tmp_path: Path, state_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    scenario = tmp_path / "killed.yaml"
    scenario.write_text(SCENARIO)
    run = subprocess.Popen(
        [*CLI, "run", str(scenario), "--no-progress", "-o", str(tmp_path / "reports")],
        env=_env(state_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return run, state_dir / "envs"


def _marker_with_fault_applied(envs: Path, timeout_s: float = 90.0) -> EnvironmentMarker:
    """The run's marker, once the proxy reports ``postgres`` disabled."""
    found: list[EnvironmentMarker] = []

    def applied() -> bool:
        for directory in envs.iterdir() if envs.exists() else ():
            try:
                marker = EnvironmentMarker.load(directory)
                api = marker.info.get("toxiproxy_api")
                if api and http_json("GET", f"{api}/proxies/postgres")["enabled"] is False:  # type: ignore[index]
                    found.append(marker)
                    return True
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return False

    assert _wait_for(applied, timeout_s), "the fault was never applied"
    return found[0]


def test_sigkill_of_resilience_run_mid_fault_leaves_nothing_within_5_s(
    tmp_path: Path, state_dir_private: Path
) -> None:
    run, envs = _start_run(tmp_path, state_dir_private)
    try:
        marker = _marker_with_fault_applied(envs)
        # PostgreSQL's backends and the like: outside the servers' groups, untagged.
        family = descendants([p.pid for p in marker.processes])
        assert family  # the service holds connections: there are backends
        run.kill()
        run.wait()
        assert _wait_for(lambda: _nothing_of(marker), 5.0), marker
        assert [pid for pid, start in family if process_start_time(pid) == start] == []
    finally:
        run.kill()
        run.wait()


def test_down_removes_an_orphaned_run_and_says_what(
    tmp_path: Path, state_dir_private: Path
) -> None:
    run, envs = _start_run(tmp_path, state_dir_private)
    try:
        marker = _marker_with_fault_applied(envs)
        # Its reaper gone too (the worst case): only `down` is left to clean up.
        os.kill(int(marker.info["reaper_pid"]), signal.SIGKILL)
        run.kill()
        run.wait()
        assert any(live_group_members(p.pid) for p in marker.processes)
        down = subprocess.run([*CLI, "down"], env=_env(state_dir_private), capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
        assert down.returncode == 0, down.stderr
        assert "removed orphaned environment" in down.stdout
        for process in marker.processes:
            assert f"{process.name} (pid {process.pid})" in down.stdout
        for port in _ports(marker):
            assert str(port) in down.stdout
        assert _nothing_of(marker)
    finally:
        run.kill()
        run.wait()
        subprocess.run([*CLI, "down", "--all"], env=_env(state_dir_private), check=False,
                       capture_output=True, timeout=60)  # fmt: skip


def test_down_stops_a_foreground_up(state_dir_private: Path) -> None:
    env = _env(state_dir_private)
    up = subprocess.Popen([*CLI, "up", "--backend", "local", "--json", "--no-schema"],
                          stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert up.stdout is not None
        urls = json.loads(up.stdout.readline())
        (directory,) = (state_dir_private / "envs").iterdir()
        marker = EnvironmentMarker.load(directory)
        down = subprocess.run([*CLI, "down"], env=env, capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
        assert down.returncode == 0, down.stderr
        assert f"of pid {up.pid}" in down.stdout
        assert up.wait(timeout=10) is not None
        assert _nothing_of(marker)
        assert not tcp_open("127.0.0.1", int(urls["toxiproxy_api"].rsplit(":", 1)[1]))
    finally:
        up.kill()
        up.wait()


def test_down_leaves_an_environment_in_use_by_a_live_process_unless_all(
    tmp_path: Path, state_dir_private: Path
) -> None:
    from resilience.backends.state import StateDir

    state = StateDir(state_dir_private)
    holder = subprocess.Popen(["sleep", "300"])
    try:
        marker = state.new_environment()
        marker.owner_pid = holder.pid
        marker.owner_start_time = process_start_time(holder.pid)
        marker.save()
        env = _env(state_dir_private)
        down = subprocess.run([*CLI, "down"], env=env, capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
        assert down.returncode == 0
        assert f"in use by pid {holder.pid}" in down.stdout
        assert "no environment is running" not in down.stdout
        assert marker.directory.exists()
        assert holder.poll() is None
        down_all = subprocess.run([*CLI, "down", "--all"], env=env, capture_output=True,
                                  text=True, timeout=60, check=False)  # fmt: skip
        assert down_all.returncode == 0, down_all.stderr
        assert holder.wait(timeout=10) == -signal.SIGTERM
        assert not marker.directory.exists()
    finally:
        holder.kill()
        holder.wait()


def test_down_with_nothing_running_says_so(state_dir_private: Path) -> None:
    down = subprocess.run([*CLI, "down"], env=_env(state_dir_private), capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert down.returncode == 0
    assert "no environment is running" in down.stdout
