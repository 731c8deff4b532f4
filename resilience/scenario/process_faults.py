"""Process faults of the timeline (``action: pause|resume|kill|restart``).

:class:`ProcessFaultController` is a :class:`~resilience.scenario.faults.FaultController`
that carries out the process actions on a server control (the environment's
:meth:`~resilience.backends.environment.Environment.server_control`) and hands
every other fault to the controller it wraps (the Toxiproxy one). Each call
runs in a thread, bounded by ``timeout_s``.

Undone whatever happens: :meth:`clear_all` (called by the runner at the end,
on a gate failure, an exception, Ctrl-C and SIGTERM, and by the real stack's
teardown) resumes every server (SIGCONT is harmless on a running one) and
starts every server a fault left down, before the wrapped controller's own
``clear_all``. If the harness is SIGKILLed, the environment's reaper SIGCONTs
a paused server before stopping it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from resilience.scenario.faults import FaultControlError, FaultController
from resilience.scenario.model import PROCESS_ACTIONS, FaultSpec

__all__ = ["ProcessFaultController", "has_process_faults"]


def has_process_faults(faults: list[FaultSpec]) -> bool:
    """True when a timeline needs a server control."""
    return any(f.action in PROCESS_ACTIONS for f in faults)


class ProcessFaultController:
    """Process actions on ``servers``; every other fault goes to ``inner``.

    ``servers`` has ``pause``, ``resume``, ``kill``, ``stop``, ``start`` and
    ``resume_all`` (a :class:`~resilience.backends.server_control.ServerControl`).
    ``down`` maps each server a fault left not running to ``paused``,
    ``killed`` or ``stopped``.
    """

    def __init__(self, servers: Any, inner: FaultController, *, timeout_s: float = 90.0) -> None:
        self.servers = servers
        self.inner = inner
        self.timeout_s = timeout_s
        self.down: dict[str, str] = {}

    async def _call(self, what: str, fn: Callable[[], None]) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(fn), self.timeout_s)
        except TimeoutError as exc:
            raise FaultControlError(f"{what}: not done within {self.timeout_s:g} s") from exc
        except Exception as exc:
            raise FaultControlError(f"{what}: {exc}") from exc

    async def apply(self, fault: FaultSpec) -> None:
        action, target = fault.action, fault.target
        if action not in PROCESS_ACTIONS:
            await self.inner.apply(fault)
            return
        servers = self.servers
        if action == "pause":
            self.down[target] = "paused"
            await self._call(f"pause {target}", functools.partial(servers.pause, target))
        elif action == "resume":
            await self._call(f"resume {target}", functools.partial(servers.resume, target))
            self.down.pop(target, None)
        elif action == "kill":
            self.down[target] = "killed"
            kill = functools.partial(servers.kill, target, keep_data=fault.keep_data)
            await self._call(f"kill {target}", kill)
        else:  # restart: a graceful stop, then start now or when the window ends
            self.down[target] = "stopped"
            stop = functools.partial(servers.stop, target, keep_data=fault.keep_data)
            await self._call(f"stop {target}", stop)
            if fault.duration is None:
                await self._start(target)

    async def _start(self, target: str) -> None:
        await self._call(f"start {target}", functools.partial(self.servers.start, target))
        self.down.pop(target, None)

    async def clear(self, fault: FaultSpec) -> None:
        action, target = fault.action, fault.target
        if action not in PROCESS_ACTIONS:
            await self.inner.clear(fault)
        elif action == "pause":
            await self._call(f"resume {target}", functools.partial(self.servers.resume, target))
            self.down.pop(target, None)
        elif action in ("kill", "restart"):
            await self._start(target)

    async def clear_all(self) -> None:
        """Every server running and answering again, then the wrapped controller's clear_all."""
        problems: list[str] = []
        try:
            await self._call("resume every server", self.servers.resume_all)
        except FaultControlError as exc:
            problems.append(str(exc))
        for target, state in list(self.down.items()):
            if state == "paused":
                self.down.pop(target, None)
                continue
            try:
                await self._start(target)
            except FaultControlError as exc:
                problems.append(str(exc))
        try:
            await self.inner.clear_all()
        except FaultControlError as exc:
            problems.append(str(exc))
        if problems:
            raise FaultControlError("; ".join(problems))
