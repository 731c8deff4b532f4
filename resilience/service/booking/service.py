"""The booking flow: retry around breaker around one HTTP attempt, and what it records.

Per call: ``retry.acall(breaker-guarded attempt)``. The breaker counts an
attempt as a failure when the classified error is retryable (5xx, 408, 429,
timeouts, refused or cut connections, malformed answers): a 409 "slot full"
or a 422 says nothing about the upstream's health. An open breaker refuses
at once (``CircuitOpenError``, never retried), so while it is open the
upstream receives nothing but the half-open trial.

Every failed call becomes an ``error_events`` row (component
``booking-api``) and a failure in the booking :class:`FailureDetector`
(which ``/health`` reports); every breaker transition is written by the
runtime's breaker event recorder. Outcomes and latencies are counted per
operation for ``/stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from resilience.breaker import BreakerState, CircuitBreaker
from resilience.breaker.state import Transition
from resilience.breaker.window import TimeWindow
from resilience.classify import classify
from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.detector import FailureDetector
from resilience.errors import (
    CircuitOpenError,
    InvalidInput,
    ResilienceError,
    TimeoutFailure,
    UpstreamHTTPError,
)
from resilience.retry import Retry
from resilience.service.booking.client import BookingApiClient
from resilience.service.booking.errors import BookingError, CustomerValidationError
from resilience.service.config import BookingConfig
from resilience.service.error_events import ErrorEvent

__all__ = [
    "BookingOutcomes",
    "BookingService",
    "build_booking_breaker",
    "build_booking_retry",
    "to_booking_error",
]

T = TypeVar("T")


def build_booking_retry(config: BookingConfig, clock: Clock) -> Retry:
    """The external-API retry policy from the config (TARGETS.md defaults)."""
    return Retry(
        name="booking-api",
        max_attempts=config.max_attempts,
        initial_delay_s=config.initial_delay_s,
        multiplier=config.multiplier,
        max_delay_s=config.max_delay_s,
        jitter="proportional",
        jitter_ratio=config.jitter_ratio,
        deadline_s=config.deadline_s,
        max_retry_after_s=config.max_retry_after_s,
        clock=clock,
    )


def _upstream_failure(exc: Exception) -> bool:
    """What the booking breaker counts: failures that say the upstream is unwell."""
    if isinstance(exc, InvalidInput):
        return False
    return classify(exc).retryable


def build_booking_breaker(config: BookingConfig, clock: Clock) -> CircuitBreaker:
    """The external-API breaker: N failures within a time window open it, and, when
    ``breaker_slow_call_s`` is set, a share of slow calls in that window too."""
    slow_s = config.breaker_slow_call_s
    return CircuitBreaker(
        "booking-api",
        failure_threshold=None,
        window=TimeWindow(seconds=config.breaker_window_s, buckets=60),
        window_failure_threshold=config.breaker_failures,
        slow_call_duration_s=slow_s,
        slow_call_rate_threshold=config.breaker_slow_call_rate if slow_s is not None else None,
        minimum_calls=config.breaker_min_calls,
        reset_timeout_s=config.breaker_open_s,
        half_open_max_calls=config.breaker_half_open_calls,
        is_failure=_upstream_failure,
        clock=clock,
    )


def to_booking_error(error: ResilienceError) -> ResilienceError:
    """The error the API answers with, from the classified final failure."""
    if isinstance(error, CustomerValidationError | BookingError):
        return error
    if isinstance(error, CircuitOpenError):
        seconds = max(error.retry_after_s, 0.0)
        return BookingError(
            f"booking API breaker open: {error.message}",
            retry_after_s=seconds,
            retryable=True,
            user_message=(
                f"Booking is temporarily unavailable; please try again in {seconds:.0f} s."
            ),
            context={"breaker": error.name},
            correlation_id=error.correlation_id,
        )
    if isinstance(error, UpstreamHTTPError):
        if error.status == 422:
            return CustomerValidationError({"request": error.message})
        if error.status == 409:
            return BookingError(
                error.message,
                status=409,
                http_status=409,
                retryable=False,
                user_message="That slot is no longer available.",
            )
        if error.status == 404:
            return BookingError(
                error.message,
                status=404,
                http_status=404,
                retryable=False,
                user_message="No such booking.",
            )
        if error.status < 500 and error.status not in (408, 425, 429):
            return BookingError(
                error.message, status=error.status, http_status=502, retryable=False
            )
        return BookingError(
            error.message,
            status=error.status,
            retry_after_s=error.retry_after_s,
            retryable=True,
            context=dict(error.context),
        )
    http_status = 504 if isinstance(error, TimeoutFailure) else 503
    return BookingError(
        error.message, http_status=http_status, retryable=True, context=dict(error.context)
    )


class BookingOutcomes:
    """Counts and latencies per ``(operation, outcome)`` (outcome: ``ok`` or the error type)."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self.latency_s: dict[str, list[float]] = {}

    def record(self, operation: str, outcome: str, latency_s: float) -> None:
        per_op = self.counts.setdefault(operation, {})
        per_op[outcome] = per_op.get(outcome, 0) + 1
        samples = self.latency_s.setdefault(f"{operation}.{outcome}", [])
        if len(samples) < 100_000:
            samples.append(latency_s)

    def snapshot(self) -> dict[str, Any]:
        latency: dict[str, dict[str, float]] = {}
        for key, samples in self.latency_s.items():
            ordered = sorted(samples)
            latency[key] = {
                "count": len(ordered),
                "p50_ms": ordered[len(ordered) // 2] * 1000,
                "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
            }
        return {"counts": self.counts, "latency": latency}


class BookingService:
    """Availability and bookings through the booking API, resiliently.

    ``track`` receives an :class:`ErrorEvent` per failed call (the runtime
    passes its :class:`~resilience.service.error_events.ErrorTracker`).
    """

    def __init__(
        self,
        client: BookingApiClient,
        *,
        retry: Retry,
        breaker: CircuitBreaker,
        clock: Clock = SYSTEM_CLOCK,
        track: Callable[[ErrorEvent], None] | None = None,
    ) -> None:
        self.client = client
        self.retry = retry
        self.breaker = breaker
        self.clock = clock
        self.detector = FailureDetector(clock=clock)
        self.track = track
        self.outcomes = BookingOutcomes()
        self.upstream = UpstreamWatch(clock)
        breaker.add_listener(self.upstream)

    @classmethod
    def from_config(
        cls,
        config: BookingConfig,
        *,
        url: str,
        clock: Clock = SYSTEM_CLOCK,
        track: Callable[[ErrorEvent], None] | None = None,
    ) -> BookingService:
        return cls(
            BookingApiClient(url, attempt_timeout_s=config.attempt_timeout_s),
            retry=build_booking_retry(config, clock),
            breaker=build_booking_breaker(config, clock),
            clock=clock,
            track=track,
        )

    async def aclose(self) -> None:
        await self.upstream.aclose()
        await self.client.aclose()

    async def _call(self, operation: str, fn: Callable[[], Awaitable[T]]) -> T:
        breaker = self.breaker

        async def attempt() -> T:
            return await breaker.acall(fn)

        started = self.clock.monotonic()
        try:
            result = await self.retry.acall(attempt)
        except Exception as exc:
            error = to_booking_error(classify(exc, clock=self.clock))
            self._failed(operation, error, self.clock.monotonic() - started)
            raise error from exc
        self.detector.record_success()
        self.outcomes.record(operation, "ok", self.clock.monotonic() - started)
        return result

    def _failed(self, operation: str, error: ResilienceError, latency_s: float) -> None:
        self.outcomes.record(operation, type(error).__name__, latency_s)
        if isinstance(error, CustomerValidationError):
            return  # the caller's input, not a failure of the dependency
        if isinstance(error, BookingError) and error.http_status in (404, 409):
            return  # an unknown booking or a taken slot: the upstream is fine
        self.detector.record_failure(severity="high", component="booking-api")
        if self.track is not None:
            self.track(ErrorEvent.from_error(error, severity="error", component="booking-api"))

    async def availability(self, date: str) -> dict[str, Any]:
        """The slots of date (``YYYY-MM-DD``, already validated by the caller)."""
        return await self._call("availability", lambda: self.client.availability(date))

    async def book(
        self, request: dict[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Book once: the same key (the caller's, or a fresh one) on every attempt.

        ``request``: ``{"date", "time", "customer": {...}}``; the key is also sent
        as the booking's ``reference``, so the upstream can see duplicates.
        """
        key = idempotency_key or uuid.uuid4().hex
        body = {**request, "reference": key}
        booking = await self._call("create", lambda: self.client.create(key, body))
        return {**booking, "idempotency_key": key}

    async def get(self, booking_id: str) -> dict[str, Any]:
        return await self._call("get", lambda: self.client.get(booking_id))

    async def cancel(self, booking_id: str) -> dict[str, Any]:
        return await self._call("cancel", lambda: self.client.cancel(booking_id))

    def health(self) -> dict[str, Any]:
        """The ``bookings`` component of ``/health``: detector grade and breaker state."""
        snapshot = self.detector.snapshot()
        snapshot["breaker"] = str(self.breaker.state.value)
        return snapshot

    def stats(self) -> dict[str, Any]:
        stats = {**self.outcomes.snapshot(), "breaker_opens": self.breaker.opens}
        upstream = self.upstream.figures()
        if upstream is not None:
            stats["upstream"] = upstream
        return stats


IN_FLIGHT_GRACE_S = 0.05
"""Arrivals this soon after the breaker opened were on their way before it did."""


class UpstreamWatch:
    """What the booking API itself counted, read from its ``/_stats`` (the stub's).

    :meth:`start` polls ``stats_url`` (the stub's direct URL) every
    ``interval_s``; as a breaker listener it keeps the (wall clock) intervals
    during which the booking breaker was open, so :meth:`figures` can say how
    many calls reached the API while it was: ``calls_while_open`` (the "no
    hammering" figure). A call arriving within :data:`IN_FLIGHT_GRACE_S` of the
    opening was sent before it (on loopback a request arrives in about a
    millisecond; the breaker cannot recall it) and is not counted. Without a
    stub (a real API) there are no figures.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.snapshot: dict[str, Any] | None = None
        self.open_intervals: list[tuple[float, float]] = []
        self.open_since: float | None = None
        self._url: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._source: Callable[[], dict[str, Any]] | None = None

    def follow(self, source: Callable[[], dict[str, Any]]) -> None:
        """Read the counts from ``source()`` (the simulator's stub) instead of polling."""
        self._source = source

    def on_transition(self, breaker: Any, transition: Transition) -> None:
        now = self.clock.wall()
        if transition.to_state is BreakerState.OPEN:
            self.open_since = now
        elif transition.from_state is BreakerState.OPEN and self.open_since is not None:
            self.open_intervals.append((self.open_since, now))
            self.open_since = None

    def start(self, stats_url: str, interval_s: float = 0.5) -> None:
        self._url = stats_url.rstrip("/")
        self._task = asyncio.get_running_loop().create_task(
            self._poll(interval_s), name="booking-api-stats"
        )

    async def _fetch(self) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=2.0) as http:
            response = await http.get(f"{self._url}/_stats", params={"log": "1"})
            response.raise_for_status()
            self.snapshot = response.json()

    async def _poll(self, interval_s: float) -> None:
        while True:
            with contextlib.suppress(Exception):  # the stub may be cut off: keep the last
                await self._fetch()
            await asyncio.sleep(interval_s)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def figures(self) -> dict[str, Any] | None:
        """``calls``, ``booking_calls``, ``calls_while_open``, ``duplicates``, ``bookings``,
        ``min_retry_gap_s`` (shortest time between two arrivals of one booking key at
        the API: a retry never comes before the ``Retry-After`` it was given)."""
        snapshot = self._source() if self._source is not None else self.snapshot
        if snapshot is None:
            return None
        requests = snapshot.get("requests", {})
        intervals = list(self.open_intervals)
        if self.open_since is not None:
            intervals.append((self.open_since, float("inf")))
        log = requests.get("log", [])
        grace = IN_FLIGHT_GRACE_S  # sent before the breaker opened, arrived just after
        while_open = sum(1 for t, *_rest in log if any(a + grace <= t < b for a, b in intervals))
        last_by_key: dict[str, float] = {}
        min_gap: float | None = None
        for t, route, _status, key in log:
            if route != "POST /bookings" or not key:
                continue
            if key in last_by_key:
                gap = t - last_by_key[key]
                min_gap = gap if min_gap is None else min(min_gap, gap)
            last_by_key[key] = t
        by_route = requests.get("by_route", {})
        bookings = snapshot.get("bookings", {})
        return {
            "calls": int(requests.get("total", 0)),
            "booking_calls": sum(by_route.get("POST /bookings", {}).values()),
            "calls_while_open": while_open,
            "duplicates": int(bookings.get("duplicates", 0)),
            "bookings": int(bookings.get("bookings", 0)),
            "min_retry_gap_s": min_gap,
            "breaker_opens": len(self.open_intervals) + (self.open_since is not None),
        }
