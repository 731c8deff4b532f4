"""A reaper for the docker backend's containers, in the spirit of testcontainers' Ryuk.

Ryuk is an image pulled from a registry; an air-gapped engine cannot have it.
This is the same guarantee without an image: the harness spawns
``python -m resilience.backends.docker_reaper LABEL=VALUE`` with a pipe on its
stdin and keeps the write end. When the pipe reaches EOF (the harness exited,
however: SIGKILL included) the reaper removes every container carrying the
label, waits a moment for a creation that was in flight, removes again, and
exits. A normal stop removes the containers first and writes ``done`` before
closing the pipe, so the reaper only checks once and exits at once.

:func:`reap_orphans` is the second line: containers whose owner process
(label ``resilience.owner-pid``) is gone are removed by the next start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import IO, Any

__all__ = ["ENVIRONMENT_LABEL", "OWNER_LABEL", "ContainerReaper", "reap_orphans", "remove_labelled"]

ENVIRONMENT_LABEL = "resilience.environment"
OWNER_LABEL = "resilience.owner-pid"
BOOT_LABEL = "resilience.owner-start"
_GRACE_S = 1.0
DONE = b"done\n"


def remove_labelled(client: Any, label: str) -> int:
    """Force-remove the containers with ``label`` (``key=value``); returns how many."""
    removed = 0
    for container in client.containers.list(all=True, filters={"label": label}):
        try:
            container.remove(force=True, v=True)
            removed += 1
        except Exception:  # already gone
            pass
    return removed


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            raw = stat.read()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()[19]


def owner_labels() -> dict[str, str]:
    """Labels naming this process as the owner (pid and start time, so a reused pid is not)."""
    pid = os.getpid()
    return {OWNER_LABEL: str(pid), BOOT_LABEL: _start_time(pid) or ""}


def reap_orphans(client: Any) -> int:
    """Remove containers whose owning harness process is gone; returns how many."""
    removed = 0
    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
        labels = container.labels or {}
        try:
            pid = int(labels.get(OWNER_LABEL, ""))
        except ValueError:
            continue
        if _start_time(pid) not in (None, "") and _start_time(pid) == labels.get(BOOT_LABEL):
            continue
        try:
            container.remove(force=True, v=True)
            removed += 1
        except Exception:
            pass
    return removed


class ContainerReaper:
    """The harness's side: spawns the reaper process and holds its pipe open."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # Its own session: a Ctrl-C in the terminal reaches the harness, whose teardown
        # removes the containers, and not the reaper.
        self._process = subprocess.Popen(
            [sys.executable, "-m", "resilience.backends.docker_reaper", self.label],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def stop(self) -> None:
        """Close the pipe; the reaper removes what is left with the label and exits."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            try:
                process.stdin.write(DONE)
                process.stdin.close()
            except OSError:  # the reaper died: nothing to tell it
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _serve(label: str, stdin: IO[bytes]) -> int:
    import docker

    client = docker.from_env()
    received = b""
    while chunk := stdin.read(4096):  # blocks until the harness closes the pipe or dies
        received = (received + chunk)[-len(DONE) :]
    remove_labelled(client, label)
    if received != DONE:  # the harness died: a creation may have been in flight
        time.sleep(_GRACE_S)
        remove_labelled(client, label)
    return 0


if __name__ == "__main__":  # pragma: no cover - runs as the reaper process
    sys.exit(_serve(sys.argv[1], sys.stdin.buffer))
