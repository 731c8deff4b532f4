"""Operational records in PostgreSQL: breaker transitions and aggregated failures.

- :class:`BreakerEventRecorder` is a breaker listener writing every transition
  to ``circuit_breaker_events``. Transitions may arrive on any thread (a
  shared Redis store delivers them from its subscriber thread), so rows are
  handed to the event loop with ``call_soon_threadsafe``.
- :class:`FailureAggregator` is a lookup listener that counts failures per
  (component, failure type) and writes the counts to ``failure_metrics`` once
  per ``flush_interval_s``, one row per key and interval.

Both buffer in a :class:`~resilience.service.analytics.BatchWriter`, so a
database outage never blocks a lookup or a breaker transition.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resilience.breaker.state import Transition
from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.service.analytics import BatchWriter, unnest_writer
from resilience.service.model import LookupResult

__all__ = ["BreakerEventRecorder", "BreakerEventRow", "FailureAggregator", "FailureRow"]


@dataclass(frozen=True, slots=True)
class BreakerEventRow:
    breaker_name: str
    from_state: str
    to_state: str
    reason: str
    at_wall: float
    opens: int


@dataclass(frozen=True, slots=True)
class FailureRow:
    component: str
    operation: str
    total_count: int
    failure_count: int
    health: str
    window_start_wall: float
    window_end_wall: float


class BreakerEventRecorder:
    """Breaker listener → ``circuit_breaker_events`` (buffered, thread-safe hand-off)."""

    def __init__(self, pool: Any, loop: asyncio.AbstractEventLoop, **writer_options: Any) -> None:
        self._loop = loop
        self.writer: BatchWriter[BreakerEventRow] = BatchWriter(self._write(pool), **writer_options)

    @staticmethod
    def _write(pool: Any) -> Any:
        query = (
            "INSERT INTO circuit_breaker_events "
            "(breaker_name, from_state, to_state, reason, failure_count, occurred_at) "
            "SELECT n, f, t, r, o, to_timestamp(w) FROM unnest("
            "$1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::float8[]"
            ") AS u(n, f, t, r, o, w)"
        )

        return unnest_writer(
            pool,
            query,
            [
                lambda r: r.breaker_name,
                lambda r: r.from_state,
                lambda r: r.to_state,
                lambda r: r.reason,
                lambda r: r.opens,
                lambda r: r.at_wall,
            ],
        )

    def on_transition(self, breaker: Any, transition: Transition) -> None:
        row = BreakerEventRow(
            breaker_name=str(getattr(breaker, "name", "breaker")),
            from_state=transition.from_state.value,
            to_state=transition.to_state.value,
            reason=transition.reason[:500],
            at_wall=transition.at_wall,
            opens=int(getattr(breaker, "consecutive_failures", 0)),
        )
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown: drop the row
            self._loop.call_soon_threadsafe(self.writer.add, row)


class FailureAggregator:
    """Lookup listener → ``failure_metrics``: one row per ``flush_interval_s`` with lookups.

    A failure is an ``error`` or a fallback for any reason but "not found";
    ``health`` is the failure detector's grade when the interval closes.
    """

    def __init__(
        self,
        pool: Any,
        *,
        clock: Clock = SYSTEM_CLOCK,
        flush_interval_s: float = 10.0,
        component: str = "postgres",
        operation: str = "lookup",
        health: Callable[[], str] = lambda: "healthy",
    ) -> None:
        self._clock = clock
        self._interval_s = flush_interval_s
        self._component = component
        self._operation = operation
        self._health = health
        self._total = 0
        self._failures = 0
        self._window_start = clock.wall()
        self.writer: BatchWriter[FailureRow] = BatchWriter(
            self._write(pool), batch_size=50, flush_interval_s=flush_interval_s
        )

    @staticmethod
    def _write(pool: Any) -> Any:
        query = (
            "INSERT INTO failure_metrics (component, operation, total_count, failure_count, "
            "failure_rate, health, window_start, window_end) "
            "SELECT c, o, t, f, f::float8 / greatest(t, 1), h, to_timestamp(s), to_timestamp(e) "
            "FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[], "
            "$6::float8[], $7::float8[]) AS u(c, o, t, f, h, s, e)"
        )

        return unnest_writer(
            pool,
            query,
            [
                lambda r: r.component,
                lambda r: r.operation,
                lambda r: r.total_count,
                lambda r: r.failure_count,
                lambda r: r.health,
                lambda r: r.window_start_wall,
                lambda r: r.window_end_wall,
            ],
        )

    def __call__(self, result: LookupResult) -> None:
        if result.outcome == "invalid":
            return
        self._total += 1
        if result.outcome == "error" or (
            result.outcome == "fallback" and result.reason != "not_found"
        ):
            self._failures += 1
        now = self._clock.wall()
        if now - self._window_start >= self._interval_s:
            self.roll(now)

    def roll(self, now: float | None = None) -> None:
        """Close the current interval: queue its row (if it saw any lookup)."""
        now = self._clock.wall() if now is None else now
        if self._total:
            self.writer.add(
                FailureRow(
                    component=self._component,
                    operation=self._operation,
                    total_count=self._total,
                    failure_count=self._failures,
                    health=self._health(),
                    window_start_wall=self._window_start,
                    window_end_wall=now,
                )
            )
        self._total = 0
        self._failures = 0
        self._window_start = now
