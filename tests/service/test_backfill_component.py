"""The micro_uuid backfill as a supervised component: outcomes, failures, outage, crash."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import psycopg
from service_support import FAST

from resilience.service.runtime import open_service

BACKFILL = FAST.with_overrides({"migration.enabled": True, "migration.interval_s": 0.1})
REFUSE = """
CREATE OR REPLACE FUNCTION test_refuse_victim() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN
    IF NEW.micro_id = '{victim}' THEN RAISE EXCEPTION 'refused for the test'; END IF;
    RETURN NEW; END $$;
CREATE TRIGGER test_refuse_victim BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION test_refuse_victim();
"""
UNREFUSE = (
    "DROP TRIGGER IF EXISTS test_refuse_victim ON jobs; "
    "DROP FUNCTION IF EXISTS test_refuse_victim()"
)


def _insert_jobs(dsn: str, slugs: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for slug in slugs:
            conn.execute("INSERT INTO jobs (micro_id) VALUES (%s)", (slug,))


async def _until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_backfill_migrates_reports_failed_jobs_and_feeds_the_alert(
    urls: Any, known: dict[str, uuid.UUID]
) -> None:
    """Each failed job is an error event with its id; the failure rate fires the alert."""
    slugs = list(known)
    victim = slugs[0]
    _insert_jobs(urls.postgres_direct, [slugs[1], slugs[2], "not-in-the-catalogue", victim])
    with psycopg.connect(urls.postgres_direct, autocommit=True) as conn:
        conn.execute(REFUSE.format(victim=victim).encode())
    try:
        async with open_service(BACKFILL, postgres_url=urls.postgres) as service:
            subscription = service.notifications.subscribe()
            await _until(lambda: service.backfill.processed >= 4)
            await service.monitor.tick()
            await service.error_tracker.drain()
            events = []
            while not subscription.queue.empty():
                events.append(json.loads(subscription.queue.get_nowait()))
            health = await service.health()
            stats = service.backfill.stats()
    finally:
        with psycopg.connect(urls.postgres_direct, autocommit=True) as conn:
            conn.execute(UNREFUSE.encode())
    conn2 = await asyncpg.connect(urls.postgres_direct)
    try:
        rows = await conn2.fetch("SELECT * FROM error_events WHERE component = 'migration'")
        migrated = await conn2.fetchval("SELECT count(*) FROM jobs WHERE micro_uuid IS NOT NULL")
        victim_id = await conn2.fetchval("SELECT id FROM jobs WHERE micro_id = $1", victim)
    finally:
        await conn2.close()
    assert (stats["processed"], stats["failed"], stats["batches"]) == (4, 1, 1)
    assert migrated == 2
    assert [(r["job_id"], r["severity"], r["error_type"]) for r in rows] == [
        (victim_id, "error", "MigrationFailed")
    ]
    assert "refused for the test" in rows[0]["message"]
    notified = [e for e in events if e["type"] == "error" and e["component"] == "migration"]
    assert [e["job_id"] for e in notified] == [victim_id]
    fired = {e["name"] for e in events if e["type"] == "alert" and e["state"] == "firing"}
    assert {"MigrationFailureRateHigh", "MigrationFailureRateCritical"} <= fired
    assert health["components"]["background"]["components"]["migration"]["status"] == "running"


async def test_an_outage_is_one_reported_failure_streak_and_a_crash_recovers(
    urls: Any, known: dict[str, uuid.UUID], postgres_proxy: Any
) -> None:
    """PostgreSQL away: one error event (stack trace kept), ``failing`` until it answers."""
    async with open_service(BACKFILL, postgres_url=urls.postgres) as service:
        supervisor = service.supervisor
        supervisor.restart_delay_s = 0.2
        subscription = service.notifications.subscribe()
        postgres_proxy.disable()
        try:
            await _until(lambda: service.backfill.errors >= 3)
            failing = supervisor.states()["migration"]
        finally:
            postgres_proxy.enable()
        _insert_jobs(urls.postgres_direct, [next(iter(known))])
        await _until(lambda: service.backfill.processed >= 1)
        recovered = supervisor.states()["migration"]
        supervisor.crash("migration")
        await _until(lambda: supervisor.states()["migration"]["crashes"] == 1)
        crashed = supervisor.states()["migration"]["status"]
        await _until(lambda: supervisor.states()["migration"]["status"] == "running")
        await service.error_tracker.drain()
        events = []
        while not subscription.queue.empty():
            events.append(json.loads(subscription.queue.get_nowait()))
    conn = await asyncpg.connect(urls.postgres_direct)
    try:
        rows = await conn.fetch(
            "SELECT severity, error_type, stack_trace FROM error_events "
            "WHERE component = 'migration' ORDER BY id"
        )
    finally:
        await conn.close()
    assert failing["status"] == "failing"
    assert failing["failures"] >= 3
    assert recovered["status"] == "running"
    assert crashed == "recovering"
    assert [r["severity"] for r in rows] == ["error", "critical"]  # one per streak, then the crash
    assert all(r["stack_trace"] for r in rows)
    assert rows[1]["error_type"] == "ComponentCrash"
    notified = [
        e["severity"] for e in events if e["type"] == "error" and e["component"] == "migration"
    ]
    assert notified.count("error") == 1
    assert notified.count("critical") == 1
