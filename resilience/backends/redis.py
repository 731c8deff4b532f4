"""A throwaway Redis (or Valkey) server: no persistence, 127.0.0.1 only."""

from __future__ import annotations

import signal
from pathlib import Path

from resilience.backends.process import ManagedProcess
from resilience.backends.readiness import free_port, redis_ping
from resilience.backends.watchdog import Watchdog

__all__ = ["LocalRedis"]


class LocalRedis:
    """One throwaway Redis-compatible server with its working dir ``directory``."""

    def __init__(self, server: Path, *, directory: Path, port: int | None = None) -> None:
        self.server = server
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def spawn(self, watchdog: Watchdog | None = None) -> ManagedProcess:
        """Start the server (returns at once; see :meth:`probe`)."""
        self.directory.mkdir(mode=0o700, exist_ok=True)
        argv = [
            str(self.server),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        self.process = ManagedProcess(
            "redis",
            argv,
            log_path=self.directory / "redis.log",
            cwd=self.directory,
            stop_signal=signal.SIGTERM,
            watchdog=watchdog,
        )
        return self.process

    def probe(self) -> bool:
        """True once the server answers PING."""
        return redis_ping("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
