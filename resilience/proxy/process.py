"""Run the proxy server as a child process (tests, backends, benchmarks).

``with ProxyServerProcess() as server:`` starts ``python -m resilience.proxy
-host 127.0.0.1 -port <free port>``, waits until ``GET /version`` answers,
exposes ``server.api_url`` and stops the child on exit (SIGTERM, then SIGKILL
after ``stop_timeout_s``). If it does not come up within ``startup_timeout_s``
the error carries the tail of its log.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["ProxyServerError", "ProxyServerProcess", "free_port"]


class ProxyServerError(RuntimeError):
    """The proxy server process failed to start (the message has its log tail)."""


class _PortTaken(ProxyServerError):
    """Another process took the free port we picked before the child bound it."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on host a moment ago.

    (:func:`resilience.backends.readiness.free_port` again: the proxy imports
    nothing else of the package.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ProxyServerProcess:
    """A ``python -m resilience.proxy`` child process on a free loopback port."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        seed: int | None = None,
        config: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
        startup_timeout_s: float = 15.0,
        stop_timeout_s: float = 5.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(host)
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.python = python
        self.options = ["--parent-pid", str(os.getpid())]  # no orphan if we crash
        if seed is not None:
            self.options += ["-seed", str(seed)]
        if config is not None:
            self.options += ["-config", os.fspath(config)]
        self.options += list(extra_args)
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return Path(self._log_file.name) if self._log_file is not None else None

    def log_tail(self, max_bytes: int = 4000) -> str:
        if self._log_file is None:
            return ""
        try:
            data = Path(self._log_file.name).read_bytes()
        except OSError:
            return ""
        return data[-max_bytes:].decode(errors="replace")

    @property
    def args(self) -> list[str]:
        """The child's command line."""
        head = [self.python, "-m", "resilience.proxy", "-host", self.host, "-port", str(self.port)]
        return head + self.options

    def start(self) -> ProxyServerProcess:
        """Start the child and wait for its API; a lost port race is retried twice."""
        for _attempt in range(2):
            try:
                return self._start_once()
            except _PortTaken:
                self.port = free_port(self.host)
        return self._start_once()

    def _start_once(self) -> ProxyServerProcess:
        self._log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop)
            prefix="resilience-proxy-", suffix=".log", delete=False
        )
        env = dict(os.environ if self.env is None else self.env)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        self.process = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                if not self._fixed_port and "address already in use" in tail:
                    raise _PortTaken(tail)
                raise ProxyServerError(
                    f"proxy server exited with {self.process.returncode}; log tail:\n{tail}"
                )
            if self._answers():
                return self
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise ProxyServerError(
                    f"proxy server at {self.api_url} did not answer GET /version within "
                    f"{self.startup_timeout_s:.0f} s; log tail:\n{tail}"
                )
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.api_url + "/version", timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            with contextlib.suppress(OSError):
                os.unlink(self._log_file.name)
            self._log_file = None

    def __enter__(self) -> ProxyServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
