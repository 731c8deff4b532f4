"""A :class:`~resilience.clock.Clock` that reads the running loop's (virtual) time."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Sequence

__all__ = ["LoopClock"]


class LoopClock:
    """Monotonic time from an event loop's ``time()``; wall time offset from it.

    On a :class:`~resilience.sim.loop.VirtualEventLoop` every primitive given
    this clock runs on virtual time. ``wall()`` is ``wall_start_s`` plus the
    loop time elapsed since the clock was made, so records stay deterministic.

    ``read_cost_s`` models CPU time: every ``monotonic()`` call moves virtual
    time forward by that much (so a cache hit, which reads the clock at its
    start and end, lasts a few microseconds instead of zero). Only a
    :class:`VirtualEventLoop` can be advanced; on a real loop it must be 0.
    ``read_costs_s`` instead gives a table of costs used in turn (cycled), so
    the charged CPU time varies like a real one while staying deterministic.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        wall_start_s: float = 1_700_000_000.0,
        read_cost_s: float = 0.0,
        read_costs_s: Sequence[float] = (),
    ) -> None:
        if read_cost_s < 0:
            raise ValueError(f"read_cost_s must not be negative (got {read_cost_s})")
        self._loop = loop
        self._origin = loop.time()
        self._wall_start_s = wall_start_s
        self._read_cost_s = read_cost_s
        advance = getattr(loop, "advance", None)
        if read_costs_s:
            if any(c < 0 for c in read_costs_s):
                raise ValueError("read_costs_s must not be negative")
            read_cost_s = sum(read_costs_s) / len(read_costs_s)
            self._read_cost_s = read_cost_s
        if read_cost_s and advance is None:
            raise ValueError("read_cost_s needs a VirtualEventLoop (real time cannot be advanced)")
        self._advance = advance
        # Bind the cheapest reader once: this is called several times per lookup.
        tick = getattr(loop, "tick", None)
        if read_costs_s and tick is not None:
            costs = itertools.cycle(read_costs_s).__next__

            def varying() -> float:
                return tick(costs())  # type: ignore[no-any-return]

            self.monotonic = varying  # type: ignore[method-assign]
        elif read_cost_s and tick is not None:
            self.monotonic = functools.partial(tick, read_cost_s)  # type: ignore[method-assign]
        elif not read_cost_s:
            self.monotonic = loop.time  # type: ignore[method-assign]

    def monotonic(self) -> float:
        if self._read_cost_s:
            assert self._advance is not None
            self._advance(self._read_cost_s)
        return self._loop.time()

    def wall(self) -> float:
        return self._wall_start_s + (self._loop.time() - self._origin)

    def sleep(self, seconds: float) -> None:
        """Block: on a virtual loop, time moves on as if the CPU had been busy."""
        if seconds <= 0:
            return
        if self._advance is None:
            raise RuntimeError("LoopClock.sleep needs a VirtualEventLoop")
        self._advance(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return f"LoopClock(now={self._loop.time()!r})"
