"""Process faults on the Docker backend's containers (``docker pause`` / ``kill`` / ...).

The same :class:`~resilience.backends.server_control.ServerControl` as the
local backend, on container handles (testcontainers' containers, whose
``get_wrapped_container()`` is the Docker SDK's). ``pause`` is ``docker
pause`` (the cgroup freezer: every process of the container stops), ``kill``
is ``docker kill`` (SIGKILL), ``stop`` a graceful ``docker stop``; ``start``
starts the same container again (same volume, so PostgreSQL recovers from
its WAL; the image's stop signal is SIGINT, a fast shutdown). Redis runs
without persistence, so a stop or kill leaves it cold; ``keep_data`` saves
the dataset first (``SAVE`` writes ``/data/dump.rdb``, loaded back at the
start) and the next cold one removes that file. The containers use host
networking, so a restarted server listens on the same port.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from resilience.backends.errors import BackendError

__all__ = ["DockerServerControl"]


class DockerServerControl:
    """Pause, resume, kill, stop and start the ``postgres`` and ``redis`` containers.

    ``containers`` maps the server name to its container handle; ``ready``
    maps it to a probe that is true once the restarted server answers;
    ``redis_port`` is where ``redis-cli`` inside the container finds Redis.
    """

    def __init__(
        self,
        containers: Mapping[str, Any],
        *,
        ready: Mapping[str, Callable[[], bool]] | None = None,
        redis_port: int = 6379,
        timeout_s: float = 60.0,
    ) -> None:
        self.containers = dict(containers)
        self.redis_cli = ["redis-cli", "-p", str(redis_port)]
        self.ready = dict(ready or {})
        self.timeout_s = timeout_s
        self.paused: set[str] = set()
        self.saved: set[str] = set()  # Redis containers with a dataset on disk (keep_data)

    def _sdk(self, name: str) -> Any:
        try:
            handle = self.containers[name]
        except KeyError:
            known = ", ".join(sorted(self.containers))
            raise BackendError(f"no container named {name!r} (known: {known})") from None
        return handle.get_wrapped_container()

    def _status(self, name: str) -> str:
        container = self._sdk(name)
        container.reload()
        return str(container.status)

    def pause(self, name: str) -> None:
        self._sdk(name).pause()
        self.paused.add(name)

    def resume(self, name: str) -> None:
        if self._status(name) == "paused":
            self._sdk(name).unpause()
        self.paused.discard(name)

    def resume_all(self) -> None:
        for name in self.containers:
            with contextlib.suppress(Exception):
                self.resume(name)

    def _before_down(self, name: str, keep_data: bool) -> None:
        """Redis: ``SAVE`` for ``keep_data``; else drop a dataset an earlier one saved."""
        if name != "redis":
            return
        if keep_data:
            self._sdk(name).exec_run([*self.redis_cli, "SAVE"])
            self.saved.add(name)
        elif name in self.saved:  # without it nothing is on disk (no persistence)
            self._sdk(name).exec_run(["rm", "-f", "/data/dump.rdb"])
            self.saved.discard(name)

    def kill(self, name: str, *, keep_data: bool = False) -> None:
        self.resume(name)
        self._before_down(name, keep_data)
        self._sdk(name).kill()
        self._wait_for("exited", name)

    def stop(self, name: str, *, keep_data: bool = False) -> None:
        self.resume(name)
        self._before_down(name, keep_data)
        self._sdk(name).stop(timeout=30)  # the image's stop signal (PostgreSQL: SIGINT)

    def _wait_for(self, status: str, name: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while self._status(name) != status and time.monotonic() < deadline:
            time.sleep(0.02)

    def start(self, name: str) -> None:
        if self._status(name) == "running":
            return
        self._sdk(name).start()
        probe = self.ready.get(name)
        deadline = time.monotonic() + self.timeout_s
        while probe is not None and not _answers(probe):
            if time.monotonic() > deadline:
                raise BackendError(f"{name} did not answer within {self.timeout_s:g} s of a start")
            if self._status(name) in ("exited", "dead"):
                logs = self._sdk(name).logs(tail=5).decode(errors="replace").strip()
                raise BackendError(f"{name} exited after a start: {logs[-500:]}")
            time.sleep(0.02)


def _answers(probe: Callable[[], bool]) -> bool:
    """The probe's verdict; one that raises (connection refused while starting) is a no."""
    try:
        return probe()
    except Exception:
        return False
