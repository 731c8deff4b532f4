"""``bounded``: the answer, the error, a timeout that does not wait, a cancellation passed on."""

from __future__ import annotations

import asyncio

import pytest

from resilience.errors import TimeoutFailure
from resilience.service import timeouts
from resilience.service.timeouts import bounded
from resilience.sim.loop import run_virtual


async def _answer(after_s: float, value: int) -> int:
    await asyncio.sleep(after_s)
    return value


async def _fail() -> None:
    await asyncio.sleep(0.01)
    raise KeyError("boom")


def test_answer_within_the_timeout() -> None:
    async def main() -> tuple[int, float, int]:
        loop = asyncio.get_running_loop()
        value = await bounded(_answer(0.1, 7), 1.0)
        return value, loop.time(), len(loop._scheduled)  # type: ignore[attr-defined]

    value, now, timers = run_virtual(main())
    assert value == 7
    assert now == pytest.approx(0.1)
    assert timers == 0  # the timeout's timer is cancelled (and dropped) with the answer


def test_error_passes_through() -> None:
    with pytest.raises(KeyError):
        run_virtual(bounded(_fail(), 1.0))


def test_timeout_returns_at_once_and_abandons_the_operation() -> None:
    cancelled: list[bool] = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(10.0)
        except asyncio.CancelledError:
            cancelled.append(True)
            await asyncio.sleep(5.0)  # a slow cancellation path (asyncpg's against a hung link)
            raise

    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutFailure, match=r"query did not finish within 0\.200 s"):
            await bounded(stubborn(), 0.2, what="query")
        gave_up = loop.time()
        assert len(timeouts._abandoned) == 1
        await asyncio.sleep(6.0)
        assert not timeouts._abandoned  # forgotten once it finished
        return gave_up

    assert run_virtual(main()) == pytest.approx(0.2)
    assert cancelled == [True]


def test_cancelling_the_caller_cancels_the_operation() -> None:
    async def main() -> bool:
        inner = asyncio.ensure_future(_answer(10.0, 1))
        outer = asyncio.ensure_future(bounded(inner, 5.0))
        await asyncio.sleep(1.0)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        await asyncio.sleep(0)
        return inner.cancelled()

    assert run_virtual(main())
