"""Circuit breaker under threads and asyncio tasks: no lost counts, no lock around calls."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from resilience.breaker import BreakerState, CircuitBreaker, CountWindow
from resilience.clock import ManualClock
from resilience.errors import CircuitOpenError

THREADS = 8
CALLS = 2_000


class Boom(Exception):
    pass


def test_threads_hammering_lose_no_outcomes() -> None:
    """Every outcome from every thread lands in the window (none lost to races)."""
    breaker = CircuitBreaker(
        "hammer",
        failure_threshold=None,
        window=CountWindow(THREADS * CALLS),
        failure_rate_threshold=1.0,
        minimum_calls=THREADS * CALLS + 1,  # never trips: we only count
        clock=ManualClock(),
    )
    barrier = threading.Barrier(THREADS)

    def work(worker: int) -> None:
        barrier.wait()
        for i in range(CALLS):
            if (worker + i) % 4 == 0:
                with pytest.raises(Boom):
                    breaker.call(_raise)
            else:
                breaker.call(int)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))
    calls, failures, slow = breaker.window_totals()
    assert calls == THREADS * CALLS
    assert failures == THREADS * CALLS // 4
    assert slow == 0


def test_threads_trip_exactly_once_and_all_later_calls_are_refused() -> None:
    breaker = CircuitBreaker(
        "trip", failure_threshold=50, reset_timeout_s=60.0, clock=ManualClock()
    )
    refused = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(100):
            try:
                breaker.call(_raise)
            except Boom:
                pass
            except CircuitOpenError:
                with lock:
                    refused.append(1)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opens == 1
    assert len(refused) >= THREADS * 100 - 50 - THREADS  # at most a few in flight at the trip


def test_the_lock_is_not_held_while_the_protected_call_runs() -> None:
    breaker = CircuitBreaker("nolock", clock=ManualClock())
    inside = threading.Event()
    release = threading.Event()

    def blocking() -> str:
        inside.set()
        assert release.wait(10)
        return "slow"

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(breaker.call, blocking)
        assert inside.wait(10)
        # another caller gets through (and reports) while the first call is running
        assert breaker.call(lambda: "fast") == "fast"
        assert breaker.state is BreakerState.CLOSED
        release.set()
        assert pending.result(10) == "slow"


def test_half_open_limit_holds_under_threads() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(
        "trials", failure_threshold=1, reset_timeout_s=1.0, half_open_max_calls=3, clock=clock
    )
    breaker.force_open()
    clock.advance(1.0)
    admitted: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def work() -> None:
        barrier.wait()
        try:
            permit = breaker.before_call()
        except CircuitOpenError:
            return
        with lock:
            admitted.append(permit)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 3
    assert breaker.state is BreakerState.HALF_OPEN


async def test_asyncio_tasks_lose_no_outcomes() -> None:
    tasks_n = 200
    breaker = CircuitBreaker(
        "tasks",
        failure_threshold=None,
        window=CountWindow(tasks_n * 10),
        failure_rate_threshold=1.0,
        minimum_calls=tasks_n * 10 + 1,
        clock=ManualClock(),
    )

    async def one(i: int) -> None:
        await asyncio.sleep(0)
        if i % 5 == 0:
            raise Boom(str(i))

    async def worker(w: int) -> None:
        for i in range(10):
            with contextlib.suppress(Boom):
                await breaker.acall(one, w + i)

    await asyncio.gather(*(worker(w) for w in range(tasks_n)))
    calls, failures, _ = breaker.window_totals()
    assert calls == tasks_n * 10
    assert failures == sum(1 for w in range(tasks_n) for i in range(10) if (w + i) % 5 == 0)


def _raise() -> None:
    raise Boom("down")


def test_mixed_traffic_with_resets_and_time_keeps_the_breaker_consistent() -> None:
    """Threads calling, failing, resetting and forcing open while time moves: no stray errors."""
    clock = ManualClock()
    breaker = CircuitBreaker(
        "mixed",
        failure_threshold=3,
        reset_timeout_s=0.5,
        window=CountWindow(20),
        failure_rate_threshold=0.5,
        minimum_calls=5,
        half_open_max_calls=2,
        clock=clock,
    )
    barrier = threading.Barrier(THREADS)

    def work(worker: int) -> None:
        barrier.wait()
        for i in range(1_000):
            try:
                if (worker + i) % 3 == 0:
                    breaker.call(_raise)
                else:
                    breaker.call(int)
            except (Boom, CircuitOpenError):
                pass
            if worker == 0 and i % 10 == 0:
                clock.advance(0.1)
            if worker == 1 and i % 97 == 0:
                breaker.reset()
            if worker == 2 and i % 131 == 0:
                breaker.force_open()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))
    assert breaker._trials_in_flight >= 0
    assert breaker.opens >= 1
    log = breaker.transitions
    for before, after in itertools.pairwise(log):
        assert before.to_state == after.from_state
