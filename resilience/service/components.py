"""Background components under supervision: failures reported, recovery after a pause.

:class:`Supervisor` runs each background loop (outbox drainer, the writers,
the ``micro_uuid`` backfill, the monitor) as a task. When a loop raises, or
is crashed on purpose with :meth:`Supervisor.crash` (the harness's ``action:
crash``), the failure is reported as an
:class:`~resilience.service.error_events.ErrorEvent` (component, stack trace,
severity ``critical``), the component is ``recovering`` for
``restart_delay_s`` (1 s), then runs again. A component that keeps running but
fails its work (a write refused while PostgreSQL is away) reports through
:meth:`Supervisor.failure` / :meth:`Supervisor.success`: one ``error`` event
per failure streak, ``failing`` until the next success.

:meth:`Supervisor.states` is what ``/health`` lists under ``background``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from resilience.service.error_events import ErrorEvent

__all__ = [
    "BACKGROUND_COMPONENTS",
    "ComponentCrash",
    "ComponentState",
    "Supervisor",
    "UnknownComponent",
]

BACKGROUND_COMPONENTS = (
    "monitor",
    "error_tracker",
    "breaker_events",
    "failure_metrics",
    "alert_events",
    "analytics",
    "outbox",
    "migration",
)
"""The reference service's supervised components (``analytics``/``outbox``/``migration``
when enabled)."""

Status = Literal["running", "failing", "recovering", "stopped"]


class ComponentCrash(RuntimeError):
    """The failure a :meth:`Supervisor.crash` injects."""


class UnknownComponent(KeyError):
    """:meth:`Supervisor.crash` of a name that is not supervised."""


@dataclass(slots=True)
class ComponentState:
    status: Status = "running"
    failures: int = 0
    crashes: int = 0
    last_error: str | None = None
    last_failure_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "failures": self.failures,
            "crashes": self.crashes,
            "last_error": self.last_error,
            "last_failure_at": self.last_failure_at,
        }


class Supervisor:
    """Runs and restarts background loops; ``report`` receives each failure's error event."""

    def __init__(
        self, report: Callable[[ErrorEvent], None], *, restart_delay_s: float = 1.0
    ) -> None:
        self._report = report
        self.restart_delay_s = restart_delay_s
        self._states: dict[str, ComponentState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._inner: dict[str, asyncio.Task[None]] = {}
        self._crashing: set[str] = set()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._states)

    def register(self, name: str) -> ComponentState:
        """Track ``name`` (for :meth:`failure`/:meth:`success`) without running a loop."""
        return self._states.setdefault(name, ComponentState())

    def run(self, name: str, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``body()`` (a loop meant to run until cancelled) as component ``name``."""
        self.register(name)
        self._tasks[name] = asyncio.get_running_loop().create_task(
            self._supervise(name, body), name=f"component-{name}"
        )

    def crash(self, name: str) -> None:
        """Make component ``name`` fail now (it reports and recovers like any failure)."""
        inner = self._inner.get(name)
        if name not in self._states:
            raise UnknownComponent(name)
        if inner is None or inner.done():
            raise UnknownComponent(f"{name} runs no background loop that could crash")
        self._crashing.add(name)
        inner.cancel()

    def failure(self, name: str, error: BaseException, *, job_id: int | None = None) -> None:
        """Component ``name`` failed a unit of work; reported once per failure streak."""
        state = self.register(name)
        state.failures += 1
        state.last_error = f"{type(error).__name__}: {error}"[:500]
        state.last_failure_at = time.time()
        if state.status == "running":
            state.status = "failing"
            event = ErrorEvent.from_error(error, severity="error", component=name, job_id=job_id)
            self._report(event)

    def success(self, name: str) -> None:
        """Component ``name`` did its work again (ends a failure streak)."""
        state = self._states.get(name)
        if state is not None and state.status == "failing":
            state.status = "running"

    def states(self) -> dict[str, dict[str, Any]]:
        return {name: state.to_dict() for name, state in self._states.items()}

    async def aclose(self) -> None:
        """Stop every loop (a loop's own ``aclose`` flushes what it holds afterwards)."""
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for state in self._states.values():
            state.status = "stopped"

    async def _supervise(self, name: str, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
        state = self._states[name]
        loop = asyncio.get_running_loop()
        while True:
            inner = loop.create_task(body(), name=f"component-{name}-body")
            self._inner[name] = inner
            try:
                await inner
                error: BaseException = RuntimeError(f"{name} stopped unexpectedly")
            except asyncio.CancelledError:
                if name not in self._crashing or not inner.cancelled():
                    inner.cancel()
                    raise
                self._crashing.discard(name)
                try:
                    raise ComponentCrash(f"{name} crashed (injected by the harness)")
                except ComponentCrash as crash:
                    error = crash
                state.crashes += 1
            except Exception as exc:  # any failure of the loop: report, pause, restart
                error = exc
            state.failures += 1
            state.last_error = f"{type(error).__name__}: {error}"[:500]
            state.last_failure_at = time.time()
            state.status = "recovering"
            self._report(ErrorEvent.from_error(error, severity="critical", component=name))
            await asyncio.sleep(self.restart_delay_s)
            state.status = "running"
