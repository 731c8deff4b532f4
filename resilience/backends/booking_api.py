"""The booking API stub of an environment: a child process behind proxy ``booking-api``.

Runs ``python -m resilience.upstream`` (the same code the Docker backend runs
in a container of the project image: see :func:`container_spec`) on a free 127.0.0.1 port,
with the parent-death signal and the environment's reaper like PostgreSQL
and Redis. Ready when ``/_stats`` answers.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from resilience.backends.process import ManagedProcess
from resilience.backends.readiness import free_port, http_json
from resilience.backends.watchdog import Watchdog

__all__ = ["BOOKING_PROXY", "ContainerSpec", "LocalBookingApi", "container_spec"]

BOOKING_PROXY = "booking-api"

CONTAINER_PYTHON = "/opt/resilience/bin/python"
"""The project's interpreter in the local fault-proxy image (backends/images.py)."""


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """How the Docker backend runs the stub: ``image``, ``entrypoint`` and ``command``."""

    image: str
    entrypoint: str
    command: list[str]


def container_spec(image: str, *, port: int, seed: int = 0) -> ContainerSpec:
    """The stub in a host-network container of the project's own image, on 127.0.0.1:``port``.

    The same code as the local process (``python -m resilience.upstream``):
    the image carries the package with its dependencies, so nothing is pulled.
    """
    command = ["-m", "resilience.upstream", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--seed", str(seed)]
    return ContainerSpec(image=image, entrypoint=CONTAINER_PYTHON, command=command)


class LocalBookingApi:
    """One booking API stub (seeded) on a free 127.0.0.1 port."""

    def __init__(self, *, directory: Path, seed: int = 0, port: int | None = None) -> None:
        self.directory = directory
        self.seed = seed
        self.port = port if port is not None else free_port()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, watchdog: Watchdog | None = None) -> ManagedProcess:
        """Start the stub (returns at once; see :meth:`probe`)."""
        self.directory.mkdir(mode=0o700, exist_ok=True)
        argv = [sys.executable, "-m", "resilience.upstream"]
        argv += ["--port", str(self.port), "--seed", str(self.seed)]
        self.process = ManagedProcess(
            "booking-api",
            argv,
            log_path=self.directory / "booking-api.log",
            cwd=self.directory,
            stop_signal=signal.SIGTERM,
            watchdog=watchdog,
        )
        return self.process

    def probe(self) -> bool:
        """True once ``/_stats`` answers."""
        http_json("GET", f"{self.url}/_stats", timeout_s=0.5)
        return True

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
