"""The ``micro_uuid`` backfill as a background component of the service (``migration``).

:class:`BackfillTask` runs the SQL function ``migrate_job_uuids`` (TARGETS.md,
error scenario 5) batch by batch on the service's pool, every ``interval_s``,
so jobs accepted while their slug could not be resolved get their UUID once
PostgreSQL knows it. Its cursor (the last job id visited) persists for the
life of the task: a job whose outcome was ``skipped`` or ``failed`` is logged
once and not visited again, so the failure rate it reports is per job, not
per pass. A restart of the service starts from the first job again; the
function logs every outcome at most once, so that is safe.

What it reports, and to whom (wired by :func:`~resilience.service.runtime.open_service`):

- each batch's counts to ``on_batch(processed, failed)`` (the alert rules'
  migration failure rate);
- each job whose migration failed as ``on_failed_job(job_id, micro_id,
  message)`` (an error event with that job id);
- a batch that could not run at all (PostgreSQL away, a timeout) to
  ``on_write(error)``, and the next one that ran to ``on_write(None)``: the
  supervisor's failure streak of the ``migration`` component.

Several workers of one service each run it; the outcomes are still logged
once each (the function's ``ON CONFLICT``), only the counts overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["BackfillTask"]

_BATCH_SQL = "SELECT processed, failed, last_job_id FROM migrate_job_uuids($1, $2)"
_FAILED_SQL = (
    "SELECT job_id, micro_id, error_message FROM uuid_migration_log "
    "WHERE status = 'failed' AND job_id > $1 AND job_id <= $2 ORDER BY job_id LIMIT $3"
)


class BackfillTask:
    """Backfills ``micro_uuid`` every ``interval_s`` (see the module doc).

    ``pool`` needs ``fetchrow``/``fetch`` (a
    :class:`~resilience.service.repository.BoundedPool`, so every query is
    bounded). At most ``max_failed_reports`` failed jobs per batch are
    reported one by one; the batch's count covers the rest.
    """

    def __init__(
        self,
        pool: Any,
        *,
        batch_size: int = 100,
        interval_s: float = 5.0,
        max_failed_reports: int = 20,
        on_batch: Callable[[int, int], None] | None = None,
        on_failed_job: Callable[[int, str, str], None] | None = None,
    ) -> None:
        if batch_size <= 0 or interval_s <= 0:
            raise ValueError("batch_size and interval_s must be positive")
        self._pool = pool
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_failed_reports = max_failed_reports
        self.on_batch = on_batch
        self.on_failed_job = on_failed_job
        self.on_write: Callable[[BaseException | None], None] | None = None
        self.after_id = 0
        self.processed = 0
        self.failed = 0
        self.batches = 0
        self.errors = 0

    async def run(self) -> None:
        """Backfill what is pending, wait ``interval_s``, again; until cancelled."""
        while True:
            await self.run_pending()
            await asyncio.sleep(self.interval_s)

    async def run_pending(self) -> int:
        """Run batches until none is left (or one fails); returns the jobs processed."""
        total = 0
        while True:
            try:
                row = await self._pool.fetchrow(_BATCH_SQL, self.batch_size, self.after_id)
            except Exception as exc:  # PostgreSQL away or slow: reported, retried next time
                self.errors += 1
                if self.on_write is not None:
                    self.on_write(exc)
                return total
            if self.on_write is not None:
                self.on_write(None)
            processed, failed = int(row["processed"]), int(row["failed"])
            if not processed:
                return total
            previous, self.after_id = self.after_id, int(row["last_job_id"])
            self.batches += 1
            self.processed += processed
            self.failed += failed
            total += processed
            if self.on_batch is not None:
                self.on_batch(processed, failed)
            if failed:
                await self._report_failed(previous, self.after_id)

    async def _report_failed(self, after_id: int, last_id: int) -> None:
        if self.on_failed_job is None:
            return
        try:
            rows = await self._pool.fetch(_FAILED_SQL, after_id, last_id, self.max_failed_reports)
        except Exception:  # the counts are in; the details can be read from the log table
            return
        for row in rows:
            self.on_failed_job(int(row["job_id"]), str(row["micro_id"]), str(row["error_message"]))

    async def aclose(self) -> None:
        """Nothing is buffered: every batch commits on its own."""

    def stats(self) -> dict[str, int]:
        return {
            "after_id": self.after_id,
            "processed": self.processed,
            "failed": self.failed,
            "batches": self.batches,
            "errors": self.errors,
        }
