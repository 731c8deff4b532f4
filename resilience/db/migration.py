"""Running the micro_uuid backfill (TARGETS.md, error scenario 5) from Python.

:func:`run_migration` calls the SQL function ``migrate_job_uuids`` batch by
batch, committing each batch, so a connection cut mid-run loses at most the
batch in flight; re-running finishes the job and logs no outcome twice.
A lost connection is raised as :class:`resilience.errors.ConnectionFailure`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from resilience.errors import ConnectionFailure

__all__ = ["BatchCounts", "MigrationStats", "migration_stats", "run_migration"]


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """Outcomes of one run (or one batch) of the migration."""

    processed: int = 0
    succeeded: int = 0
    skipped: int = 0
    failed: int = 0
    batches: int = 0

    def __add__(self, other: BatchCounts) -> BatchCounts:
        return BatchCounts(
            self.processed + other.processed,
            self.succeeded + other.succeeded,
            self.skipped + other.skipped,
            self.failed + other.failed,
            self.batches + other.batches,
        )


@dataclass(frozen=True, slots=True)
class MigrationStats:
    """``get_uuid_migration_stats()``, plus what the last run did (``run``).

    Invariants: ``total_jobs == jobs_with_uuid + jobs_without_uuid`` and
    ``jobs_without_uuid == unknown_slug_jobs + pending_jobs``.
    """

    total_jobs: int
    jobs_with_uuid: int
    jobs_without_uuid: int
    unknown_slug_jobs: int
    pending_jobs: int
    logged_success: int
    logged_skipped: int
    logged_failed: int
    migration_percentage: float
    run: BatchCounts = field(default_factory=BatchCounts)

    @property
    def failure_rate(self) -> float:
        """Failed outcomes over all logged outcomes (0.0 when nothing was logged)."""
        logged = self.logged_success + self.logged_skipped + self.logged_failed
        return self.logged_failed / logged if logged else 0.0


_STATS_SQL = b"SELECT * FROM get_uuid_migration_stats()"


def migration_stats(dsn: str) -> MigrationStats:
    """The current statistics of the backfill."""
    import psycopg

    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(_STATS_SQL).fetchone()
    except psycopg.OperationalError as exc:
        raise ConnectionFailure(f"cannot read migration statistics: {exc}") from exc
    assert row is not None
    counts = [int(v) for v in row[:8]]
    return MigrationStats(
        total_jobs=counts[0],
        jobs_with_uuid=counts[1],
        jobs_without_uuid=counts[2],
        unknown_slug_jobs=counts[3],
        pending_jobs=counts[4],
        logged_success=counts[5],
        logged_skipped=counts[6],
        logged_failed=counts[7],
        migration_percentage=float(row[8]),
    )


def run_migration(
    dsn: str,
    *,
    batch_size: int = 100,
    on_batch: Callable[[BatchCounts], None] | None = None,
) -> MigrationStats:
    """Backfill ``micro_uuid`` for every job lacking it; returns the statistics afterwards.

    Each batch of ``batch_size`` jobs is its own transaction. ``on_batch`` is
    called after each committed batch with that batch's counts (a hook for
    progress output, and for tests that inject a fault mid-run).
    """
    import psycopg

    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive; got {batch_size}")
    total = BatchCounts()
    after_id = 0
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    b"SELECT * FROM migrate_job_uuids(%s, %s)", (batch_size, after_id)
                ).fetchone()
                assert row is not None
                processed, succeeded, skipped, failed, last_id = row
                if not processed:
                    break
                batch = BatchCounts(processed, succeeded, skipped, failed, 1)
                total = total + batch
                after_id = int(last_id)
                if on_batch is not None:
                    on_batch(batch)
    except psycopg.OperationalError as exc:
        raise ConnectionFailure(
            f"the migration lost its database connection after {total.batches} batch(es): {exc}",
            context={"batches": total.batches, "processed": total.processed},
        ) from exc
    return dataclasses.replace(migration_stats(dsn), run=total)
