"""Jobs accepted while PostgreSQL is away: a Redis outbox, drained in the background.

When a job cannot be written (breaker open, or every attempt failed with a
recoverable error) and Redis answers, the job is kept in one Redis hash
(``{prefix}:jobs:outbox``, field = idempotency key, value = the job as JSON;
``HSETNX`` keeps the first body per key) and the caller is told it was
accepted (HTTP 202, ``status="queued"``, no id yet). A drainer task writes
queued jobs with the same ``INSERT … ON CONFLICT (idempotency_key) DO
NOTHING`` as a direct post and then deletes them from the hash, so each key is
stored exactly once even when several instances drain together or a client
posts the same key again directly. Durability is Redis's: a Redis that loses
its data (no AOF) loses queued jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from resilience.service.model import Job
from resilience.service.repository import JobRepository
from resilience.service.timeouts import bounded

__all__ = ["JobOutbox"]


class JobOutbox:
    """Queued jobs in Redis; :meth:`start` runs the drainer every ``drain_interval_s``."""

    def __init__(
        self,
        client: Any,
        repository: JobRepository,
        *,
        prefix: str = "resilience",
        timeout_s: float = 0.2,
        drain_interval_s: float = 1.0,
        write_timeout_s: float = 1.0,
    ) -> None:
        self._client = client
        self._repository = repository
        self.key = f"{prefix}:jobs:outbox"
        self._timeout_s = timeout_s
        self._interval_s = drain_interval_s
        self._write_timeout_s = write_timeout_s
        self._task: asyncio.Task[None] | None = None
        self.queued = 0
        self.drained = 0
        self.drain_failures = 0
        self.on_write: Callable[[BaseException | None], None] | None = None
        """Told each queued job's write outcome (the exception, or None on success)."""

    async def put(
        self,
        *,
        micro_id: str,
        micro_uuid: uuid.UUID | None,
        answers: Mapping[str, Any],
        idempotency_key: str,
    ) -> bool:
        """Queue a job; False when Redis could not take it (the caller then fails)."""
        body = json.dumps(
            {
                "micro_id": micro_id,
                "micro_uuid": None if micro_uuid is None else str(micro_uuid),
                "answers": dict(answers),
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        try:
            await bounded(
                self._client.hsetnx(self.key, idempotency_key, body),
                self._timeout_s,
                what="queueing a job",
            )
        except Exception:  # Redis away too: nothing could take the job
            return False
        self.queued += 1
        return True

    async def pending(self) -> int:
        """Jobs waiting in the outbox (all instances)."""
        return int(await bounded(self._client.hlen(self.key), self._timeout_s, what="HLEN"))

    async def drain(self, limit: int = 100) -> int:
        """Write up to ``limit`` queued jobs; stops at the first failure. Returns jobs written."""
        try:
            entries = await bounded(
                self._client.hgetall(self.key), self._timeout_s, what="reading the outbox"
            )
        except Exception:
            self.drain_failures += 1
            return 0
        written = 0
        for raw_key, raw_body in list(entries.items())[:limit]:
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            data = json.loads(raw_body)
            queued_uuid = data["micro_uuid"]
            try:
                await bounded(
                    self._repository.insert_job(
                        micro_id=data["micro_id"],
                        micro_uuid=None if queued_uuid is None else uuid.UUID(queued_uuid),
                        answers=data["answers"],
                        idempotency_key=key,
                    ),
                    self._write_timeout_s,
                    what="writing a queued job",
                )
                await bounded(self._client.hdel(self.key, key), self._timeout_s, what="HDEL")
            except Exception as exc:  # PostgreSQL or Redis still away: try again later
                self.drain_failures += 1
                if self.on_write is not None:
                    self.on_write(exc)
                break
            if self.on_write is not None:
                self.on_write(None)
            written += 1
        self.drained += written
        return written

    def queued_job(
        self,
        *,
        micro_id: str,
        micro_uuid: uuid.UUID | None,
        answers: Mapping[str, Any],
        idempotency_key: str,
    ) -> Job:
        """The :class:`Job` reported for a queued post (no id until it is written)."""
        return Job(
            id=None,
            micro_id=micro_id,
            micro_uuid=micro_uuid,
            answers=dict(answers),
            idempotency_key=idempotency_key,
            status="queued",
        )

    def stats(self) -> dict[str, int]:
        return {
            "queued": self.queued,
            "drained": self.drained,
            "drain_failures": self.drain_failures,
        }

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="job-outbox")

    async def aclose(self, timeout_s: float = 3.0) -> None:
        """Stop the drainer after one last drain attempt (bounded)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await bounded(self.drain(), timeout_s, what="final outbox drain")

    async def run(self) -> None:
        """The background loop, until cancelled (:meth:`start` runs it as a task)."""
        await self._run()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.drain()
