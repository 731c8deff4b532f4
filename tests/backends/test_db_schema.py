"""The schema applies idempotently on a real PostgreSQL, sync and async."""

from __future__ import annotations

import threading
from typing import Any

import asyncpg
import psycopg

from resilience.backends import Environment
from resilience.db.schema import TABLES, apply_schema, apply_schema_async

FUNCTIONS = ("migrate_job_uuids", "get_uuid_migration_stats")


def _catalog(dsn: str) -> tuple[set[str], set[str], set[str]]:
    with psycopg.connect(dsn) as conn:
        tables = {
            r[0]
            for r in conn.execute(b"SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        functions = {
            r[0]
            for r in conn.execute(
                b"SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
            )
        }
        indexes = {
            r[0]
            for r in conn.execute(b"SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
    return tables, functions, indexes


def test_schema_applies_twice_without_error(resilience_env: Environment) -> None:
    dsn = resilience_env.urls.postgres_direct
    before = _catalog(dsn)
    apply_schema(dsn)
    apply_schema(dsn)
    assert _catalog(dsn) == before
    tables, functions, indexes = before
    assert set(TABLES) <= tables
    assert set(FUNCTIONS) <= functions
    assert {
        "idx_micro_services_slug",
        "idx_jobs_idempotency_key",
        "idx_error_events_occurred_at",
    } <= indexes


def test_concurrent_appliers_do_not_collide(resilience_env: Environment) -> None:
    errors: list[BaseException] = []

    def apply() -> None:
        try:
            apply_schema(resilience_env.urls.postgres)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=apply) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


async def test_schema_applies_with_asyncpg_on_dsn_and_connection(
    resilience_env: Environment,
) -> None:
    dsn = resilience_env.urls.postgres
    await apply_schema_async(dsn)
    conn: Any = await asyncpg.connect(dsn)
    try:
        await apply_schema_async(conn)
        assert await conn.fetchval("SELECT count(*) FROM get_uuid_migration_stats()") == 1
    finally:
        await conn.close()
