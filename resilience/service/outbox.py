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

A queued job that cannot be stored is never retried forever nor dropped: it is
moved aside, as a *dead letter*, to ``{prefix}:jobs:dead`` (field = idempotency
key, value = the job, the error and its failure count; written before the job
leaves the outbox, so a crash in between leaves it queued, not lost), counted
in ``dead_lettered`` (``/stats``, ``/health``, ``/metrics``) and reported to
``on_dead_letter`` (the service logs an error event). A job is dead-lettered

* at once when its entry is unreadable or the database refuses the row itself
  (a data exception or constraint, SQLSTATE class 22 or 23);
* after ``max_failures`` drains in which writing it failed otherwise (a
  timeout, say, for a huge row) while ``probe`` showed the database answering:
  the failure is the job's own, not an outage. Without ``probe`` such failures
  are never counted against a job.

During an outage (``probe`` fails) the drain stops and tries again later, as
before; a job that failed on its own does not block the jobs queued after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from resilience.classify import classify
from resilience.errors import InvalidInput
from resilience.service.error_events import ErrorEvent
from resilience.service.model import Job
from resilience.service.repository import JobRepository
from resilience.service.timeouts import bounded

__all__ = ["DeadLetter", "JobOutbox", "dead_letter_event"]

_log = logging.getLogger(__name__)

DeadLetter = dict[str, Any]
"""What ``on_dead_letter`` gets: ``idempotency_key``, ``job`` (the queued body, or
the raw text when unreadable), ``error`` (text), ``error_type`` and ``failures``."""


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
        max_failures: int = 5,
        probe: Callable[[], Awaitable[object]] | None = None,
        on_dead_letter: Callable[[DeadLetter], None] | None = None,
    ) -> None:
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures}")
        self._client = client
        self._repository = repository
        self.key = f"{prefix}:jobs:outbox"
        self.dead_key = f"{prefix}:jobs:dead"
        self.max_failures = max_failures
        self._probe = probe
        self.on_dead_letter = on_dead_letter
        self._failures: dict[str, int] = {}
        self._timeout_s = timeout_s
        self._interval_s = drain_interval_s
        self._write_timeout_s = write_timeout_s
        self._task: asyncio.Task[None] | None = None
        self.queued = 0
        self.drained = 0
        self.drain_failures = 0
        self.dead_lettered = 0

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

    async def queued_keys(self) -> set[str]:
        """Idempotency keys of the jobs waiting in the outbox (all instances)."""
        raw = await bounded(self._client.hgetall(self.key), self._timeout_s, what="HGETALL")
        return {_text(k) for k in raw}

    async def dead_letters(self) -> dict[str, DeadLetter]:
        """The dead letters (all instances): idempotency key → entry."""
        raw = await bounded(
            self._client.hgetall(self.dead_key), self._timeout_s, what="reading dead letters"
        )
        return {_text(k): json.loads(v) for k, v in raw.items()}

    async def drain(self, limit: int = 100) -> int:
        """Write up to ``limit`` queued jobs; returns jobs written.

        Stops at a failure that looks like an outage; dead-letters a job that
        cannot be stored (see the module docstring) and goes on.
        """
        try:
            entries = await bounded(
                self._client.hgetall(self.key), self._timeout_s, what="reading the outbox"
            )
        except Exception:
            self.drain_failures += 1
            return 0
        written = 0
        for raw_key, raw_body in list(entries.items())[:limit]:
            key = _text(raw_key)
            try:
                data = json.loads(raw_body)
                queued_uuid = data["micro_uuid"]
                fields = {
                    "micro_id": data["micro_id"],
                    "micro_uuid": None if queued_uuid is None else uuid.UUID(queued_uuid),
                    "answers": data["answers"],
                }
            except (ValueError, KeyError, TypeError) as exc:
                if not await self._dead_letter(key, _text(raw_body), exc, failures=1):
                    break
                continue
            try:
                await bounded(
                    self._repository.insert_job(**fields, idempotency_key=key),
                    self._write_timeout_s,
                    what="writing a queued job",
                )
            except Exception as exc:
                self.drain_failures += 1
                if not await self._failed(key, data, exc):
                    break
                continue
            try:
                await bounded(self._client.hdel(self.key, key), self._timeout_s, what="HDEL")
            except Exception:  # stored; the next drain's insert is a no-op, then HDEL
                self.drain_failures += 1
                break
            self._failures.pop(key, None)
            written += 1
        self.drained += written
        return written

    async def _failed(self, key: str, data: Any, exc: Exception) -> bool:
        """Handle a failed write of ``key``; False: stop this drain (an outage)."""
        if _refused_row(exc):
            failures = self._failures.get(key, 0) + 1
            return await self._dead_letter(key, data, exc, failures=failures)
        if self._probe is None or not await self._database_answers():
            return False  # PostgreSQL (or the link) is away: try again later
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        if failures < self.max_failures:
            return True  # the database answers: go on with the next job
        return await self._dead_letter(key, data, exc, failures=failures)

    async def _database_answers(self) -> bool:
        assert self._probe is not None
        try:
            await bounded(self._probe(), self._write_timeout_s, what="database probe")
        except Exception:
            return False
        return True

    async def _dead_letter(self, key: str, job: Any, exc: Exception, *, failures: int) -> bool:
        """Move ``key`` to the dead letters (written first, then removed from the outbox)."""
        letter: DeadLetter = {
            "idempotency_key": key,
            "job": job,
            "error": str(exc)[:500] or type(exc).__name__,
            "error_type": type(exc).__name__,
            "failures": failures,
        }
        try:
            await bounded(
                self._client.hset(self.dead_key, key, json.dumps(letter, separators=(",", ":"))),
                self._timeout_s,
                what="writing a dead letter",
            )
            await bounded(self._client.hdel(self.key, key), self._timeout_s, what="HDEL")
        except Exception:  # Redis away: the job stays queued, nothing is lost
            return False
        self._failures.pop(key, None)
        self.dead_lettered += 1
        _log.error(
            "job %r moved to the dead letters (%s) after %d failed write(s): %s",
            key,
            self.dead_key,
            failures,
            letter["error"],
        )
        if self.on_dead_letter is not None:
            try:
                self.on_dead_letter(letter)
            except Exception:  # a listener must not stop the drain
                _log.exception("on_dead_letter listener failed")
        return True

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
            "dead_lettered": self.dead_lettered,
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

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.drain()


def _refused_row(exc: Exception) -> bool:
    """The database refused this row itself: a data exception or a constraint (SQLSTATE
    class 22 or 23), or input the service classifies as invalid."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    return sqlstate[:2] in ("22", "23") or isinstance(classify(exc), InvalidInput)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def dead_letter_event(letter: DeadLetter) -> ErrorEvent:
    """The ``error_events`` record of a dead letter (component ``outbox``, severity error)."""
    return ErrorEvent(
        severity="error",
        component="outbox",
        error_type="DeadLetter",
        message=(
            f"queued job {letter['idempotency_key']!r} could not be stored after "
            f"{letter['failures']} attempt(s) and was moved to the dead letters: "
            f"{letter['error']}"
        ),
        retryable=False,
        context={k: letter[k] for k in ("idempotency_key", "error_type", "failures")},
    )
