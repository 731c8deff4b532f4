"""Process faults on the local backend's real servers: pause, kill, restart, always undone."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import psycopg
import pytest
import redis

from resilience.backends import Environment
from resilience.backends.config import EnvironmentConfig
from resilience.backends.server_control import ServerControl, ServerControlUnavailable


@pytest.fixture(scope="module")
def env(state_dir: Path) -> Iterator[Environment]:
    config = replace(EnvironmentConfig.from_env(), state_dir=state_dir)
    with Environment("local", config=config) as environment:
        yield environment


@pytest.fixture
def control(env: Environment) -> Iterator[ServerControl]:
    servers = env.server_control()
    yield servers
    servers.resume_all()
    for name in ("postgres", "redis"):
        servers.start(name)


def _pg(env: Environment) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(env.urls.postgres_direct, autocommit=True, connect_timeout=2)


def test_a_paused_postgres_accepts_but_never_answers_until_resumed(
    env: Environment, control: ServerControl
) -> None:
    async def query_with_timeout() -> None:
        conn = await asyncpg.connect(env.urls.postgres_direct, timeout=5)
        try:
            control.pause("postgres")
            with pytest.raises(TimeoutError):  # an open session hangs too (its backend stops)
                await conn.fetchval("SELECT 1", timeout=1)
            with pytest.raises(psycopg.OperationalError):
                _pg(env)  # the TCP connect succeeds (backlog); the start-up reply never comes
        finally:
            control.resume("postgres")
            conn.terminate()

    asyncio.run(query_with_timeout())
    with _pg(env) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_killed_postgres_restarts_on_its_port_with_committed_data(
    env: Environment, control: ServerControl
) -> None:
    with _pg(env) as conn:
        # The local backend runs with synchronous_commit off (speed): a commit is durable
        # once the WAL writer wrote it (~200 ms). This session waits for it, as a real
        # server configured for durability would.
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE IF NOT EXISTS h18_crash (v int)")
        conn.execute("INSERT INTO h18_crash VALUES (7)")
    control.kill("postgres")
    with pytest.raises(psycopg.OperationalError):
        _pg(env)
    control.start("postgres")  # crash recovery from the WAL
    with _pg(env) as conn:
        assert conn.execute("SELECT v FROM h18_crash").fetchall() == [(7,)]
        conn.execute("DROP TABLE h18_crash")


@pytest.mark.parametrize("keep_data", [False, True])
def test_a_restarted_redis_is_cold_unless_it_keeps_its_data(
    env: Environment, control: ServerControl, keep_data: bool
) -> None:
    client = redis.Redis.from_url(env.urls.redis_direct, socket_timeout=5)
    client.set("h18", "v")
    control.stop("redis", keep_data=keep_data)
    control.start("redis")
    assert (client.get("h18") == b"v") is keep_data
    client.delete("h18")
    client.close()


def test_stopping_the_environment_with_a_paused_server_leaves_no_process(
    state_dir: Path,
) -> None:
    config = replace(EnvironmentConfig.from_env(), state_dir=state_dir)
    environment = Environment("local", config=config)
    environment.start()
    backend = environment.backend
    pids = [backend.postgres.process.pid, backend.redis.process.pid]  # type: ignore[attr-defined]
    environment.server_control().pause("postgres")
    environment.server_control().pause("redis")
    environment.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def test_the_external_backend_refuses_process_faults_saying_why() -> None:
    environment = Environment("external")
    with pytest.raises(ServerControlUnavailable, match="use the local or docker backend"):
        environment.server_control()
