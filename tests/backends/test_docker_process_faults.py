"""Process faults on a real engine: docker pause/unpause, kill, restart, and always undone.

Needs the private engine with the local images (see test_docker_backend.py);
skips with the reason otherwise. The harness tests run ``resilience run
--backend docker`` of a scenario that pauses PostgreSQL and stop it during the
pause: after Ctrl-C or SIGTERM the engine's own event log shows the container
unpaused before it was removed; after SIGKILL the reaper removes the (still
paused) containers, and ``resilience down`` removes those of a dead owner.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resilience.backends import Environment
from resilience.backends.docker_reaper import BOOT_LABEL, OWNER_LABEL
from tests.backends.test_docker_backend import requires_images

RESILIENCE = str(Path(sys.executable).with_name("resilience"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docker_env() -> Iterator[Environment]:
    with Environment("docker") as env:
        yield env


@pytest.fixture
def client() -> Iterator[Any]:
    import docker

    engine = docker.from_env()
    try:
        yield engine
    finally:
        engine.close()


def _status(env: Environment, name: str) -> str:
    container = env.backend.server_control().containers[name]  # type: ignore[attr-defined]
    sdk = container.get_wrapped_container()
    sdk.reload()
    return str(sdk.status)


@requires_images
def test_a_paused_postgres_accepts_tcp_and_never_answers_until_resumed(
    docker_env: Environment,
) -> None:
    import psycopg

    control = docker_env.server_control()
    with psycopg.connect(docker_env.urls.postgres_direct, autocommit=True) as held:
        control.pause("postgres")
        try:
            assert _status(docker_env, "postgres") == "paused"
            started = time.monotonic()
            with pytest.raises(psycopg.OperationalError):  # accepted, then no answer
                psycopg.connect(docker_env.urls.postgres_direct, connect_timeout=1)
            assert time.monotonic() - started >= 0.9
        finally:
            control.resume("postgres")
        assert _status(docker_env, "postgres") == "running"
        assert held.execute("SELECT 1").fetchone() == (1,)  # the held session carries on


@requires_images
def test_a_killed_postgres_starts_again_and_recovers_its_committed_rows(
    docker_env: Environment,
) -> None:
    import psycopg

    direct = docker_env.urls.postgres_direct
    with psycopg.connect(direct, autocommit=True) as conn:
        # The container runs with synchronous_commit off (speed); this session waits
        # for its commits to reach the WAL, as a server configured for durability does.
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE IF NOT EXISTS crash_probe (n int)")
        conn.execute("INSERT INTO crash_probe VALUES (42)")
    control = docker_env.server_control()
    control.kill("postgres")
    assert _status(docker_env, "postgres") == "exited"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(direct, connect_timeout=1)
    control.start("postgres")  # returns once it answers
    with psycopg.connect(direct, autocommit=True) as conn:
        assert conn.execute("SELECT n FROM crash_probe").fetchall() == [(42,)]
        conn.execute("DROP TABLE crash_probe")


@requires_images
def test_a_graceful_postgres_stop_is_a_fast_shutdown_not_a_crash(
    docker_env: Environment,
) -> None:
    import psycopg

    control = docker_env.server_control()
    with psycopg.connect(docker_env.urls.postgres_direct):  # a client would block a smart one
        started = time.monotonic()
        control.stop("postgres")
        stopped_s = time.monotonic() - started
    control.start("postgres")
    container = control.containers["postgres"].get_wrapped_container()  # type: ignore[attr-defined]
    logs = container.logs(tail=40).decode(errors="replace")
    assert "fast shutdown request" in logs
    assert "was interrupted" not in logs.split("fast shutdown request")[-1]  # no crash recovery
    assert stopped_s < 10


@requires_images
def test_a_cold_redis_restart_empties_it_and_keep_data_keeps_the_dataset(
    docker_env: Environment,
) -> None:
    import redis

    control = docker_env.server_control()
    client = redis.Redis.from_url(docker_env.urls.redis_direct)
    try:
        client.set("kept", "1")
        control.stop("redis", keep_data=True)
        control.start("redis")
        assert client.get("kept") == b"1"
        control.kill("redis")  # cold: the saved dataset is gone too
        control.start("redis")
        assert client.get("kept") is None
        assert client.dbsize() == 0
    finally:
        client.close()


PAUSE_SCENARIO = """
name: docker-pause-then-stop
description: PostgreSQL is paused and the harness is stopped during the pause (a test)
workload: {duration: 40s, warmup: 0.5s, rate: 20, mix: {lookup: 1.0}}
faults:
  - {name: frozen, at: 1s, duration: 30s, target: postgres, action: pause}
"""


def _owned_by(client: Any, pid: int) -> list[dict[str, Any]]:
    found = client.api.containers(all=True, filters={"label": f"{OWNER_LABEL}={pid}"})
    return list(found)


def _actions(client: Any, container_id: str, since: float) -> list[str]:
    events = client.api.events(
        since=int(since), until=int(time.time()) + 1, decode=True,
        filters={"container": container_id, "type": "container"},
    )  # fmt: skip
    return [str(e.get("Action") or e.get("status")) for e in events]


@requires_images
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_harness_stopped_during_a_docker_pause_leaves_no_container(
    tmp_path: Path, client: Any, signum: int
) -> None:
    scenario = tmp_path / "pause.yaml"
    scenario.write_text(PAUSE_SCENARIO)
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(tmp_path / "state")}
    since = time.time() - 1
    harness = subprocess.Popen(
        [RESILIENCE, "run", str(scenario), "--backend", "docker",
         "--report-dir", str(tmp_path / "reports")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        paused: list[dict[str, Any]] = []
        deadline = time.monotonic() + 90
        while not paused and time.monotonic() < deadline and harness.poll() is None:
            paused = [c for c in _owned_by(client, harness.pid) if c["State"] == "paused"]
            time.sleep(0.1)
        assert paused, "the pause never took effect"
        assert len(_owned_by(client, harness.pid)) == 4  # with the booking API stub
        harness.send_signal(signum)
        harness.wait(timeout=60)
        deadline = time.monotonic() + 20  # the reaper's grace period
        while _owned_by(client, harness.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _owned_by(client, harness.pid) == []
        actions = _actions(client, paused[0]["Id"], since)
        assert "destroy" in actions
        if signum != signal.SIGKILL:  # the harness's own teardown: unpaused, then removed
            assert "unpause" in actions
            assert actions.index("unpause") < actions.index("destroy")
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()


@requires_images
def test_resilience_down_removes_the_containers_of_a_dead_owner(
    tmp_path: Path, client: Any
) -> None:
    from resilience.backends.images import LOCAL_IMAGES

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs: the owner SIGKILLed with its reaper
    container = client.containers.create(
        LOCAL_IMAGES["redis"],
        ["sleep", "600"],
        network_mode="host",
        labels={OWNER_LABEL: str(gone.pid), BOOT_LABEL: "1"},
    )
    container.start()
    container.pause()
    try:
        env = {**os.environ, "RESILIENCE_STATE_DIR": str(tmp_path)}
        result = subprocess.run(
            [RESILIENCE, "down"], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "removed 1 orphaned container" in result.stdout
        assert _owned_by(client, gone.pid) == []
    finally:
        for left in _owned_by(client, gone.pid):
            client.api.remove_container(left["Id"], force=True)


@requires_images
@pytest.mark.slow
def test_the_postgres_killed_scenario_passes_on_the_docker_backend(tmp_path: Path) -> None:
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [RESILIENCE, "run", str(ROOT / "scenarios" / "15-postgres-killed.yaml"),
         "--backend", "docker", "--report-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "PASS postgres-killed" in result.stdout
