"""The error_events repository on real PostgreSQL."""

from __future__ import annotations

from typing import Any

import asyncpg

from resilience.errors import ConnectionFailure
from resilience.service.error_events import ErrorEvent, ErrorEventRepository


async def test_error_events_log_query_resolve_and_clean_up(urls: Any) -> None:
    pool = await asyncpg.create_pool(urls.postgres_direct, min_size=1, max_size=2)
    try:
        repo = ErrorEventRepository(pool)
        try:
            raise ConnectionFailure("db down", context={"host": "pg"})
        except ConnectionFailure as exc:
            failure = ErrorEvent.from_error(
                exc, severity="critical", component="postgres", job_id=7
            )
        first = await repo.log(failure)
        second = await repo.log(
            ErrorEvent(severity="warning", component="redis", error_type="Timeout", message="m")
        )
        stored = {
            r["id"]: r
            for r in await pool.fetch(
                "SELECT id, job_id, stack_trace, context::text AS context FROM error_events"
            )
        }
        loaded = await repo.get(first)
        recent = await repo.recent(10)
        by_job = await repo.by_job(7)
        critical = await repo.by_severity("critical")
        before = await repo.stats()
        resolved = await repo.mark_resolved(first)
        resolved_again = await repo.mark_resolved(first)
        after = await repo.stats()
        deleted = await repo.delete_old_resolved(0)
        remaining = await repo.recent(10)
    finally:
        await pool.close()
    assert stored[first]["job_id"] == 7
    assert "ConnectionFailure" in stored[first]["stack_trace"]
    assert stored[first]["context"] == '{"host": "pg"}'
    assert (stored[second]["job_id"], stored[second]["stack_trace"]) == (None, None)
    assert loaded is not None
    assert (loaded.severity, loaded.component, loaded.job_id) == ("critical", "postgres", 7)
    assert loaded.correlation_id == failure.correlation_id
    assert loaded.stack_trace is not None
    assert "ConnectionFailure" in loaded.stack_trace
    assert loaded.context == {"host": "pg"}
    assert [e.id for e in recent] == [second, first]
    assert [e.id for e in by_job] == [first]
    assert [e.id for e in critical] == [first]
    assert (before["unresolved"], before["unresolved_critical"], before["last_24h"]) == (2, 1, 2)
    assert resolved
    assert not resolved_again
    assert (after["unresolved"], after["unresolved_critical"]) == (1, 0)
    assert deleted == 1
    assert [e.id for e in remaining] == [second]


async def test_by_job_uses_the_job_id_column_and_index(urls: Any) -> None:
    pool = await asyncpg.create_pool(urls.postgres_direct, min_size=1, max_size=2)
    try:
        repo = ErrorEventRepository(pool)
        for job_id in (11, 12, None, 11):
            await repo.log(
                ErrorEvent(
                    severity="error", component="jobs", error_type="E", message="m", job_id=job_id
                )
            )
        by_job = await repo.by_job(11)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN SELECT id FROM error_events WHERE job_id = $1", 11
                )
            )
    finally:
        await pool.close()
    assert [e.job_id for e in by_job] == [11, 11]
    assert "idx_error_events_job_id" in plan
