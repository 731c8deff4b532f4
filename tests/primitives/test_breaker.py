"""Circuit breaker: call forms, failure classification, manual control, log, store, registry."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from freezegun import freeze_time

from resilience.breaker import (
    BreakerState,
    CircuitBreaker,
    CountWindow,
    InMemoryBreakerStore,
    TimeWindow,
    Transition,
    breakers,
    get_breaker,
    remove_breaker,
    reset_all,
)
from resilience.clock import SYSTEM_CLOCK, ManualClock
from resilience.errors import CircuitOpenError, InvalidInput, NotFound


class Boom(Exception):
    pass


def boom() -> None:
    raise Boom("down")


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            breaker.call(boom)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Transition]] = []

    def on_transition(self, breaker: CircuitBreaker, transition: Transition) -> None:
        self.seen.append((breaker.name, transition))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_opens_after_consecutive_failures_and_refuses_with_retry_after(clock: ManualClock) -> None:
    breaker = CircuitBreaker("db", failure_threshold=3, reset_timeout_s=60.0, clock=clock)
    fail(breaker, 2)
    assert breaker.call(lambda: "ok") == "ok"  # a success resets the run
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker)
    assert breaker.state is BreakerState.OPEN
    assert breaker.opens == 1
    clock.advance(15.0)
    calls: list[int] = []
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(calls.append, 1)
    assert calls == []  # the protected function never ran
    assert info.value.retry_after_s == pytest.approx(45.0)
    assert info.value.retry_at == pytest.approx(60.0)
    assert info.value.name == "db"


def test_half_open_trial_success_closes_and_failure_reopens(clock: ManualClock) -> None:
    breaker = CircuitBreaker("db", failure_threshold=1, reset_timeout_s=10.0, clock=clock)
    fail(breaker)
    clock.advance(10.0)
    assert breaker.state is BreakerState.HALF_OPEN
    fail(breaker)
    assert breaker.state is BreakerState.OPEN
    assert breaker.opens == 2
    clock.advance(10.0)
    assert breaker.call(lambda: 7) == 7
    assert breaker.state is BreakerState.CLOSED


def test_half_open_admits_a_bounded_number_of_trials(clock: ManualClock) -> None:
    breaker = CircuitBreaker(
        "db",
        failure_threshold=1,
        reset_timeout_s=1.0,
        half_open_max_calls=2,
        success_threshold=3,
        clock=clock,
    )
    fail(breaker)
    clock.advance(1.0)
    first, second = breaker.before_call(), breaker.before_call()
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    assert info.value.retry_after_s == 0.0
    breaker.on_success(first)
    third = breaker.before_call()  # a finished trial frees its slot
    breaker.on_success(second)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.on_success(third)
    assert breaker.state is BreakerState.CLOSED


def test_invalid_input_and_not_found_do_not_count(clock: ManualClock) -> None:
    breaker = CircuitBreaker("db", failure_threshold=1, clock=clock)

    def invalid() -> None:
        raise InvalidInput("bad slug")

    def missing() -> None:
        raise NotFound("no such service")

    for fn in (invalid, missing):
        with pytest.raises((InvalidInput, NotFound)):
            breaker.call(fn)
    assert breaker.state is BreakerState.CLOSED


def test_custom_failure_predicates_for_exceptions_and_results(clock: ManualClock) -> None:
    breaker = CircuitBreaker(
        "api",
        failure_threshold=2,
        is_failure=lambda exc: not isinstance(exc, KeyError),
        is_failure_result=lambda result: result == 503,
        clock=clock,
    )
    with pytest.raises(KeyError):
        breaker.call({}.__getitem__, "x")
    assert breaker.call(lambda: 503) == 503  # the result is returned, and counted
    assert breaker.consecutive_failures == 1
    assert breaker.call(lambda: 503) == 503
    assert breaker.state is BreakerState.OPEN


def test_failure_rate_over_count_window_needs_minimum_calls(clock: ManualClock) -> None:
    breaker = CircuitBreaker(
        "db",
        failure_threshold=None,
        window=CountWindow(10),
        failure_rate_threshold=0.5,
        minimum_calls=4,
        clock=clock,
    )
    fail(breaker, 3)
    assert breaker.state is BreakerState.CLOSED  # 3 calls < minimum_calls
    breaker.call(lambda: None)
    assert breaker.state is BreakerState.CLOSED  # successes never trip
    fail(breaker)
    assert breaker.state is BreakerState.OPEN  # 4 failures / 5 calls


def test_time_window_forgets_old_failures(clock: ManualClock) -> None:
    breaker = CircuitBreaker(
        "api",
        failure_threshold=None,
        window=TimeWindow(60.0),
        window_failure_threshold=5,
        clock=clock,
    )
    fail(breaker, 4)
    clock.advance(61.0)
    fail(breaker, 4)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.window_totals() == (4, 4, 0)
    fail(breaker)
    assert breaker.state is BreakerState.OPEN


def test_slow_calls_trip_the_slow_call_rate(clock: ManualClock) -> None:
    breaker = CircuitBreaker(
        "db",
        failure_threshold=None,
        window=CountWindow(4),
        slow_call_duration_s=0.5,
        slow_call_rate_threshold=0.5,
        minimum_calls=4,
        clock=clock,
    )

    def slow() -> str:
        clock.advance(0.6)
        return "late"

    breaker.call(lambda: "fast")
    breaker.call(lambda: "fast")
    breaker.call(slow)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.call(slow) == "late"
    assert breaker.state is BreakerState.OPEN
    assert "slow-call rate" in breaker.transitions[-1].reason


async def test_acall_and_decorators(clock: ManualClock) -> None:
    breaker = CircuitBreaker("svc", failure_threshold=2, clock=clock)

    @breaker
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @breaker
    def compute(x: int) -> int:
        return x + 1

    async def broken() -> None:
        raise Boom("x")

    assert await fetch(2) == 4
    assert compute(2) == 3
    assert fetch.__name__ == "fetch"
    with pytest.raises(Boom):
        await breaker.acall(broken)
    with pytest.raises(Boom):
        await breaker.acall(broken)
    with pytest.raises(CircuitOpenError):
        await fetch(1)


async def test_cancelled_call_is_ignored(clock: ManualClock) -> None:
    breaker = CircuitBreaker("svc", failure_threshold=1, clock=clock)
    task = asyncio.create_task(breaker.acall(asyncio.sleep, 10))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is BreakerState.CLOSED


def test_outcome_of_a_call_admitted_before_a_transition_is_ignored(clock: ManualClock) -> None:
    breaker = CircuitBreaker("db", failure_threshold=1, reset_timeout_s=5.0, clock=clock)
    old = breaker.before_call()
    fail(breaker)
    clock.advance(5.0)
    trial = breaker.before_call()  # half-open now
    breaker.on_success(old)  # stale: must not close the breaker
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.on_success(trial)
    assert breaker.state is BreakerState.CLOSED


def test_reset_force_open_listeners_and_bounded_log(clock: ManualClock) -> None:
    recorder = Recorder()
    breaker = CircuitBreaker(
        "db", failure_threshold=1, transition_log_size=3, listeners=[recorder], clock=clock
    )
    breaker.force_open()
    assert breaker.state is BreakerState.OPEN
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED
    fail(breaker)
    breaker.reset()
    reasons = [t.reason for _, t in recorder.seen]
    assert reasons == ["forced open", "manual reset", "1 consecutive failures", "manual reset"]
    assert [t.reason for t in breaker.transitions] == reasons[-3:]
    transition = recorder.seen[0][1]
    assert (transition.from_state, transition.to_state) == (BreakerState.CLOSED, BreakerState.OPEN)
    assert transition.at_wall == clock.wall()
    with pytest.raises(dataclasses.FrozenInstanceError):
        transition.reason = "changed"  # type: ignore[misc, unused-ignore]


def test_a_failing_listener_does_not_break_the_breaker(clock: ManualClock) -> None:
    class Broken:
        def on_transition(self, breaker: CircuitBreaker, transition: Transition) -> None:
            raise RuntimeError("listener bug")

    breaker = CircuitBreaker("db", failure_threshold=1, listeners=[Broken()], clock=clock)
    fail(breaker)
    assert breaker.state is BreakerState.OPEN


def test_breakers_sharing_a_store_act_as_one(clock: ManualClock) -> None:
    """Two instances (think: two processes) see each other's transitions."""
    store = InMemoryBreakerStore()
    a = CircuitBreaker("db", failure_threshold=2, reset_timeout_s=30.0, store=store, clock=clock)
    b = CircuitBreaker("db", failure_threshold=2, reset_timeout_s=30.0, store=store, clock=clock)
    fail(a, 2)
    assert b.state is BreakerState.OPEN
    assert b.opens == 1
    clock.advance(10.0)
    with pytest.raises(CircuitOpenError) as info:
        b.call(lambda: None)
    assert info.value.retry_after_s == pytest.approx(20.0)
    b.reset()
    assert a.state is BreakerState.CLOSED
    late = CircuitBreaker("db", store=store, clock=clock)  # joins with the stored state
    a.force_open()
    assert late.state is BreakerState.OPEN


def test_store_race_loser_adopts_the_winner(clock: ManualClock) -> None:
    store = InMemoryBreakerStore()
    a = CircuitBreaker("db", failure_threshold=1, store=store, clock=clock)
    b = CircuitBreaker("db", failure_threshold=1, store=store, clock=clock)
    store.watch("db", lambda record: None)
    stored = store.load("db")
    assert stored is None
    a.force_open("a wins")
    record = store.load("db")
    assert record is not None
    assert record.reason == "a wins"
    # b writes the same version from an older view: the store keeps a's record
    assert store.apply("db", dataclasses.replace(record, writer="b", reason="late")) is record
    assert b.state is BreakerState.OPEN


@pytest.mark.parametrize(
    "config",
    [
        {"failure_threshold": 0},
        {"reset_timeout_s": -1},
        {"half_open_max_calls": 0},
        {"success_threshold": 0},
        {"window": CountWindow(5)},
        {"failure_rate_threshold": 0.5},
        {"window": CountWindow(5), "failure_rate_threshold": 1.5},
        {"window": CountWindow(5), "slow_call_rate_threshold": 0.5},
        {"failure_threshold": None},
    ],
)
def test_invalid_configuration_is_refused_with_a_clear_message(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid circuit breaker configuration"):
        CircuitBreaker("bad", **config)


def test_window_specs_validate() -> None:
    with pytest.raises(ValueError, match="size"):
        CountWindow(0)
    with pytest.raises(ValueError, match="seconds"):
        TimeWindow(0)


def test_registry_returns_one_breaker_per_name() -> None:
    try:
        first = get_breaker("test-registry", failure_threshold=1)
        assert get_breaker("test-registry") is first
        assert breakers()["test-registry"] is first
        fail(first)
        assert first.state is BreakerState.OPEN
        reset_all()
        assert first.state is BreakerState.CLOSED
    finally:
        remove_breaker("test-registry")
    assert "test-registry" not in breakers()


def test_reset_timeout_with_the_system_clock_under_freezegun() -> None:
    with freeze_time("2026-01-01 12:00:00") as frozen:
        breaker = CircuitBreaker("frozen", failure_threshold=1, reset_timeout_s=60.0)
        assert breaker.clock is SYSTEM_CLOCK
        fail(breaker)
        frozen.tick(59.0)
        with pytest.raises(CircuitOpenError) as info:
            breaker.call(lambda: None)
        assert info.value.retry_after_s == pytest.approx(1.0)
        frozen.tick(1.0)
        assert breaker.state is BreakerState.HALF_OPEN
        assert breaker.call(lambda: "back") == "back"
        assert breaker.state is BreakerState.CLOSED
