"""A toxic on a proxy really affects the traffic through it (PostgreSQL and Redis)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
import redis

from resilience.backends import Environment


def _timed(fn: Any) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def test_latency_toxic_slows_postgres_queries(pg_conn: Any, postgres_proxy: Any) -> None:
    pg_conn.execute(b"SELECT 1")
    postgres_proxy.add_toxic(name="slow", type="latency", attributes={"latency": 300})
    assert _timed(lambda: pg_conn.execute(b"SELECT 1").fetchone()) >= 0.25
    postgres_proxy.destroy_toxic("slow")
    assert _timed(lambda: pg_conn.execute(b"SELECT 1").fetchone()) < 0.25


def test_postgres_proxy_down_refuses_connections(
    resilience_env: Environment, postgres_proxy: Any
) -> None:
    with postgres_proxy.down(), pytest.raises(psycopg.OperationalError):
        psycopg.connect(resilience_env.urls.postgres, connect_timeout=2)
    # The direct URL is not affected, and the proxy works again afterwards.
    with psycopg.connect(resilience_env.urls.postgres_direct) as conn:
        assert conn.execute(b"SELECT 1").fetchone() == (1,)
    with psycopg.connect(resilience_env.urls.postgres, connect_timeout=2) as conn:
        assert conn.execute(b"SELECT 1").fetchone() == (1,)


def test_redis_latency_and_down(redis_client: Any, redis_proxy: Any) -> None:
    assert redis_client.ping()
    redis_proxy.add_toxic(name="slow", type="latency", attributes={"latency": 300})
    assert _timed(redis_client.ping) >= 0.25
    redis_proxy.destroy_toxic("slow")
    redis_proxy.disable()
    with pytest.raises(redis.ConnectionError):
        redis_client.ping()
    redis_proxy.enable()
