"""The booking flow's retry, Retry-After, breaker and exactly-once rules, on the manual
clock, against the real booking stub in process with scripted answers in front of it."""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from resilience.breaker import BreakerState
from resilience.clock import ManualClock
from resilience.service.booking import BookingError, BookingService, CustomerValidationError
from resilience.service.booking.client import BookingApiClient
from resilience.service.booking.service import build_booking_breaker, build_booking_retry
from resilience.service.config import BookingConfig
from resilience.upstream.app import create_app

REQUEST = {"date": "2026-12-05", "time": "10:00", "customer": {"name": "Ada"}}


class Scripted:
    """ASGI wrapper of the stub: answers the next scripted statuses itself (``("pass",)``
    lets a request through; ``("after", status)`` lets it through and replaces the
    answer); records the manual clock time of every request that arrives."""

    def __init__(self, clock: ManualClock) -> None:
        self.stub = create_app(seed=1)
        self.clock = clock
        self.script: deque[tuple[Any, ...]] = deque()
        self.arrivals: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.stub(scope, receive, send)
            return
        self.arrivals.append(self.clock.monotonic())
        step = self.script.popleft() if self.script else ("pass",)
        if step[0] == "pass":
            await self.stub(scope, receive, send)
            return
        if step[0] == "after":

            async def swallow(message: Message) -> None:
                del message

            await self.stub(scope, receive, swallow)
            step = step[1:]
        status, headers = step[0], dict(step[1]) if len(step) > 1 else {}
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b'{"error": "scripted"}'})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def api(clock: ManualClock) -> Scripted:
    return Scripted(clock)


def make_service(api: Scripted, clock: ManualClock, **changes: Any) -> BookingService:
    config = BookingConfig().model_copy(update=changes)
    client = BookingApiClient(
        "http://booking.test", attempt_timeout_s=1.0, transport=httpx.ASGITransport(app=api)
    )
    return BookingService(
        client,
        retry=build_booking_retry(config, clock),
        breaker=build_booking_breaker(config, clock),
        clock=clock,
    )


def stub_summary(api: Scripted) -> dict[str, int]:
    return dict(api.stub.state.stub.store.summary())


async def test_503s_are_retried_after_1_then_2_s_with_10_percent_jitter(
    api: Scripted, clock: ManualClock
) -> None:
    api.script.extend([(503,), (503,)])
    service = make_service(api, clock)
    booking = await service.book(REQUEST, "key-1")
    assert booking["status"] == "confirmed"
    assert len(api.arrivals) == 3
    first, second = api.arrivals[1] - api.arrivals[0], api.arrivals[2] - api.arrivals[1]
    assert 0.9 <= first <= 1.1
    assert 1.8 <= second <= 2.2


async def test_retry_after_is_honoured_no_call_before_it(api: Scripted, clock: ManualClock) -> None:
    api.script.extend([(429, {"Retry-After": "3"}), (503, {"Retry-After": "5"})])
    service = make_service(api, clock)
    await service.book(REQUEST, "key-2")
    gaps = [b - a for a, b in zip(api.arrivals, api.arrivals[1:], strict=False)]
    assert gaps[0] >= 3.0
    assert gaps[1] >= 5.0


async def test_a_retry_after_beyond_the_cap_gives_up_at_once_and_says_when(
    api: Scripted, clock: ManualClock
) -> None:
    api.script.append((503, {"Retry-After": "120"}))
    service = make_service(api, clock, max_retry_after_s=10.0)
    with pytest.raises(BookingError) as info:
        await service.book(REQUEST, "key-3")
    assert len(api.arrivals) == 1
    assert (info.value.http_status, info.value.retry_after_s) == (503, 120.0)
    assert clock.sleeps == []


@pytest.mark.parametrize(("status", "calls"), [(400, 1), (404, 1), (409, 1), (408, 2), (429, 2)])
async def test_4xx_are_never_retried_except_408_and_429(
    api: Scripted, clock: ManualClock, status: int, calls: int
) -> None:
    api.script.append((status,))
    service = make_service(api, clock)
    with contextlib.suppress(BookingError):
        await service.book(REQUEST, f"key-{status}")
    assert len(api.arrivals) == calls


async def test_upstream_422_is_a_customer_validation_error_never_retried(
    api: Scripted, clock: ManualClock
) -> None:
    service = make_service(api, clock)
    with pytest.raises(CustomerValidationError):
        await service.book({**REQUEST, "customer": {}}, "key-422")
    assert len(api.arrivals) == 1
    assert service.detector.snapshot()["failures"] == 0


async def test_a_lost_answer_is_retried_with_the_same_key_and_books_once(
    api: Scripted, clock: ManualClock
) -> None:
    """The stub books, the answer is replaced by a 503 on the way back (the server did
    the work, the client saw a failure): the retry carries the same key and gets the
    same booking; the stub holds one booking and reports no duplicate."""
    api.script.append(("after", 503))
    service = make_service(api, clock)
    booking = await service.book(REQUEST, "key-once")
    assert len(api.arrivals) == 2
    assert booking["booking_id"] == "bk-1-000001"
    assert stub_summary(api) == {
        "bookings": 1,
        "confirmed": 1,
        "cancelled": 0,
        "idempotent_replays": 1,
        "duplicates": 0,
    }


async def test_breaker_opens_after_5_failures_in_60_s_refuses_then_one_trial_closes_it(
    api: Scripted, clock: ManualClock
) -> None:
    api.script.extend([(503,)] * 5)
    service = make_service(api, clock)
    transitions: list[tuple[str, str]] = []
    service.breaker.add_listener(
        type(
            "L",
            (),
            {
                "on_transition": lambda self, b, t: transitions.append(
                    (t.from_state.value, t.to_state.value)
                )
            },
        )()
    )
    for key in ("a", "b"):
        with pytest.raises(BookingError):
            await service.book(REQUEST, key)
    assert len(api.arrivals) == 5  # the 5th failure opened it: the 6th attempt was refused
    assert service.breaker.state is BreakerState.OPEN
    with pytest.raises(BookingError) as info:
        await service.book(REQUEST, "c")
    assert len(api.arrivals) == 5  # refused without a call
    assert 0 < info.value.retry_after_s <= 30
    clock.advance(30.0)
    await service.book(REQUEST, "d")  # the half-open trial succeeds
    assert service.breaker.state is BreakerState.CLOSED
    assert len(api.arrivals) == 6
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert service.health()["status"] == "critical"  # ≥ 3 failures in the last minute


def test_the_booking_breaker_opens_on_slow_calls_when_configured() -> None:
    """``booking.breaker_slow_call_s``: answers that come, but slowly, open it too (here
    3 calls of 0.8 s each against a 0.5 s slow-call bound and a 0.5 share)."""
    clock = ManualClock()
    config = BookingConfig(breaker_slow_call_s=0.5, breaker_slow_call_rate=0.5, breaker_min_calls=3)
    breaker = build_booking_breaker(config, clock)

    def slow_answer() -> str:
        clock.advance(0.8)
        return "booked"

    for _ in range(3):
        assert breaker.call(slow_answer) == "booked"
    assert breaker.state is BreakerState.OPEN
    plain = build_booking_breaker(BookingConfig(), clock)
    for _ in range(3):
        plain.call(slow_answer)
    assert plain.state is BreakerState.CLOSED  # no slow-call rule by default


def test_calls_while_open_counts_arrivals_after_the_breaker_opened_not_those_in_flight() -> None:
    """At the stub: an arrival within the in-flight grace of the opening was sent before it;
    one at the close (the half-open trial) is not 'while open'."""
    from resilience.service.booking.service import IN_FLIGHT_GRACE_S, UpstreamWatch

    watch = UpstreamWatch(ManualClock())
    watch.open_intervals = [(100.0, 110.0)]
    log = [
        [99.9, "POST /bookings", 201, "k1"],
        [100.0 + IN_FLIGHT_GRACE_S / 2, "POST /bookings", 503, "k2"],
        [105.0, "POST /bookings", 503, "k3"],
        [110.0, "POST /bookings", 201, "k4"],
    ]
    watch.follow(
        lambda: {
            "requests": {"total": 4, "by_route": {"POST /bookings": {"201": 2}}, "log": log},
            "bookings": {"duplicates": 0, "bookings": 2},
        }
    )
    figures = watch.figures()
    assert figures is not None
    assert figures["calls_while_open"] == 1
    assert figures["breaker_opens"] == 1
