"""postgres_error / redis_error on real servers: the error arrives, the session survives.

Property: whatever the SQLSTATE (or Redis error), the client library, the
protocol path (simple or extended, in a transaction or not) and the command,
the client sees that error and its connection answers the next command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resilience.backends import Environment
from resilience.proxy.toxics.redis_error import DEFAULT_ERRORS, error_line

ERROR_CODES = ["40001", "40P01", "57014", "25006", "55P03"]
HYPOTHESIS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def api(resilience_env: Environment, resilience_clean: None) -> Iterator[Any]:
    client = resilience_env.toxiproxy
    yield client
    client.reset()


def _add(api: Any, proxy: str, toxic: str, **attributes: Any) -> None:
    for existing in api.toxics(proxy):
        api.remove_toxic(proxy, existing.name)
    api.add_toxic(proxy, toxic, name="err", stream="upstream", attributes=attributes)


async def _asyncpg_round(url: str, sqlstate: str, extended: bool, in_tx: bool) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        with pytest.raises(asyncpg.PostgresError) as caught:
            await _hit_asyncpg(conn, extended, in_tx)
        assert caught.value.sqlstate == sqlstate
        assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
        assert await conn.fetchval("SELECT 7") == 7
    finally:
        await conn.close()


async def _hit_asyncpg(conn: Any, extended: bool, in_tx: bool) -> None:
    if in_tx:
        async with conn.transaction():
            await conn.fetchval("SELECT 1")
            await _hit_asyncpg(conn, extended, in_tx=False)
    elif extended:
        await conn.fetchval("SELECT 1000 + $1::int", 1)
    else:
        await conn.execute("SELECT 1000")


@HYPOTHESIS
@given(
    sqlstate=st.sampled_from(ERROR_CODES),
    extended=st.booleans(),
    in_tx=st.booleans(),
)
def test_asyncpg_gets_the_injected_sqlstate_and_stays_usable(
    resilience_env: Environment, api: Any, sqlstate: str, extended: bool, in_tx: bool
) -> None:
    _add(api, "postgres", "postgres_error", sqlstate=sqlstate, prefix="SELECT 1000")
    asyncio.run(_asyncpg_round(resilience_env.urls.postgres, sqlstate, extended, in_tx))


@HYPOTHESIS
@given(
    sqlstate=st.sampled_from(ERROR_CODES),
    prepare=st.booleans(),
    in_tx=st.booleans(),
)
def test_psycopg_gets_the_injected_sqlstate_and_stays_usable(
    resilience_env: Environment, api: Any, sqlstate: str, prepare: bool, in_tx: bool
) -> None:
    _add(api, "postgres", "postgres_error", sqlstate=sqlstate, prefix="SELECT 1000")
    with psycopg.connect(resilience_env.urls.postgres, autocommit=not in_tx) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("SELECT 1000 + %s", (1,), prepare=prepare).fetchone()
        assert caught.value.sqlstate == sqlstate
        if in_tx:  # the error aborted the transaction, as a real one does
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
            conn.rollback()
        assert conn.execute("SELECT %s::int + 1", (41,)).fetchone() == (42,)


def test_postgres_error_at_rate_hits_about_that_share_of_queries(
    resilience_env: Environment, api: Any
) -> None:
    _add(api, "postgres", "postgres_error", sqlstate="40001", rate=0.25)
    failed = 0
    with psycopg.connect(resilience_env.urls.postgres, autocommit=True) as conn:
        for _ in range(200):
            try:
                conn.execute("SELECT 1").fetchone()
            except psycopg.errors.SerializationFailure:
                failed += 1
    assert 20 <= failed <= 80  # 50 expected; the proxy's seeded draw is fixed


def test_postgres_too_many_clients_refuses_the_connection_then_recovers(
    resilience_env: Environment, api: Any
) -> None:
    _add(api, "postgres", "postgres_error", sqlstate="53300")
    with pytest.raises(psycopg.OperationalError, match="too many clients"):
        psycopg.connect(resilience_env.urls.postgres, connect_timeout=5)
    api.remove_toxic("postgres", "err")
    with psycopg.connect(resilience_env.urls.postgres, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_postgres_admin_shutdown_closes_the_session_and_asyncpg_reconnects(
    resilience_env: Environment, api: Any
) -> None:
    async def scenario() -> None:
        pool = await asyncpg.create_pool(resilience_env.urls.postgres, min_size=1, max_size=1)
        try:
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)) as caught:
                await pool.fetchval("SELECT 1000")
            assert "administrator command" in str(caught.value)
            api.remove_toxic("postgres", "err")
            assert await pool.fetchval("SELECT 1") == 1  # the pool opened a new connection
        finally:
            await pool.close()

    _add(api, "postgres", "postgres_error", sqlstate="57P01", prefix="SELECT 1000")
    asyncio.run(scenario())


@HYPOTHESIS
@given(
    error=st.sampled_from([*DEFAULT_ERRORS, "ERR custom failure"]),
    protocol=st.sampled_from([2, 3]),
    pipelined=st.booleans(),
)
def test_redis_py_gets_the_injected_error_and_stays_usable(
    resilience_env: Environment, api: Any, error: str, protocol: int, pipelined: bool
) -> None:
    _add(api, "redis", "redis_error", error=error, commands="SET")
    client = redis.Redis.from_url(resilience_env.urls.redis, protocol=protocol, socket_timeout=5)
    line = error_line(error)
    try:
        reply: BaseException
        if pipelined:
            pipe = client.pipeline(transaction=False)
            pipe.get("k").set("k", "v").incr("n").get("k")
            try:
                replies = pipe.execute(raise_on_error=False)
            except redis.RedisError as exc:  # redis-py raises LOADING even so
                reply = exc
            else:
                assert replies[0] is None
                assert replies[2] >= 1
                assert replies[3] is None
                reply = replies[1]
        else:
            with pytest.raises(redis.RedisError) as caught:
                client.set("k", "v")
            reply = caught.value
        assert isinstance(reply, redis.RedisError)
        assert str(reply) in line  # redis-py drops the codes it maps to a class
        assert client.get("k") is None  # the replaced SET never ran
        assert client.incr("n") >= 1
    finally:
        client.close()
