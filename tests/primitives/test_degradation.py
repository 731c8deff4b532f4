"""Graceful degradation: degraded state, recovery detection, fallback wrapper."""

from __future__ import annotations

import asyncio
from dataclasses import FrozenInstanceError

import pytest

from resilience.clock import ManualClock
from resilience.degradation import Degradation, DegradationEvent, with_fallback
from resilience.errors import (
    CircuitOpenError,
    ConnectionFailure,
    InvalidSlug,
    NotFound,
    ResilienceError,
)


def test_enter_and_recover_after_n_successes() -> None:
    clock = ManualClock()
    events: list[DegradationEvent] = []
    state = Degradation("lookup", clock=clock, recovery_successes=3)
    state.add_listener(events.append)
    state.enter("db down")
    assert state.degraded
    assert state.reason == "db down"
    clock.advance(5.0)
    state.record_success()
    state.record_success()
    assert state.degraded
    state.record_failure("db still down")  # a failure restarts the count
    state.record_success()
    state.record_success()
    assert state.degraded
    clock.advance(1.0)
    state.record_success()
    assert not state.degraded
    assert state.reason is None
    assert [e.kind for e in events] == ["entered", "exited"]
    assert events[1].duration_s == pytest.approx(6.0)
    assert state.total_degraded_s == pytest.approx(6.0)
    with pytest.raises(FrozenInstanceError):
        events[0].reason = "x"


def test_durations_accumulate_over_episodes() -> None:
    clock = ManualClock()
    state = Degradation("lookup", clock=clock)
    state.enter("a")
    clock.advance(2.0)
    state.exit()
    clock.advance(10.0)
    state.enter("b")
    clock.advance(3.0)
    assert state.degraded_for_s == pytest.approx(3.0)
    assert state.total_degraded_s == pytest.approx(5.0)
    assert state.episodes == 2
    snap = state.snapshot()
    assert snap["degraded"] is True
    assert snap["reason"] == "b"


def test_entering_twice_is_one_episode() -> None:
    events: list[DegradationEvent] = []
    state = Degradation("lookup", clock=ManualClock())
    state.add_listener(events.append)
    state.enter("a")
    state.enter("b")
    assert state.episodes == 1
    assert len(events) == 1
    assert state.reason == "b"


def test_success_while_healthy_does_nothing() -> None:
    state = Degradation("lookup", clock=ManualClock())
    state.record_success()
    state.exit()
    assert not state.degraded
    assert list(state.events) == []


@pytest.mark.parametrize(
    "error",
    [
        NotFound("no such slug"),
        CircuitOpenError("db", retry_after_s=10.0),
        ConnectionFailure("retries ran out"),
        ConnectionRefusedError(111, "refused"),
    ],
)
def test_fallback_on_recoverable_errors(error: Exception) -> None:
    state = Degradation("lookup", clock=ManualClock())
    seen: list[ResilienceError] = []

    def lookup(slug: str) -> str:
        raise error

    wrapped = with_fallback(lookup, "slug-only", degradation=state, on_fallback=seen.append)
    assert wrapped("a") == "slug-only"
    assert state.degraded
    assert state.fallbacks == 1
    assert len(seen) == 1
    assert state.reason is not None
    assert seen[0].message in state.reason


@pytest.mark.parametrize("error", [InvalidSlug("bad slug"), KeyError("bug")])
def test_non_recoverable_errors_are_raised(error: Exception) -> None:
    state = Degradation("lookup", clock=ManualClock())

    def lookup() -> str:
        raise error

    with pytest.raises(ResilienceError) as caught:
        with_fallback(lookup, "slug-only", degradation=state)()
    assert caught.value is error or caught.value.__cause__ is error
    assert not state.degraded


def test_success_recovers_the_degradation() -> None:
    state = Degradation("lookup", clock=ManualClock())
    outcomes: list[Exception | str] = [ConnectionFailure("down"), "uuid"]

    def lookup() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    wrapped = with_fallback(lookup, None, degradation=state)
    assert wrapped() is None
    assert state.degraded
    assert wrapped() == "uuid"
    assert not state.degraded


async def test_async_fallback() -> None:
    state = Degradation("lookup", clock=ManualClock())

    async def lookup(slug: str) -> str:
        await asyncio.sleep(0)
        if slug == "down":
            raise TimeoutError
        return slug.upper()

    wrapped = with_fallback(lookup, "fallback", degradation=state)
    assert await wrapped("down") == "fallback"
    assert state.degraded
    assert await wrapped("up") == "UP"
    assert not state.degraded
    assert wrapped.__name__ == "lookup"


def test_invalid_recovery_threshold() -> None:
    with pytest.raises(ValueError, match="recovery_successes"):
        Degradation("x", recovery_successes=0)
