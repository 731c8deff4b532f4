"""The service under test as a child process: started, supervised, always stopped.

:class:`TargetProcess` starts the command (split like a shell would, not run
through one; the harness's own ``bin`` directory first on ``PATH``) in its
own process group with its output in a log file; on Linux the child also
gets a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so even
a SIGKILL of the harness takes it down, and with a ``watchdog``
(:func:`resilience.backends.watchdog.shared_watchdog`, the harness's reaper)
the group and anything tagged from it is reaped even when it left the group.
:meth:`stop` sends SIGTERM to the group, then SIGKILL after
``shutdown_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["TargetProcess", "TargetStartError", "log_tail"]

_STATES = {
    "T": "stopped (SIGSTOP or job control)",
    "t": "stopped by a debugger",
    "Z": "a zombie (exited, not yet reaped)",
    "D": "in an uninterruptible wait (disk or kernel)",
}

_PR_SET_PDEATHSIG = 1


HARNESS_CONTROL = "RESILIENCE_HARNESS_CONTROL"
"""Set to ``1`` in a started target's environment (the scenario's ``env`` can unset it)."""


class TargetStartError(RuntimeError):
    """The target could not be started (message says why, with the log tail)."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of ``path`` (empty when it has none)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16_384))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class TargetProcess:
    """One started command; :meth:`stop` is idempotent and always reaps the group."""

    def __init__(
        self,
        command: str,
        *,
        env: Mapping[str, str],
        cwd: str | None,
        log_path: Path,
        shutdown_timeout_s: float = 10.0,
        watchdog: Any = None,
    ) -> None:
        self.command = command
        self._watchdog = watchdog
        self.log_path = log_path
        self.shutdown_timeout_s = shutdown_timeout_s
        self.started_at = time.time()
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise TargetStartError(f"target.command cannot be split: {exc}") from None
        if not argv:
            raise TargetStartError("target.command is empty")
        if cwd is not None and not Path(cwd).is_dir():
            raise TargetStartError(f"target.cwd {cwd!r} is not a directory")
        # The harness's own environment first: `resilience`, `uvicorn` … of the same venv.
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        # RESILIENCE_HARNESS_CONTROL=1 tells a service it runs under the harness, so
        # it may offer control endpoints such as POST /harness/crash/{component}.
        child_env = {**os.environ, "PATH": path, HARNESS_CONTROL: "1", **env}
        if watchdog is not None:  # tags the child: the reaper finds it even outside its group
            child_env = watchdog.child_env(child_env)
        found = shutil.which(argv[0], path=child_env["PATH"])
        if found is None and os.sep not in argv[0]:
            raise TargetStartError(f"target.command: {argv[0]!r} not found (command: {command!r})")
        if found is not None:
            argv[0] = found
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115  # handed to the child, closed below
        try:
            # Started from the loop's thread on purpose: PR_SET_PDEATHSIG fires when the
            # *thread* that forked exits, so a worker thread would kill the target early.
            self.popen = subprocess.Popen(  # the user's own command
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=child_env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # only prctl, no locks
            )
        except FileNotFoundError:
            raise TargetStartError(
                f"target.command: {argv[0]!r} not found (command: {command!r})"
            ) from None
        except PermissionError:
            raise TargetStartError(f"target.command: {argv[0]!r} is not executable") from None
        finally:
            log.close()
        self.pid = self.popen.pid
        if watchdog is not None:
            with contextlib.suppress(Exception):
                watchdog.register(self.pid, kind="target", label=command[:80])

    def exit_code(self) -> int | None:
        """``None`` while it runs, else its exit code (negative: killed by that signal)."""
        return self.popen.poll()

    def state(self) -> str | None:
        """What the kernel says the process is doing when that explains a silence
        (``stopped (SIGSTOP or a debugger)``, ``a zombie``); ``None`` otherwise or off Linux."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        code = stat.rpartition(")")[2].split()[:1]
        return _STATES.get(code[0]) if code else None

    def describe_exit(self) -> str:
        code = self.popen.poll()
        after = time.time() - self.started_at
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        tail = log_tail(self.log_path)
        shown = f"; last lines of {self.log_path}:\n{tail}" if tail else f" (log: {self.log_path})"
        return f"the target exited ({how}) {after:.1f}s after it started{shown}"

    async def wait_exit(self, poll_s: float = 0.1) -> int:
        """Return the exit code once the process has exited."""
        while True:
            code = self.popen.poll()
            if code is not None:
                return code
            await asyncio.sleep(poll_s)

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after ``shutdown_timeout_s``; reaped."""
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_exit(0.05), self.shutdown_timeout_s)
        self._signal_group(signal.SIGKILL)  # whatever of the group is left
        if self.popen.poll() is None:
            await asyncio.to_thread(self.popen.wait, 5.0)
        self._unregister()

    def _unregister(self) -> None:
        if self._watchdog is not None:
            with contextlib.suppress(Exception):
                self._watchdog.unregister(self.pid)
            self._watchdog = None

    def kill_now(self) -> None:
        """Synchronous last resort (atexit, signal handlers): SIGKILL the group."""
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.popen.wait(2.0)
        self._unregister()
