"""Child server processes: spawn into their own session, log to a file, stop for sure.

Each server runs in a new session (its own process group), so a Ctrl-C at the
terminal reaches only the harness, which then stops the servers in order. On
Linux a server spawned from the main thread also gets a parent-death signal,
so it dies with a harness killed by SIGKILL; a process given a
:class:`~resilience.backends.watchdog.Watchdog` is also registered with its
reaper process, which covers the remaining cases (spawned from a worker
thread, grandchildren, another user).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from resilience.backends.reaper import descendants, live_group_members, process_start_time

if TYPE_CHECKING:
    from resilience.backends.watchdog import Watchdog

__all__ = [
    "ManagedProcess",
    "RunAs",
    "die_with_parent",
    "live_group_members",
    "log_tail",
    "process_start_time",
    "signals_deferred",
]

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class RunAs:
    """An unprivileged account to run a server as (PostgreSQL refuses root)."""

    uid: int
    gid: int
    name: str


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16_384))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


_DEFERRED_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back (main thread only) while a child is spawned and recorded.

    A Ctrl-C landing inside ``fork`` can be swallowed by CPython's at-fork
    handlers, or leave a started child that no object knows, so nobody stops
    it. Held back, it is delivered when the block ends, after the caller
    recorded the child. Nesting is fine.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def die_with_parent(death_signal: int, parent: int) -> None:
    """Have the kernel send ``death_signal`` to this process when ``parent`` (the
    thread that forked it) ends, and exit at once if it already has (Linux; a
    no-op elsewhere). For forked workers such as a process pool's, which would
    otherwise wait on their queue forever once the harness is gone."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None or not hasattr(os, "getppid"):
        return
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the prctl
        os._exit(1)


def _child_preexec(death_signal: int) -> Callable[[], None]:
    """The function run in the child between fork and exec.

    It unblocks the signals :func:`signals_deferred` held back and, for
    children of the main thread, asks the kernel to send
    ``death_signal`` when the parent dies. Only for the main thread because
    the kernel ties that signal to the spawning *thread*, so a worker
    thread's exit would kill the server.
    """
    prctl: Callable[..., int] | None = None
    libc_name = ctypes.util.find_library("c")
    if threading.current_thread() is threading.main_thread() and libc_name is not None:
        prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _DEFERRED_SIGNALS)
        if prctl is not None:
            # Runs after the uid switch (which would clear the setting).
            prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the prctl
                os._exit(1)

    return preexec


class ManagedProcess:
    """One server child process with its log file.

    ``stop_signal`` is what :meth:`stop` sends first (PostgreSQL: SIGQUIT,
    an immediate shutdown, is right for a throwaway server); after
    ``timeout_s`` the whole process group gets SIGKILL. With a ``watchdog``
    the child carries its tag and its group is registered (``kind``
    "server" unless told) before any Ctrl-C can land.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        run_as: RunAs | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
        watchdog: Watchdog | None = None,
        kind: str = "server",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.stop_signal = stop_signal
        if watchdog is not None:
            env = watchdog.child_env(env)
        with log_path.open("ab") as log, signals_deferred():
            self.popen: subprocess.Popen[bytes] = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
                preexec_fn=_child_preexec(stop_signal),
            )
            self.pid = self.popen.pid
            self.start_time = process_start_time(self.pid)
            if watchdog is not None:
                try:
                    watchdog.register(self.pid, kind=kind, label=name, stop_signal=stop_signal)
                except BaseException:
                    self.stop(timeout_s=1.0)
                    raise

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the server, everything in its process group and its descendants; idempotent."""
        # Found while the server lives: children that left its group (PostgreSQL's backends
        # call setsid()) are reparented once it is gone.
        family = descendants([self.pid]) if self.popen.poll() is None else []
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, self.stop_signal)
                os.killpg(self.pid, signal.SIGCONT)  # a paused (SIGSTOP) server acts on it too
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout_s)
        # Children of the server (PostgreSQL backends) may outlive it by a moment.
        deadline = time.monotonic() + timeout_s
        while _group_exists(self.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        left = [pid for pid, start in family if process_start_time(pid) == start]
        while left and time.monotonic() < deadline:
            time.sleep(0.01)
            left = [pid for pid, start in family if process_start_time(pid) == start]
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, alive={self.alive()})"


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(live_group_members(pgid))
