"""Process faults on a dependency's server: pause, resume, kill, restart.

:class:`ServerControl` is what a backend offers for them (the local backend:
:class:`LocalServerControl`, signals to the server's process group; a backend
without one makes :func:`server_control` raise :class:`ServerControlUnavailable`
with the reason). Every call blocks until done (a restarted server answers);
the scenario layer runs them in a thread.

- ``pause``: SIGSTOP to the server and every process it forked (PostgreSQL's
  backends call ``setsid()``, so they are not in the postmaster's process
  group: they are found by parent pid), so the server accepts TCP (the
  kernel's backlog) and never answers, on new and existing connections alike.
- ``resume``: SIGCONT.
- ``kill``: SIGKILL to the server and its descendants; down until ``start``.
- ``stop``: a graceful stop (PostgreSQL fast shutdown, SIGINT; Redis SIGTERM).
- ``start``: the server again on the same port and data directory:
  PostgreSQL recovers from its WAL after a kill; Redis (no persistence)
  starts empty unless ``keep_data``, where its dataset was saved (``SAVE``)
  just before the stop or kill and is loaded back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Protocol

from resilience.backends.errors import BackendError
from resilience.backends.postgres import LocalPostgres
from resilience.backends.process import ManagedProcess, signals_deferred
from resilience.backends.readiness import wait_until
from resilience.backends.redis import LocalRedis

__all__ = [
    "SERVER_NAMES",
    "LocalServerControl",
    "ServerControl",
    "ServerControlUnavailable",
]

SERVER_NAMES = ("postgres", "redis")
RESTART_TIMEOUT_S = 60.0


class ServerControlUnavailable(BackendError):
    """This backend cannot pause, kill or restart its servers (the message says why)."""


class ServerControl(Protocol):
    """Process faults on the servers named ``postgres`` and ``redis``."""

    def pause(self, name: str) -> None: ...

    def resume(self, name: str) -> None: ...

    def kill(self, name: str, *, keep_data: bool = False) -> None: ...

    def stop(self, name: str, *, keep_data: bool = False) -> None: ...

    def start(self, name: str) -> None: ...

    def resume_all(self) -> None:
        """SIGCONT every server (harmless on running ones): the first thing any cleanup does."""
        ...


class _Owner(Protocol):
    postgres: LocalPostgres | None
    redis: LocalRedis | None

    def record_process(self, process: ManagedProcess) -> None: ...

    def respawn(self, server: LocalPostgres | LocalRedis) -> ManagedProcess: ...


class LocalServerControl:
    """:class:`ServerControl` for the local backend's child processes."""

    def __init__(self, owner: _Owner) -> None:
        self.owner = owner
        self.paused: set[str] = set()

    def _server(self, name: str) -> LocalPostgres | LocalRedis:
        server: LocalPostgres | LocalRedis | None = None
        if name == "postgres":
            server = self.owner.postgres
        elif name == "redis":
            server = self.owner.redis
        if server is None:
            raise BackendError(f"no server named {name!r} (known: {', '.join(SERVER_NAMES)})")
        return server

    def _signal(self, name: str, signum: int) -> None:
        """signum to the server, then to every descendant (the server first: once it is
        stopped or dead it forks no more)."""
        process = self._server(name).process
        if process is None or not process.alive():
            return
        for pid in [process.pid, *descendants(process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def pause(self, name: str) -> None:
        self._signal(name, signal.SIGSTOP)
        self.paused.add(name)

    def resume(self, name: str) -> None:
        self._signal(name, signal.SIGCONT)
        self.paused.discard(name)

    def resume_all(self) -> None:
        for name in SERVER_NAMES:
            with contextlib.suppress(BackendError):
                self.resume(name)

    def _save(self, name: str, keep_data: bool) -> None:
        server = self._server(name)
        if isinstance(server, LocalRedis):
            if keep_data:
                server.save_dataset()
            else:
                server.forget_dataset()

    def kill(self, name: str, *, keep_data: bool = False) -> None:
        self.resume(name)  # SAVE needs a running server; SIGKILL works either way
        self._save(name, keep_data)
        process = self._server(name).process
        if process is not None:
            children = descendants(process.pid)
            self._signal(name, signal.SIGKILL)
            process.stop(timeout_s=5.0)  # reaps it and any straggler of its group
            _wait_gone(children, timeout_s=5.0)  # the old backends hold its shared memory

    def stop(self, name: str, *, keep_data: bool = False) -> None:
        self.resume(name)
        self._save(name, keep_data)
        server = self._server(name)
        if server.process is not None:
            server.process.stop_signal = graceful_signal(server)
            server.process.stop(timeout_s=30.0)

    def start(self, name: str) -> None:
        server = self._server(name)
        if server.process is not None and server.process.alive():
            return
        with signals_deferred():
            process = self.owner.respawn(server)
        wait_until(name, server.probe, timeout_s=RESTART_TIMEOUT_S, process=process)


def descendants(pid: int) -> list[int]:
    """Pids of every live process below pid (from /proc; parents before children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in (b"Z", b"X"):  # fields: state, ppid, ...
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop(0)
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def _wait_gone(pids: list[int], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in pids):
            return
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def graceful_signal(server: LocalPostgres | LocalRedis) -> int:
    """PostgreSQL: SIGINT (fast shutdown: clients cut, clean checkpoint); Redis: SIGTERM."""
    return signal.SIGINT if isinstance(server, LocalPostgres) else signal.SIGTERM
