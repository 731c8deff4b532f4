"""Retry: backoff schedule, deadline, classification, result-based retry and the budget."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from dataclasses import FrozenInstanceError
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilience.clock import ManualClock
from resilience.errors import (
    CircuitOpenError,
    ConnectionFailure,
    InvalidSlug,
    NotFound,
    ResilienceError,
    TimeoutFailure,
    UpstreamHTTPError,
)
from resilience.retry import (
    HTTP_API_RETRY,
    LOOKUP_RETRY,
    STORAGE_RETRY,
    Retry,
    RetryAttempt,
    RetryBudget,
)


class Flaky:
    """Fails with ``error`` the first ``failures`` calls, then returns ``value``."""

    def __init__(
        self,
        failures: int,
        *,
        error: BaseException | None = None,
        value: Any = "ok",
        clock: ManualClock | None = None,
        work_s: float = 0.0,
    ) -> None:
        self.failures = failures
        self.error = error if error is not None else ConnectionFailure("down")
        self.value = value
        self.calls = 0
        self.clock = clock
        self.work_s = work_s
        self.started_at: list[float] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.clock is not None:
            self.started_at.append(self.clock.monotonic())
            self.clock.advance(self.work_s)
        if self.calls <= self.failures:
            raise self.error
        return self.value

    async def async_call(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return self(*args, **kwargs)


def test_defaults_are_the_documented_lookup_schedule() -> None:
    clock = ManualClock()
    flaky = Flaky(10)
    with pytest.raises(ConnectionFailure) as caught:
        Retry(clock=clock).call(flaky)
    assert flaky.calls == 4
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert caught.value.context["attempts"] == 4


def test_success_after_failures_returns_the_value_and_passes_arguments() -> None:
    clock = ManualClock()
    seen: list[tuple[Any, ...]] = []

    def fn(a: int, *, b: int) -> int:
        seen.append((a, b))
        if len(seen) < 3:
            raise TimeoutFailure("slow")
        return a + b

    assert Retry(clock=clock).call(fn, 1, b=2) == 3
    assert seen == [(1, 2)] * 3
    assert clock.sleeps == pytest.approx([0.1, 0.2])


def test_presets_follow_targets() -> None:
    assert (LOOKUP_RETRY.max_attempts, LOOKUP_RETRY.initial_delay_s) == (4, 0.1)
    assert (LOOKUP_RETRY.multiplier, LOOKUP_RETRY.max_delay_s) == (2.0, 2.0)
    clock = ManualClock()
    with pytest.raises(ConnectionFailure):
        STORAGE_RETRY.replace(clock=clock).call(Flaky(10))
    assert clock.sleeps == pytest.approx([0.5, 1.0, 2.0])
    clock = ManualClock()
    with pytest.raises(ConnectionFailure):
        HTTP_API_RETRY.replace(clock=clock, rng=random.Random(1)).call(Flaky(10))
    assert len(clock.sleeps) == 3
    for slept, nominal in zip(clock.sleeps, [1.0, 2.0, 4.0], strict=True):
        assert nominal * 0.9 <= slept <= nominal * 1.1


@settings(max_examples=200, deadline=None)
@given(
    max_attempts=st.integers(1, 8),
    initial=st.floats(0.0, 1.0),
    multiplier=st.floats(1.0, 4.0),
    cap=st.floats(0.0, 3.0),
    jitter=st.sampled_from(["none", "full", "equal", "decorrelated", "proportional"]),
    deadline=st.none() | st.floats(0.01, 10.0),
    failures=st.integers(0, 10),
    work_s=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**32),
)
def test_schedule_properties(
    max_attempts: int,
    initial: float,
    multiplier: float,
    cap: float,
    jitter: Any,
    deadline: float | None,
    failures: int,
    work_s: float,
    seed: int,
) -> None:
    """Attempts ≤ max; every delay within [0, cap]; no sleep ends past the deadline."""
    clock = ManualClock()
    flaky = Flaky(failures, clock=clock, work_s=work_s)
    retry = Retry(
        max_attempts=max_attempts,
        initial_delay_s=initial,
        multiplier=multiplier,
        max_delay_s=cap,
        jitter=jitter,
        deadline_s=deadline,
        clock=clock,
        rng=random.Random(seed),
    )
    if failures < max_attempts and deadline is None:
        assert retry.call(flaky) == "ok"
        assert flaky.calls == failures + 1
    else:
        outcome: Any = None
        try:
            outcome = retry.call(flaky)
        except ConnectionFailure as error:
            outcome = error
        if isinstance(outcome, ConnectionFailure):
            assert outcome.context["attempts"] == flaky.calls
            assert flaky.calls <= failures
        else:
            assert outcome == "ok"
    assert flaky.calls <= max_attempts
    assert len(clock.sleeps) == flaky.calls - 1
    assert all(0.0 <= slept <= cap for slept in clock.sleeps)
    if deadline is not None:
        # every retry starts after a sleep that ended within the deadline
        assert all(started <= deadline + 1e-9 for started in flaky.started_at[1:])


@settings(max_examples=100, deadline=None)
@given(retry_after=st.floats(0.0, 30.0), deadline=st.none() | st.floats(0.5, 60.0))
def test_retry_after_is_honoured_when_larger_but_never_past_the_deadline(
    retry_after: float, deadline: float | None
) -> None:
    clock = ManualClock()
    flaky = Flaky(1, error=UpstreamHTTPError(503, retry_after_s=retry_after))
    retry = Retry(clock=clock, deadline_s=deadline)
    if deadline is not None and max(0.1, retry_after) > deadline:
        with pytest.raises(UpstreamHTTPError):
            retry.call(flaky)
        assert clock.sleeps == []
    else:
        assert retry.call(flaky) == "ok"
        assert clock.sleeps == [max(0.1, retry_after)]


@pytest.mark.parametrize(
    "error",
    [
        InvalidSlug("bad"),
        NotFound("missing"),
        CircuitOpenError("db", retry_after_s=3.0),
        UpstreamHTTPError(404),
        KeyError("bug"),
    ],
)
def test_non_retryable_errors_are_raised_at_once(error: Exception) -> None:
    clock = ManualClock()
    flaky = Flaky(5, error=error)
    with pytest.raises(ResilienceError) as caught:
        Retry(clock=clock).call(flaky)
    assert flaky.calls == 1
    assert clock.sleeps == []
    assert caught.value.context["attempts"] == 1
    if isinstance(error, ResilienceError):
        assert caught.value is error
    else:
        assert caught.value.__cause__ is error


def test_invalid_input_and_open_circuit_ignore_retry_on_and_retry_if() -> None:
    clock = ManualClock()
    retry = Retry(clock=clock, retry_on=Exception, retry_if=lambda exc: True)
    for error in (InvalidSlug("bad"), CircuitOpenError("db", retry_after_s=1.0)):
        flaky = Flaky(5, error=error)
        with pytest.raises(type(error)):
            retry.call(flaky)
        assert flaky.calls == 1


def test_retry_on_classes_and_predicate() -> None:
    clock = ManualClock()
    flaky = Flaky(2, error=KeyError("k"))
    assert Retry(clock=clock, retry_on=(KeyError,)).call(flaky) == "ok"
    assert flaky.calls == 3

    flaky = Flaky(2, error=RuntimeError("transient"))
    retry = Retry(clock=clock, retry_if=lambda exc: "transient" in str(exc))
    assert retry.call(flaky) == "ok"


def test_giving_up_raises_the_classified_error_with_the_original_as_cause() -> None:
    clock = ManualClock()
    original = ConnectionRefusedError(111, "refused")
    with pytest.raises(ConnectionFailure) as caught:
        Retry(clock=clock, max_attempts=2).call(Flaky(5, error=original))
    assert caught.value.__cause__ is original
    assert caught.value.context["attempts"] == 2


def test_retry_on_result() -> None:
    clock = ManualClock()
    results = iter([None, None, "row"])
    retry = Retry(clock=clock, retry_on_result=lambda r: r is None)
    assert retry.call(lambda: next(results)) == "row"
    assert clock.sleeps == pytest.approx([0.1, 0.2])


def test_retry_on_result_returns_the_last_result_when_out_of_attempts() -> None:
    clock = ManualClock()
    calls = iter(range(100))
    retry = Retry(clock=clock, max_attempts=3, retry_on_result=lambda r: r < 50)
    assert retry.call(lambda: next(calls)) == 2


def test_on_retry_hook_receives_frozen_records() -> None:
    clock = ManualClock()
    records: list[RetryAttempt] = []
    with pytest.raises(ConnectionFailure):
        Retry(clock=clock, on_retry=records.append, name="lookup").call(Flaky(9))
    assert [r.attempt for r in records] == [1, 2, 3]
    assert [r.delay_s for r in records] == pytest.approx([0.1, 0.2, 0.4])
    assert [r.elapsed_s for r in records] == pytest.approx([0.0, 0.1, 0.3])
    assert all(r.name == "lookup" and isinstance(r.error, ConnectionFailure) for r in records)
    with pytest.raises(FrozenInstanceError):
        records[0].attempt = 7  # type: ignore[misc]


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated", "proportional"])
def test_jitter_ranges(jitter: Any) -> None:
    for seed in range(50):
        clock = ManualClock()
        retry = Retry(
            clock=clock,
            jitter=jitter,
            rng=random.Random(seed),
            max_attempts=6,
            initial_delay_s=0.1,
            max_delay_s=1.0,
            jitter_ratio=0.1,
        )
        with pytest.raises(ConnectionFailure):
            retry.call(Flaky(10))
        bases = [0.1, 0.2, 0.4, 0.8, 1.0]
        for slept, base in zip(clock.sleeps, bases, strict=True):
            if jitter == "full":
                assert 0.0 <= slept <= base
            elif jitter == "equal":
                assert base / 2 <= slept <= base
            elif jitter == "proportional":
                assert min(1.0, base * 0.9) - 1e-12 <= slept <= min(1.0, base * 1.1)
            else:
                assert 0.1 <= slept <= 1.0


def test_decorator_sync_keeps_metadata_and_retries() -> None:
    clock = ManualClock()
    flaky = Flaky(2)

    @Retry(clock=clock)
    def fetch(slug: str) -> str:
        """Fetch a slug."""
        return f"{flaky()}:{slug}"

    assert fetch("a") == "ok:a"
    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a slug."
    assert flaky.calls == 3


def test_decorator_with_deadline_and_budget_uses_the_full_path() -> None:
    clock = ManualClock()
    budget = RetryBudget(min_retries_per_s=10, clock=clock)
    flaky = Flaky(1)

    @Retry(clock=clock, deadline_s=5.0, budget=budget)
    def fetch() -> str:
        return str(flaky())

    assert fetch() == "ok"
    assert budget.withdrawn == 1


async def test_acall_retries_with_async_sleep() -> None:
    clock = ManualClock()
    flaky = Flaky(2)
    assert await Retry(clock=clock).acall(flaky.async_call, 1) == "ok"
    assert clock.sleeps == pytest.approx([0.1, 0.2])


async def test_async_decorator_and_result_retry() -> None:
    clock = ManualClock()
    results = iter([None, 5])

    @Retry(clock=clock, retry_on_result=lambda r: r is None)
    async def fetch() -> int | None:
        await asyncio.sleep(0)
        return next(results)

    assert await fetch() == 5
    assert clock.sleeps == pytest.approx([0.1])


async def test_async_non_retryable_and_deadline() -> None:
    clock = ManualClock()
    flaky = Flaky(9, error=InvalidSlug("bad"))
    with pytest.raises(InvalidSlug):
        await Retry(clock=clock).acall(flaky.async_call)
    assert flaky.calls == 1

    flaky = Flaky(9, clock=clock, work_s=0.2)
    with pytest.raises(ConnectionFailure):
        await Retry(clock=clock, deadline_s=0.5, max_attempts=10).acall(flaky.async_call)
    # attempt 1 ends at 0.2, sleeps 0.1; attempt 2 ends at 0.5: a 0.2 s sleep would cross
    assert flaky.calls == 2
    assert clock.monotonic() == pytest.approx(0.5)


async def test_cancellation_is_never_retried() -> None:
    clock = ManualClock()
    calls = 0

    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await Retry(clock=clock).acall(cancelled)
    assert calls == 1


def test_empty_budget_stops_retries() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.0, min_retries_per_s=0.0, clock=clock)
    flaky = Flaky(9)
    with pytest.raises(ConnectionFailure) as caught:
        Retry(clock=clock, budget=budget).call(flaky)
    assert flaky.calls == 1
    assert caught.value.context["attempts"] == 1
    assert budget.denied == 1


@settings(max_examples=100, deadline=None)
@given(
    calls=st.integers(1, 60),
    ratio=st.floats(0.0, 1.0),
    per_s=st.floats(0.0, 5.0),
    max_attempts=st.integers(1, 6),
)
def test_budget_bounds_retries_during_an_outage(
    calls: int, ratio: float, per_s: float, max_attempts: int
) -> None:
    """Retries ≤ initial tokens + ratio × calls + min_retries_per_s × elapsed."""
    clock = ManualClock()
    budget = RetryBudget(ratio=ratio, min_retries_per_s=per_s, capacity=1000, clock=clock)
    initial = budget.available
    retry = Retry(clock=clock, budget=budget, max_attempts=max_attempts)
    attempts = 0
    for _ in range(calls):
        flaky = Flaky(99)
        with pytest.raises(ConnectionFailure):
            retry.call(flaky)
        attempts += flaky.calls
    retries = attempts - calls
    assert retries == budget.withdrawn
    assert retries <= initial + ratio * calls + per_s * clock.monotonic() + 1e-6


def test_threads_sharing_a_budget_lose_no_counts() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.25, min_retries_per_s=0.0, clock=clock)
    retry = Retry(clock=clock, budget=budget, initial_delay_s=0.0)
    attempts = 0
    lock = threading.Lock()

    def failing() -> None:
        nonlocal attempts
        with lock:
            attempts += 1
        raise ConnectionFailure("down")

    def worker() -> None:
        for _ in range(200):
            with pytest.raises(ConnectionFailure):
                retry.call(failing)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = 8 * 200
    assert attempts == calls + budget.withdrawn
    assert budget.withdrawn <= 0.25 * calls
    assert budget.withdrawn >= 0.25 * calls - 3  # almost all deposits were usable
    assert budget.available < 1.0


def test_budget_refills_over_time() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.0, min_retries_per_s=2.0, capacity=4.0, clock=clock)
    assert budget.try_withdraw()
    assert budget.try_withdraw()
    assert not budget.try_withdraw()
    clock.advance(0.5)
    assert budget.try_withdraw()
    clock.advance(100.0)
    assert budget.available == 4.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"initial_delay_s": -1.0},
        {"multiplier": 0.5},
        {"jitter": "sometimes"},
        {"deadline_s": 0.0},
        {"jitter_ratio": 2.0},
    ],
)
def test_invalid_configuration_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Retry(**kwargs)


def test_replace_keeps_other_settings() -> None:
    clock = ManualClock()
    derived = LOOKUP_RETRY.replace(clock=clock, max_attempts=2)
    assert derived.clock is clock
    assert derived.max_attempts == 2
    assert derived.initial_delay_s == LOOKUP_RETRY.initial_delay_s
    assert LOOKUP_RETRY.max_attempts == 4


async def test_tasks_sharing_a_budget_lose_no_counts() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.5, min_retries_per_s=0.0, clock=clock)
    retry = Retry(clock=clock, budget=budget, max_attempts=3)
    attempts = 0

    async def failing() -> None:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        raise ConnectionFailure("down")

    async def one_call() -> None:
        with pytest.raises(ConnectionFailure):
            await retry.acall(failing)

    await asyncio.gather(*(one_call() for _ in range(100)))
    assert attempts == 100 + budget.withdrawn
    assert budget.withdrawn <= 50
    assert budget.withdrawn + budget.denied <= 200


@settings(max_examples=200, deadline=None)
@given(
    deadline=st.floats(0.05, 5.0),
    timeout=st.floats(0.01, 5.0),
    hang=st.floats(0.0, 60.0),
    max_attempts=st.integers(1, 8),
)
def test_attempts_capped_by_the_time_left_keep_the_whole_call_within_the_deadline(
    deadline: float, timeout: float, hang: float, max_attempts: int
) -> None:
    """Each attempt waits min(timeout, what is left of the deadline): the call ends by it."""
    clock = ManualClock()
    retry = Retry(max_attempts=max_attempts, deadline_s=deadline, clock=clock)
    started = clock.monotonic()
    timeouts: list[float] = []

    def hung_attempt() -> str:
        cap = retry.attempt_timeout_s(started, timeout)
        timeouts.append(cap)
        assert 0.0 <= cap <= timeout
        if hang < cap:
            clock.advance(hang)
            return "ok"
        clock.advance(cap)
        raise TimeoutFailure("hung")

    with contextlib.suppress(TimeoutFailure):
        retry.call(hung_attempt)
    assert clock.monotonic() - started <= deadline + 1e-9
    assert 1 <= len(timeouts) <= max_attempts


def test_the_documented_case_a_30s_hang_with_a_1_5s_deadline_ends_at_1_5s() -> None:
    clock = ManualClock()
    retry = Retry(deadline_s=1.5, clock=clock)  # 4 attempts, 0.1/0.2/0.4 s backoff
    started = clock.monotonic()
    caps: list[float] = []

    def hung_attempt() -> None:
        caps.append(retry.attempt_timeout_s(started, 1.0))
        clock.advance(min(caps[-1], 30.0))
        raise TimeoutFailure("hung")

    with pytest.raises(TimeoutFailure):
        retry.call(hung_attempt)
    assert caps == pytest.approx([1.0, 0.4])  # the second attempt gets what is left
    assert clock.monotonic() - started == pytest.approx(1.5)
    assert Retry(clock=clock).attempt_timeout_s(started, 1.0) == 1.0  # no deadline: as is
