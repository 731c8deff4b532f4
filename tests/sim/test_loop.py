"""The virtual-time loop: time jumps, ordering, timeouts, deadlock, LoopClock."""

from __future__ import annotations

import asyncio

import pytest

from resilience.sim import LoopClock, SimulationDeadlock, VirtualEventLoop, run_virtual


def test_sleep_moves_virtual_time_exactly() -> None:
    """An hour-long sleep ends at exactly t = 3600 on the virtual clock."""

    async def main() -> float:
        await asyncio.sleep(3600)
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == 3600.0


def test_start_time_is_configurable() -> None:
    async def main() -> float:
        await asyncio.sleep(1.5)
        return asyncio.get_running_loop().time()

    assert run_virtual(main(), start_s=100.0) == 101.5


def test_simultaneous_timers_fire_in_scheduling_order() -> None:
    """Timers due at the same instant run first-scheduled first (not in heap order)."""

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        fired: list[int] = []
        # Interleave instants so the heap reorders entries internally.
        for i in range(200):
            loop.call_at(5.0 if i % 2 else 3.0, fired.append, i)
        await asyncio.sleep(10)
        return fired

    fired = run_virtual(main())
    evens = [i for i in range(200) if i % 2 == 0]
    odds = [i for i in range(200) if i % 2]
    assert fired == evens + odds


def test_ready_callbacks_run_before_time_moves() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[str, float]] = []
        loop.call_later(1.0, lambda: seen.append(("timer", loop.time())))
        loop.call_soon(lambda: seen.append(("soon", loop.time())))
        await asyncio.sleep(2)
        return seen

    assert run_virtual(main()) == [("soon", 0.0), ("timer", 1.0)]


def test_wait_for_times_out_on_virtual_time() -> None:
    """asyncio.wait_for around a hang raises TimeoutError at exactly the timeout."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        never: asyncio.Future[None] = loop.create_future()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(never, 2.5)
        return loop.time()

    assert run_virtual(main()) == 2.5


def test_many_cancelled_timers_are_purged() -> None:
    """Finished wait_for calls leave cancelled timers; the heap sheds them."""

    async def quick() -> int:
        await asyncio.sleep(0.001)
        return 1

    async def main() -> tuple[int, int]:
        total = 0
        for _ in range(2000):
            total += await asyncio.wait_for(quick(), 60.0)
        loop = asyncio.get_running_loop()
        return total, len(loop._scheduled)  # type: ignore[attr-defined]

    total, pending = run_virtual(main())
    assert total == 2000
    assert pending < 600


def test_deadlock_is_reported_not_hung() -> None:
    """When every task waits on something no timer resolves, the run fails loudly."""

    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(SimulationDeadlock, match="deadlock"):
        run_virtual(main())


def test_loop_clock_reads_virtual_time() -> None:
    async def main() -> tuple[float, float, float]:
        clock = LoopClock(asyncio.get_running_loop(), wall_start_s=1000.0)
        await clock.sleep_async(7.0)
        clock.sleep(3.0)  # a blocking sleep = CPU busy: time moves on
        return clock.monotonic(), clock.wall(), asyncio.get_running_loop().time()

    assert run_virtual(main()) == (10.0, 1010.0, 10.0)


def test_loop_clock_read_cost_charges_time() -> None:
    """With read_cost_s every clock read advances virtual time by that much."""

    async def main() -> list[float]:
        clock = LoopClock(asyncio.get_running_loop(), read_cost_s=0.25)
        return [clock.monotonic() for _ in range(4)]

    assert run_virtual(main()) == [0.25, 0.5, 0.75, 1.0]


def test_read_cost_needs_a_virtual_loop() -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match="VirtualEventLoop"):
            LoopClock(loop, read_cost_s=1e-6)
    finally:
        loop.close()


def test_loop_advance_refuses_negative() -> None:
    loop = VirtualEventLoop()
    try:
        with pytest.raises(ValueError, match="backwards"):
            loop.advance(-1)
    finally:
        loop.close()


def test_try_advance_to_jumps_only_when_nothing_else_is_due_first() -> None:
    """Inline issue is allowed only when the timer it replaces would have run next."""
    from resilience.sim.loop import VirtualEventLoop

    loop = VirtualEventLoop()
    try:
        seen: list[str] = []
        timer = loop.call_at(2.0, seen.append, "timer")
        assert loop.try_advance_to(1.0)  # nothing due before 1.0: time jumps there
        assert loop.time() == 1.0
        assert not loop.try_advance_to(2.0)  # the timer at 2.0 was scheduled first
        assert not loop.try_advance_to(3.0)
        assert loop.time() == 1.0
        timer.cancel()
        assert loop.try_advance_to(3.0)  # a cancelled timer does not count
        assert loop.time() == 3.0
        assert loop.try_advance_to(2.5)  # never backwards
        assert loop.time() == 3.0
        loop.call_soon(seen.append, "ready")
        assert not loop.try_advance_to(4.0)  # a ready callback runs first
        assert seen == []
    finally:
        loop.close()


def test_start_task_runs_the_first_step_now_inside_a_real_task() -> None:
    """An eager task: a coroutine that never waits is done on return; one that waits is a task."""
    seen: list[str] = []

    async def quick() -> str:
        seen.append("quick ran")
        return "done"

    async def waits() -> float:
        task = asyncio.current_task()
        assert task is not None
        seen.append("waits started")
        async with asyncio.timeout(0.5):  # needs a current task: works in the eager step
            await asyncio.sleep(0.1)
        return asyncio.get_running_loop().time()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualEventLoop)
        first = loop.start_task(quick())
        assert first.done()
        assert first.result() == "done"
        second = loop.start_task(waits())
        assert seen == ["quick ran", "waits started"]  # its first step already ran
        assert not second.done()
        assert await second == pytest.approx(0.1)

    run_virtual(main())


def test_an_eager_task_times_out_and_cancels_on_virtual_time() -> None:
    async def hangs() -> None:
        async with asyncio.timeout(0.25):
            await asyncio.sleep(10)

    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualEventLoop)
        timed_out = loop.start_task(hangs())
        with pytest.raises(TimeoutError):
            await timed_out
        cancelled = loop.start_task(asyncio.sleep(5))
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        return cancelled.cancelled(), loop.time()

    assert run_virtual(main()) == (True, pytest.approx(0.25))


def test_a_failing_callback_goes_to_the_exception_handler_and_the_loop_goes_on() -> None:
    reported: list[dict[str, object]] = []

    def boom() -> None:
        raise ValueError("boom")

    async def main() -> float:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        loop.call_soon(boom)
        await asyncio.sleep(1)
        return loop.time()

    assert run_virtual(main()) == 1.0
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], ValueError)
    assert "boom" in str(reported[0]["message"])
