"""The backfill steps of a run: the ``migration:`` section of a scenario.

A mixin of the runner's run object: it needs ``scenario``, ``stack``,
``clock``, ``writer``, ``w0``, ``t_us()`` and ``clear_all()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resilience.clock import Clock
    from resilience.scenario.history import HistoryWriter
    from resilience.scenario.model import Scenario
    from resilience.scenario.stack import Stack

__all__ = ["BackfillSteps"]


class BackfillSteps:
    """Start the backfill on schedule, re-run it after failures, catch up, record statistics."""

    scenario: Scenario
    stack: Stack
    clock: Clock
    writer: HistoryWriter
    w0: float

    def t_us(self) -> int:
        raise NotImplementedError

    async def clear_all(self) -> None:
        raise NotImplementedError

    async def migration(self) -> None:
        """Run the backfill at its time, again after each failed run, until one completes."""
        spec = self.scenario.migration
        capability: Any = getattr(self.stack, "migration", None)
        if spec is None:
            return
        if capability is None:
            self.writer.write({"type": "migration", "t_us": self.t_us(), "event": "unsupported"})
            return
        wait = self.w0 + spec.at - self.clock.monotonic()
        if wait > 0:
            await self.clock.sleep_async(wait)
        for run in range(1, spec.max_runs + 1):
            self.writer.write(
                {"type": "migration", "t_us": self.t_us(), "event": "run_start", "run": run}
            )
            try:
                counts = await capability.run(batch_size=spec.batch_size)
            except Exception as exc:
                self.writer.write(
                    {
                        "type": "migration",
                        "t_us": self.t_us(),
                        "event": "run_error",
                        "run": run,
                        "error": f"{type(exc).__name__}: {exc}"[:300],
                    }
                )
                await self.clock.sleep_async(spec.retry_interval)
                continue
            self.writer.write(
                {
                    "type": "migration",
                    "t_us": self.t_us(),
                    "event": "run_end",
                    "run": run,
                    "counts": dict(counts),
                }
            )
            return

    async def migration_final(self) -> None:
        """The catch-up run after the faults (jobs posted meanwhile), then the statistics."""
        capability: Any = getattr(self.stack, "migration", None)
        spec = self.scenario.migration
        if spec is None or capability is None:
            return
        if spec.catch_up:
            self.writer.write({"type": "migration", "t_us": self.t_us(), "event": "catch_up"})
            try:
                counts = await asyncio.wait_for(capability.run(batch_size=spec.batch_size), 60.0)
                self.writer.write(
                    {
                        "type": "migration",
                        "t_us": self.t_us(),
                        "event": "catch_up_end",
                        "counts": dict(counts),
                    }
                )
            except Exception as exc:
                self.writer.write(
                    {
                        "type": "migration",
                        "t_us": self.t_us(),
                        "event": "catch_up_error",
                        "error": f"{type(exc).__name__}: {exc}"[:300],
                    }
                )
        try:
            stats = await asyncio.wait_for(capability.stats(), 15.0)
        except Exception as exc:
            self.writer.write(
                {
                    "type": "migration",
                    "t_us": self.t_us(),
                    "event": "final_error",
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                }
            )
            return
        self.writer.write(
            {"type": "migration", "t_us": self.t_us(), "event": "final", "stats": dict(stats)}
        )

    async def _finish_migration(self, task: asyncio.Future[None]) -> None:
        """Let a backfill still running after the workload finish (faults are gone by then)."""
        if task.done():
            return
        await self.clear_all()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 60.0)
