"""The state directory: one marker per running environment, and the reaper.

Every local environment lives in ``<state_dir>/envs/<id>/`` (data dirs, logs)
next to a ``marker.json`` naming its owner process and its server processes.
A clean stop removes the whole directory. A harness killed with SIGKILL
cannot: its environment's reaper process (:mod:`resilience.backends.watchdog`)
does, within seconds. Should that have gone too, each start and
``resilience down`` *reap*: for every marker whose owner is gone they stop the
recorded process groups and the processes carrying the environment's reaper
tag (checking start times, so a reused pid is never hit) and delete the
directory - what testcontainers' Ryuk does for containers.

The default state dir is ``$RESILIENCE_STATE_DIR``, else ``resilience-<uid>``
under ``/dev/shm`` (a RAM disk, when roomy) or the temp dir. It is made
traversable (0711) so that a PostgreSQL run as an unprivileged user can reach
its own data dir below it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from resilience.backends.reaper import Registered, process_start_time, reap

__all__ = [
    "EnvironmentMarker",
    "ProcessRecord",
    "StateDir",
    "default_state_dir",
    "fast_temp_root",
]

MARKER_NAME = "marker.json"


_SHM = Path("/dev/shm")
_SHM_MIN_FREE_BYTES = 1 << 30


def fast_temp_root() -> Path:
    """Where throwaway data lives: ``/dev/shm`` when it is a roomy RAM disk, else temp.

    A RAM disk keeps PostgreSQL's data-dir copy off a busy disk (0.05 s instead
    of up to seconds under I/O load).
    """
    try:
        fs = os.statvfs(_SHM)
        usable = os.access(_SHM, os.W_OK | os.X_OK)
    except OSError:
        usable = False
    else:
        usable = usable and fs.f_bavail * fs.f_frsize >= _SHM_MIN_FREE_BYTES
    return _SHM if usable else Path(tempfile.gettempdir())


def default_state_dir() -> Path:
    """``$RESILIENCE_STATE_DIR``, else ``resilience-<uid>`` under :func:`fast_temp_root`."""
    configured = os.environ.get("RESILIENCE_STATE_DIR")
    if configured:
        return Path(configured)
    return fast_temp_root() / f"resilience-{os.getuid()}"


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """A server process as the reaper needs it: pid, its start time, name, stop signal."""

    name: str
    pid: int
    start_time: int | None
    stop_signal: int = signal.SIGTERM


@dataclass(slots=True)
class EnvironmentMarker:
    """What a running environment owns; persisted as JSON beside its files."""

    directory: Path
    owner_pid: int = field(default_factory=os.getpid)
    owner_start_time: int | None = field(default_factory=lambda: process_start_time(os.getpid()))
    processes: list[ProcessRecord] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def add_process(self, record: ProcessRecord) -> None:
        self.processes.append(record)
        self.save()

    def save(self) -> None:
        data = asdict(self)
        data["directory"] = str(self.directory)
        tmp = self.directory / (MARKER_NAME + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.directory / MARKER_NAME)

    @classmethod
    def load(cls, directory: Path) -> EnvironmentMarker:
        data = json.loads((directory / MARKER_NAME).read_text())
        return cls(
            directory=directory,
            owner_pid=int(data["owner_pid"]),
            owner_start_time=data.get("owner_start_time"),
            processes=[ProcessRecord(**p) for p in data.get("processes", [])],
            info=dict(data.get("info", {})),
        )

    def owner_alive(self) -> bool:
        start = process_start_time(self.owner_pid)
        return start is not None and (
            self.owner_start_time is None or start == self.owner_start_time
        )


class StateDir:
    """The root under which environments keep their files, markers and caches."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_state_dir()
        self.envs = self.root / "envs"
        self.cache = self.root / "cache"
        for path in (self.root, self.envs, self.cache):
            path.mkdir(mode=0o711, exist_ok=True, parents=True)
            if path.is_symlink() or path.stat().st_uid != os.getuid():
                raise PermissionError(f"state dir {path} is not owned by this user")
            path.chmod(0o711)

    def new_environment(self) -> EnvironmentMarker:
        """Create a fresh environment directory and its marker."""
        directory = self.envs / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        directory.mkdir(mode=0o711)
        directory.chmod(0o711)
        marker = EnvironmentMarker(directory=directory)
        marker.save()
        return marker

    def markers(self) -> list[EnvironmentMarker]:
        """The environments recorded here, oldest first (unreadable markers left out)."""
        found = []
        for directory in sorted(self.envs.iterdir()):
            try:
                found.append(EnvironmentMarker.load(directory))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found

    def reap(self) -> list[Path]:
        """Clean up after every environment whose owner died; returns their directories."""
        reaped: list[Path] = []
        for directory in sorted(self.envs.iterdir()):
            if not (directory / MARKER_NAME).exists():
                # A directory without marker: half-created, or half-removed.
                try:
                    stale = time.time() - directory.stat().st_mtime > 60
                except OSError:
                    continue
                if stale:
                    shutil.rmtree(directory, ignore_errors=True)
                    reaped.append(directory)
                continue
            try:
                marker = EnvironmentMarker.load(directory)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if marker.owner_alive():
                continue
            remove_environment(marker)
            reaped.append(directory)
        return reaped


def remove_environment(marker: EnvironmentMarker, *, grace_s: float = 2.0) -> list[int]:
    """Stop an environment's recorded servers and tagged processes, delete its directory.

    Each server group gets its stop signal, SIGKILL after
    ``grace_s``. Returns the pids signalled.
    """
    registered = [
        Registered(
            pid=record.pid,
            start_time=record.start_time,
            kind="server",
            label=record.name,
            stop_signal=record.stop_signal,
        )
        for record in marker.processes
    ]
    tag = marker.info.get("reaper_tag")
    return reap(
        registered,
        tag=str(tag) if tag else None,
        paths=[marker.directory],
        grace_s=grace_s,
    )
