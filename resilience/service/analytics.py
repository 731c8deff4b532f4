"""Lookup events, buffered and written to ``analytics_events`` in batches.

The batcher never blocks a lookup: :meth:`AnalyticsBatcher.add` appends to a
bounded buffer and returns; a background task writes full batches (10 by
default) and, every ``flush_interval_s``, whatever is pending. When the
database is down the pending events stay buffered (the write is retried on
the next interval); once the buffer is full new events are dropped and
counted. :meth:`AnalyticsBatcher.aclose` flushes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from resilience.errors import ResilienceError
from resilience.service.timeouts import bounded

__all__ = [
    "AnalyticsBatcher",
    "AnalyticsEvent",
    "BatchWriter",
    "drain_until",
    "postgres_analytics_writer",
]

T = TypeVar("T")

EVENT_LOOKUP = "uuid_lookup"
CATEGORY_WIZARD = "wizard_flow"


class AnalyticsEvent(NamedTuple):
    """One row of ``analytics_events``; ``timestamp_s`` is wall-clock seconds.

    A named tuple rather than a frozen dataclass (every lookup builds one, and
    a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``): about three times cheaper to build.
    """

    timestamp_s: float
    properties: dict[str, Any]
    event_type: str = EVENT_LOOKUP
    category: str = CATEGORY_WIZARD
    correlation_id: str | None = None


Writer = Callable[[Sequence[AnalyticsEvent]], Awaitable[None]]


class BatchWriter(Generic[T]):
    """Bounded buffer + background batch writer. Start with :meth:`start` (or ``async with``).

    Not thread-safe: call :meth:`add` on the event loop's thread (from another
    thread use ``loop.call_soon_threadsafe(writer.add, item)``).
    """

    def __init__(
        self,
        writer: Callable[[Sequence[T]], Awaitable[None]],
        *,
        batch_size: int = 10,
        max_buffer: int = 10_000,
        flush_interval_s: float = 1.0,
        close_timeout_s: float = 5.0,
    ) -> None:
        self._writer = writer
        self._batch_size = batch_size
        self._max_buffer = max_buffer
        self._flush_interval_s = flush_interval_s
        self._close_timeout_s = close_timeout_s
        self._buffer: deque[T] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self.written = 0
        self.dropped = 0
        self.write_failures = 0
        self.batches = 0
        self.on_write: Callable[[BaseException | None], None] | None = None
        """Told each batch write's outcome (the exception, or None on success)."""

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def stats(self) -> dict[str, int]:
        return {
            "pending": self.pending,
            "written": self.written,
            "dropped": self.dropped,
            "write_failures": self.write_failures,
            "batches": self.batches,
        }

    def add(self, event: T) -> bool:
        """Buffer ``event``; False (and counted in ``dropped``) when the buffer is full."""
        if len(self._buffer) >= self._max_buffer:
            self.dropped += 1
            return False
        self._buffer.append(event)
        if len(self._buffer) >= self._batch_size:
            self._wake.set()
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="analytics-batcher"
            )

    async def __aenter__(self) -> BatchWriter[T]:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def flush(self, *, partial: bool = True) -> int:
        """Write pending batches now (also a last partial one if ``partial``); returns rows written.

        Stops at the first failed write, leaving the rest buffered.
        """
        written = 0
        async with self._write_lock:
            while self._buffer and (partial or len(self._buffer) >= self._batch_size):
                batch = [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]
                try:
                    await self._writer(batch)
                except Exception as exc:  # the database may be down: keep the batch, try later
                    self.write_failures += 1
                    if self.on_write is not None:
                        self.on_write(exc)
                    break
                if self.on_write is not None:
                    self.on_write(None)
                for _ in batch:
                    self._buffer.popleft()
                self.written += len(batch)
                self.batches += 1
                written += len(batch)
        return written

    async def aclose(self) -> None:
        """Stop the background task and flush what is left (bounded by ``close_timeout_s``)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await drain_until(self.flush, lambda: bool(self._buffer), self._close_timeout_s)

    async def run(self) -> None:
        """The background loop, until cancelled (:meth:`start` runs it as a task)."""
        await self._run()

    async def _run(self) -> None:
        # No asyncio.wait_for here: on Python 3.11 a cancellation racing its
        # timeout can be lost, and this loop would then never stop.
        loop = asyncio.get_running_loop()
        while True:
            timer = loop.call_later(self._flush_interval_s, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
            self._wake.clear()
            await self.flush()


async def drain_until(
    flush: Callable[[], Awaitable[object]], pending: Callable[[], bool], timeout_s: float
) -> None:
    """Call ``flush`` until nothing is pending or ``timeout_s`` has passed.

    A first write after an outage often fails on a stale pooled connection;
    trying again a few times within the budget lets shutdown flush anyway.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while pending() and loop.time() < deadline:
        try:
            await bounded(flush(), max(0.0, deadline - loop.time()), what="final flush")
        except ResilienceError:
            return
        if pending():
            await asyncio.sleep(0.05)


class AnalyticsBatcher(BatchWriter[AnalyticsEvent]):
    """The :class:`BatchWriter` of lookup events (``analytics_events``)."""


def unnest_writer(
    pool: Any, query: str, columns: Sequence[Callable[[T], Any]]
) -> Callable[[Sequence[T]], Awaitable[None]]:
    """A batch writer running ``query`` once per batch with one array per column.

    ``query`` reads its rows from ``unnest($1::…[], $2::…[], …)``; ``columns``
    gives, in parameter order, how each row yields that parameter's value.
    """

    async def write(rows: Sequence[T]) -> None:
        await pool.execute(query, *[[column(row) for row in rows] for column in columns])

    return write


def postgres_analytics_writer(pool: Any) -> Writer:
    """A :data:`Writer` inserting a batch into ``analytics_events`` with one statement."""
    query = (
        "INSERT INTO analytics_events (event_name, category, properties, correlation_id, "
        "created_at) SELECT e, c, p::jsonb, i, to_timestamp(t) FROM unnest("
        "$1::text[], $2::text[], $3::text[], $4::text[], $5::float8[]) AS u(e, c, p, i, t)"
    )
    return unnest_writer(
        pool,
        query,
        [
            lambda e: e.event_type,
            lambda e: e.category,
            lambda e: json.dumps(e.properties, separators=(",", ":")),
            lambda e: e.correlation_id,
            lambda e: e.timestamp_s,
        ],
    )
