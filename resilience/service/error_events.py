"""Error tracking in ``error_events``: a repository, and a non-blocking tracker.

:class:`ErrorEventRepository` is the storage API (log, get, recent, by job,
by severity, mark resolved, stats, delete old resolved) on an asyncpg pool.
:class:`ErrorTracker` is what the lookup flow calls: it queues a record and
returns; a background task writes queued records, so a database outage never
blocks a lookup (the queue is bounded, drops are counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from resilience.errors import ResilienceError
from resilience.service.analytics import drain_until

__all__ = ["ErrorEvent", "ErrorEventRepository", "ErrorTracker", "Severity"]

Severity = Literal["info", "warning", "error", "critical"]
_SEVERITIES = ("info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """One error record; ``id`` and ``occurred_at`` are set by the database."""

    severity: Severity
    component: str
    error_type: str
    message: str
    user_message: str | None = None
    retryable: bool = False
    recovery: str | None = None
    correlation_id: str | None = None
    job_id: int | None = None
    stack_trace: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    resolved: bool = False
    id: int | None = None
    occurred_at: datetime | None = None

    @classmethod
    def from_error(
        cls,
        error: BaseException,
        *,
        severity: Severity = "error",
        component: str = "lookup",
        job_id: int | None = None,
    ) -> ErrorEvent:
        trace = "".join(traceback.format_exception(error)) if error.__traceback__ else None
        if isinstance(error, ResilienceError):
            return cls(
                severity=severity,
                component=component,
                error_type=type(error).__name__,
                message=error.message[:2000],
                user_message=error.user_message,
                retryable=error.retryable,
                recovery=error.recovery.value,
                correlation_id=error.correlation_id,
                job_id=job_id,
                stack_trace=trace,
                context={k: str(v) for k, v in error.context.items()},
            )
        return cls(
            severity=severity,
            component=component,
            error_type=type(error).__name__,
            message=str(error)[:2000],
            job_id=job_id,
            stack_trace=trace,
        )


_COLUMNS = (
    "id, error_type, message, user_message, severity, component, retryable, recovery, "
    "correlation_id, job_id, stack_trace, context, resolved, occurred_at"
)


def _event(row: Any) -> ErrorEvent:
    context = row["context"]
    if isinstance(context, str):
        context = json.loads(context)
    return ErrorEvent(
        id=row["id"],
        severity=row["severity"],
        component=row["component"] or "",
        error_type=row["error_type"],
        message=row["message"],
        user_message=row["user_message"],
        retryable=row["retryable"],
        recovery=row["recovery"],
        correlation_id=row["correlation_id"],
        job_id=row["job_id"],
        stack_trace=row["stack_trace"],
        context=dict(context or {}),
        resolved=row["resolved"],
        occurred_at=row["occurred_at"],
    )


class ErrorEventRepository:
    """``error_events`` on an asyncpg pool."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def log(self, event: ErrorEvent) -> int:
        """Store ``event``; returns its id."""
        value = await self._pool.fetchval(
            "INSERT INTO error_events (error_type, message, user_message, severity, component, "
            "retryable, recovery, correlation_id, job_id, stack_trace, context, resolved, "
            "occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, "
            "coalesce($13, now())) RETURNING id",
            event.error_type,
            event.message,
            event.user_message,
            event.severity,
            event.component,
            event.retryable,
            event.recovery,
            event.correlation_id,
            event.job_id,
            event.stack_trace,
            json.dumps(event.context, default=str),
            event.resolved,
            event.occurred_at,
        )
        return int(value)

    async def get(self, event_id: int) -> ErrorEvent | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM error_events WHERE id = $1", event_id
        )
        return None if row is None else _event(row)

    async def recent(self, limit: int = 50, *, unresolved_only: bool = False) -> list[ErrorEvent]:
        where = "WHERE NOT resolved " if unresolved_only else ""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM error_events {where}ORDER BY occurred_at DESC, id DESC "
            "LIMIT $1",
            limit,
        )
        return [_event(r) for r in rows]

    async def by_job(self, job_id: int) -> list[ErrorEvent]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM error_events WHERE job_id = $1 ORDER BY id",
            job_id,
        )
        return [_event(r) for r in rows]

    async def by_severity(self, severity: Severity, limit: int = 100) -> list[ErrorEvent]:
        if severity not in _SEVERITIES:
            raise ValueError(f"severity must be one of {_SEVERITIES}, got {severity!r}")
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM error_events WHERE severity = $1 ORDER BY id DESC LIMIT $2",
            severity,
            limit,
        )
        return [_event(r) for r in rows]

    async def mark_resolved(self, event_id: int) -> bool:
        """Mark one event resolved; False if no such unresolved event."""
        status = await self._pool.execute(
            "UPDATE error_events SET resolved = true, resolved_at = now() "
            "WHERE id = $1 AND NOT resolved",
            event_id,
        )
        return bool(status.endswith(" 1"))

    async def stats(self) -> dict[str, int]:
        """Counts for health: total, unresolved, unresolved critical, last 24 h, by severity."""
        row = await self._pool.fetchrow(
            "SELECT count(*) AS total, "
            "count(*) FILTER (WHERE NOT resolved) AS unresolved, "
            "count(*) FILTER (WHERE NOT resolved AND severity = 'critical') "
            "AS unresolved_critical, "
            "count(*) FILTER (WHERE occurred_at > now() - interval '24 hours') AS last_24h "
            "FROM error_events"
        )
        stats = {k: int(row[k]) for k in ("total", "unresolved", "unresolved_critical", "last_24h")}
        for severity_row in await self._pool.fetch(
            "SELECT severity, count(*) AS n FROM error_events GROUP BY severity"
        ):
            stats[f"severity_{severity_row['severity']}"] = int(severity_row["n"])
        return stats

    async def delete_old_resolved(self, older_than_s: float) -> int:
        """Delete resolved events older than ``older_than_s`` seconds; returns how many."""
        status = await self._pool.execute(
            "DELETE FROM error_events WHERE resolved "
            "AND occurred_at < now() - make_interval(secs => $1)",
            float(older_than_s),
        )
        return int(status.split()[-1])


class ErrorTracker:
    """Queues :class:`ErrorEvent` records and writes them in the background.

    :meth:`track` never blocks and never raises; at most ``max_pending``
    records wait (newer ones are dropped and counted). A failed write keeps
    the record and retries after ``retry_interval_s``.

    :meth:`track` stamps the record's ``occurred_at`` (now, UTC) and a
    ``correlation_id`` when it has none, so the row and the notification
    carry the same time and id. ``on_event`` (if set) is called once per
    record: right after its row is written (with the row's ``id``), or, when
    the database refuses the write, at once without an id (the row follows
    when the database is back).
    """

    def __init__(
        self,
        repository: ErrorEventRepository,
        *,
        max_pending: int = 1000,
        retry_interval_s: float = 1.0,
    ) -> None:
        self.repository = repository
        self._pending: deque[ErrorEvent] = deque()
        self._max_pending = max_pending
        self._retry_interval_s = retry_interval_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.logged = 0
        self.dropped = 0
        self.write_failures = 0
        self.on_event: Callable[[ErrorEvent], None] | None = None
        self._announced: set[int] = set()  # id() of pending records already announced

    def track(self, event: ErrorEvent) -> None:
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            return
        if event.occurred_at is None or event.correlation_id is None:
            event = replace(
                event,
                occurred_at=event.occurred_at or datetime.now(UTC),
                correlation_id=event.correlation_id or uuid.uuid4().hex,
            )
        self._pending.append(event)
        self._wake.set()

    def _announce(self, event: ErrorEvent) -> None:
        if self.on_event is None:
            return
        with contextlib.suppress(Exception):  # a notification must never stop the writer
            self.on_event(event)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="error-tracker")

    async def drain(self) -> None:
        """Write what is queued now; stops at the first failure."""
        while self._pending:
            event = self._pending[0]
            try:
                event_id = await self.repository.log(event)
            except Exception:  # the database may be down: keep the record
                self.write_failures += 1
                for waiting in self._pending:  # notify now; the rows follow later
                    key = id(waiting)
                    if key not in self._announced:
                        self._announced.add(key)
                        self._announce(waiting)
                return
            self._pending.popleft()
            self.logged += 1
            key = id(event)
            if key in self._announced:
                self._announced.discard(key)
            else:
                self._announce(replace(event, id=event_id))

    async def aclose(self, timeout_s: float = 2.0) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await drain_until(self.drain, lambda: bool(self._pending), timeout_s)

    def stats(self) -> dict[str, int]:
        return {
            "pending": len(self._pending),
            "logged": self.logged,
            "dropped": self.dropped,
            "write_failures": self.write_failures,
        }

    async def run(self) -> None:
        """The background loop, until cancelled (:meth:`start` runs it as a task)."""
        await self._run()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.drain()
            if self._pending:
                await asyncio.sleep(self._retry_interval_s)
                self._wake.set()
