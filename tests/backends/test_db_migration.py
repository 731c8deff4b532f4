"""The UUID backfill (TARGETS.md scenario 5) on a real PostgreSQL, faults through the proxy."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from resilience.backends import Environment
from resilience.db.catalogue import catalogue, generate_jobs, insert_jobs, seed_catalogue
from resilience.db.migration import BatchCounts, MigrationStats, migration_stats, run_migration
from resilience.errors import ConnectionFailure


def _assert_adds_up(stats: MigrationStats) -> None:
    assert stats.total_jobs == stats.jobs_with_uuid + stats.jobs_without_uuid
    assert stats.jobs_without_uuid == stats.unknown_slug_jobs + stats.pending_jobs


def _log_is_once_per_outcome(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            b"SELECT count(*), count(DISTINCT (job_id, status)) FROM uuid_migration_log"
        ).fetchone()
    assert row is not None
    return bool(row[0] == row[1])


def _setup(dsn: str, *, count: int, unknown_share: float) -> int:
    """Seed the catalogue and jobs; return how many jobs name an unknown slug."""
    entries = seed_catalogue(dsn, size=120)
    jobs = generate_jobs(entries, count=count, unknown_share=unknown_share, seed=5)
    insert_jobs(dsn, jobs)
    known = {e.slug for e in entries}
    return sum(j.micro_id not in known for j in jobs)


def test_all_known_slugs_are_migrated(resilience_env: Environment, resilience_clean: None) -> None:
    direct = resilience_env.urls.postgres_direct
    assert _setup(direct, count=300, unknown_share=0.0) == 0
    stats = run_migration(resilience_env.urls.postgres, batch_size=64)
    assert stats.run == BatchCounts(processed=300, succeeded=300, skipped=0, failed=0, batches=5)
    assert (stats.total_jobs, stats.jobs_with_uuid, stats.logged_success) == (300, 300, 300)
    assert stats.migration_percentage == 100.0
    _assert_adds_up(stats)
    with psycopg.connect(direct) as conn:
        wrong = conn.execute(
            b"SELECT count(*) FROM jobs j JOIN micro_services m "
            b"ON m.slug = j.micro_id WHERE j.micro_uuid <> m.id"
        ).fetchone()
    assert wrong == (0,)


def test_unknown_slugs_are_skipped_and_logged_once(
    resilience_env: Environment, resilience_clean: None
) -> None:
    unknown = _setup(resilience_env.urls.postgres_direct, count=400, unknown_share=0.25)
    assert unknown > 0
    first = run_migration(resilience_env.urls.postgres, batch_size=100)
    assert first.run.skipped == unknown
    assert first.run.succeeded == 400 - unknown
    assert (first.logged_skipped, first.unknown_slug_jobs, first.pending_jobs) == (
        unknown,
        unknown,
        0,
    )
    _assert_adds_up(first)
    again = run_migration(resilience_env.urls.postgres, batch_size=100)
    assert again.run == BatchCounts(processed=unknown, skipped=unknown, batches=again.run.batches)
    assert (again.logged_success, again.logged_skipped) == (first.logged_success, unknown)
    assert _log_is_once_per_outcome(resilience_env.urls.postgres_direct)


def test_a_connection_cut_mid_run_then_a_rerun_completes(
    resilience_env: Environment, postgres_proxy: Any, resilience_clean: None
) -> None:
    unknown = _setup(resilience_env.urls.postgres_direct, count=500, unknown_share=0.1)
    batches: list[BatchCounts] = []

    def cut_after_two(batch: BatchCounts) -> None:
        batches.append(batch)
        if len(batches) == 2:
            postgres_proxy.disable()

    with pytest.raises(ConnectionFailure, match="after 2 batch"):
        run_migration(resilience_env.urls.postgres, batch_size=50, on_batch=cut_after_two)
    partial = migration_stats(resilience_env.urls.postgres_direct)
    done = sum(b.succeeded for b in batches)
    assert partial.jobs_with_uuid == partial.logged_success == done
    assert 0 < done < 500 - unknown
    _assert_adds_up(partial)

    postgres_proxy.enable()
    final = run_migration(resilience_env.urls.postgres, batch_size=50)
    assert final.jobs_with_uuid == final.logged_success == 500 - unknown
    assert final.logged_skipped == unknown
    assert final.pending_jobs == 0
    _assert_adds_up(final)
    assert _log_is_once_per_outcome(resilience_env.urls.postgres_direct)


def test_row_errors_are_logged_failed_once_and_retried_on_rerun(
    resilience_env: Environment, resilience_clean: None
) -> None:
    direct = resilience_env.urls.postgres_direct
    _setup(direct, count=200, unknown_share=0.0)
    victim = catalogue(size=120)[0].slug
    with psycopg.connect(direct) as conn:
        conn.execute(
            f"""
            CREATE OR REPLACE FUNCTION test_refuse_victim() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN
                IF NEW.micro_id = '{victim}' THEN RAISE EXCEPTION 'refused for the test'; END IF;
                RETURN NEW; END $$;
            CREATE TRIGGER test_refuse_victim BEFORE UPDATE ON jobs
                FOR EACH ROW EXECUTE FUNCTION test_refuse_victim();
            """.encode()
        )
        victims = conn.execute(
            b"SELECT count(*) FROM jobs WHERE micro_id = %s", (victim,)
        ).fetchone()
    assert victims is not None
    assert victims[0] > 0
    try:
        first = run_migration(resilience_env.urls.postgres)
        assert first.run.failed == first.logged_failed == victims[0]
        assert first.pending_jobs == victims[0]
        assert first.failure_rate > 0
        again = run_migration(resilience_env.urls.postgres)
        assert again.run.failed == victims[0]
        assert again.logged_failed == victims[0]  # not logged a second time
    finally:
        with psycopg.connect(direct) as conn:
            conn.execute(
                b"DROP TRIGGER IF EXISTS test_refuse_victim ON jobs; "
                b"DROP FUNCTION IF EXISTS test_refuse_victim()"
            )
    healed = run_migration(resilience_env.urls.postgres)
    assert healed.run.succeeded == victims[0]
    assert (healed.jobs_with_uuid, healed.pending_jobs) == (200, 0)
    assert healed.logged_failed == victims[0]
    assert _log_is_once_per_outcome(direct)
    _assert_adds_up(healed)
