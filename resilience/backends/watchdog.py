"""The typed client of the reaper process: nothing the harness starts outlives it.

A parent-death signal (``PR_SET_PDEATHSIG``, set on every
:class:`~resilience.backends.process.ManagedProcess` spawned from the main
thread) covers direct children. It cannot cover the rest: children spawned
from a worker thread (the kernel ties the signal to the *thread*), grandchildren
that left their group (a server started through a wrapper or ``pg_ctl``),
processes run as another user after a set-uid exec. The :mod:`reaper
<resilience.backends.reaper>` process does, whatever ends the harness - SIGKILL
included::

    watchdog = Watchdog.start()
    proc = subprocess.Popen(cmd, env=watchdog.child_env(), start_new_session=True)
    watchdog.register(proc.pid, kind="target", label="my-service")
    watchdog.remove_on_reap(data_dir)
    ...
    proc.terminate(); proc.wait()
    watchdog.close()   # reaps what is still registered and alive, then exits

Register the *leader of a process group* (start children with
``start_new_session=True``): the reaper signals the whole group. Children also
carry a tag in their environment (:meth:`Watchdog.child_env`), so whatever
they spawn is found even outside the group. :func:`shared_watchdog` is one
watchdog for the whole harness process, for processes that belong to no
environment (a target service, an upstream stub).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from resilience.backends import reaper
from resilience.backends.reaper import TAG_VARIABLE, process_start_time

__all__ = ["TAG_VARIABLE", "Watchdog", "WatchdogError", "shared_watchdog"]


class WatchdogError(RuntimeError):
    """The reaper process could not be started or has gone."""


class Watchdog:
    """One reaper process and the pipe that keeps it waiting (see the module docstring).

    Thread-safe. ``grace_s`` is how long the reaper waits between a process's
    stop signal and SIGKILL.
    """

    def __init__(self, process: subprocess.Popen[bytes], tag: str) -> None:
        self._process = process
        self._pipe: IO[bytes] | None = process.stdin
        self._lock = threading.Lock()
        self.tag = tag
        self.pid = process.pid

    @classmethod
    def start(cls, *, grace_s: float = 2.0, log_path: Path | None = None) -> Watchdog:
        """Start a reaper watching this process (returns at once, without waiting for it)."""
        tag = uuid.uuid4().hex
        owner = os.getpid()
        argv = [
            sys.executable,
            "-I",  # the reaper imports only the standard library
            reaper.__file__,
            "--owner", str(owner),
            "--tag", tag,
            "--grace", str(grace_s),
        ]  # fmt: skip
        owner_start = process_start_time(owner)
        if owner_start is not None:
            argv += ["--owner-start-time", str(owner_start)]
        log = log_path.open("ab") if log_path is not None else None
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=log if log is not None else subprocess.DEVNULL,
                start_new_session=True,  # out of reach of Ctrl-C and of killpg(harness)
            )
        except OSError as exc:
            raise WatchdogError(f"could not start the reaper process: {exc}") from exc
        finally:
            if log is not None:
                log.close()
        # No handshake: what is written before the reaper reads waits in the pipe, and a
        # harness that dies before it started is seen by it at once (end-of-file).
        return cls(process, tag)

    def child_env(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """``env`` (default: this process's) plus the tag that marks a child as watched."""
        return {**(os.environ if env is None else env), TAG_VARIABLE: self.tag}

    def register(
        self,
        pid: int,
        *,
        kind: str,
        label: str,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        """Watch the process group led by ``pid`` (``kind``: server, target, stub, ...).

        On reaping the group gets ``stop_signal``, then SIGKILL after the grace
        period. ``label`` names it in logs and in ``resilience down``.
        """
        start_time = process_start_time(pid)
        if start_time is None:
            return  # already gone: nothing to reap, and its pid may be reused
        self._send(
            {
                "op": "register",
                "pid": pid,
                "start_time": start_time,
                "kind": kind,
                "label": label,
                "stop_signal": int(stop_signal),
            }
        )

    def unregister(self, pid: int) -> None:
        """Stop watching ``pid`` (its owner stopped it, or hands it over)."""
        self._send({"op": "unregister", "pid": pid})

    def remove_on_reap(self, path: Path) -> None:
        """Delete ``path`` (a directory tree) when reaping, after the processes are gone."""
        self._send({"op": "path", "path": str(path)})

    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self, timeout_s: float = 10.0) -> None:
        """Let the reaper reap what is left (normally nothing) and wait for it; idempotent."""
        with self._lock:
            pipe, self._pipe = self._pipe, None
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
        try:
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _send(self, message: dict[str, Any]) -> None:
        line = (json.dumps(message) + "\n").encode()
        with self._lock:
            if self._pipe is None:
                raise WatchdogError("the watchdog is closed")
            try:
                self._pipe.write(line)
                self._pipe.flush()
            except OSError as exc:  # BrokenPipeError: the reaper died
                raise WatchdogError(f"the reaper process (pid {self.pid}) has gone") from exc

    def __repr__(self) -> str:
        return f"Watchdog(pid={self.pid}, alive={self.alive()})"


_shared: Watchdog | None = None
_shared_pid: int | None = None
_shared_lock = threading.Lock()


def shared_watchdog() -> Watchdog:
    """The watchdog of this harness process, started on first use (again after a fork).

    For processes that belong to no environment. It lives as long as the
    process; register each process and unregister it once stopped.
    """
    global _shared, _shared_pid
    with _shared_lock:
        if _shared is None or _shared_pid != os.getpid() or not _shared.alive():
            _shared = Watchdog.start()
            _shared_pid = os.getpid()
        return _shared
