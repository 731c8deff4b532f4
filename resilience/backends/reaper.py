"""The reaper process: kills what a dead harness left behind (testcontainers' Ryuk, for processes).

A harness starts one reaper per environment (see
:class:`resilience.backends.watchdog.Watchdog`, the typed client) in a session
of its own, so neither Ctrl-C at the terminal nor a kill of the harness's
process group reaches it. The harness holds the write end of a pipe that is
the reaper's stdin and writes one JSON object per line on it::

    {"op": "register", "pid": 1234, "start_time": 987, "kind": "server",
     "label": "postgres", "stop_signal": 3}
    {"op": "unregister", "pid": 1234}
    {"op": "path", "path": "/dev/shm/resilience-0/envs/2026..."}

When the pipe reaches end-of-file - the harness closed it, or the kernel did
because the harness died, SIGKILL included - or the owner's pid is gone
(checked twice a second, for a pipe end a forked child kept open), the reaper:

1. sends each registered process group its stop signal, and SIGTERM to every
   descendant of the groups' leaders and to every process whose environment
   carries this reaper's tag (``RESILIENCE_REAPER_TAG``, set by
   :meth:`Watchdog.child_env`): that reaches grandchildren that left the group
   (PostgreSQL's backends call ``setsid()``; a server daemonised through a
   wrapper) and processes run as another user, which a parent-death signal
   cannot. (A process that rewrites its own environment - PostgreSQL's does,
   for its process titles - is found by the first two ways only);
2. after ``--grace`` seconds sends SIGKILL to whatever of them is still alive;
3. removes the registered paths (data dirs, logs) and exits.

A pid is only ever signalled while it is still the process found (same kernel
start time), so a reused pid is never hit. SIGTERM to
the reaper itself means "reap now".

This file imports only the standard library and runs as a script
(``python reaper.py --owner PID``), so it starts in a few milliseconds and
never depends on the package's import state.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "TAG_VARIABLE",
    "descendants",
    "live_group_members",
    "process_start_time",
    "reap",
    "tagged_processes",
]

TAG_VARIABLE = "RESILIENCE_REAPER_TAG"
"""Environment variable every watched child carries; its value is the reaper's tag."""

_OWNER_POLL_S = 0.5


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` in clock ticks (``None`` if gone or a zombie).

    Together with the pid it identifies a process across pid reuse.
    """
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    # Field 22 of stat(5) is starttime; fields here start at field 3 (state).
    return int(fields[19])


def live_group_members(pgid: int) -> list[int]:
    """Pids of the non-zombie processes in process group ``pgid``.

    Zombies are left out: where pid 1 does not reap orphans they linger in the
    group, but they hold no port, file or memory.
    """
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        # fields[0] is the state, fields[2] the process group (stat(5) fields 3 and 5).
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def tagged_processes(tag: str) -> list[int]:
    """Pids of the live processes whose environment holds ``RESILIENCE_REAPER_TAG=<tag>``.

    Only processes whose environment this user may read are seen (all of them
    for root, this user's own otherwise).
    """
    needle = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            fields = _stat_fields(entry)
            if fields is not None and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


@dataclass(frozen=True, slots=True)
class Registered:
    """A process group the reaper stops: its leader's pid (= pgid) and how."""

    pid: int
    start_time: int | None
    kind: str
    label: str
    stop_signal: int = signal.SIGTERM

    def still_ours(self) -> bool:
        """True while the leader is the same process, or its group has live members."""
        start = process_start_time(self.pid)
        if start is not None and (self.start_time is None or start == self.start_time):
            return True
        # A dead leader's orphaned children (PostgreSQL backends) keep its pgid.
        return bool(live_group_members(self.pid))


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _signal_pid(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def descendants(roots: list[int]) -> list[tuple[int, int]]:
    """``(pid, start time)`` of every live descendant of ``roots``: children, theirs, ...

    This finds what left the roots' process group while its parent lives
    (PostgreSQL's backends call ``setsid()``).
    """
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        # fields[1] is the parent pid, fields[19] the start time (stat(5) fields 4 and 22).
        if fields is not None and fields[0] not in ("Z", "X"):
            children.setdefault(int(fields[1]), []).append((int(entry), int(fields[19])))
    found: list[tuple[int, int]] = []
    queue = list(roots)
    seen = set(queue)
    while queue:
        for pid, start in children.get(queue.pop(), []):
            if pid not in seen:
                seen.add(pid)
                found.append((pid, start))
                queue.append(pid)
    return found


def _with_start_times(pids: list[int]) -> list[tuple[int, int]]:
    return [(pid, start) for pid in pids if (start := process_start_time(pid)) is not None]


def reap(
    registered: list[Registered],
    *,
    tag: str | None = None,
    paths: list[Path] | None = None,
    grace_s: float = 2.0,
) -> list[int]:
    """Stop every registered group, its leaders' descendants and tagged processes; remove paths.

    Groups get their stop signal, the other processes SIGTERM; whatever is
    left after ``grace_s`` seconds gets SIGKILL. Returns the pids signalled
    (group leaders, then the other processes).
    """
    groups = [r for r in registered if r.still_ours()]
    # Found before any signal, while the parents still live to name them.
    singles = dict(descendants([r.pid for r in groups]))
    singles.update(_with_start_times(tagged_processes(tag)) if tag else [])

    def same(pid: int, start: int) -> bool:
        return process_start_time(pid) == start

    for r in groups:
        _signal_group(r.pid, r.stop_signal)
    for pid, start in singles.items():
        if same(pid, start):
            _signal_pid(pid, signal.SIGTERM)

    def alive() -> bool:
        return any(live_group_members(r.pid) for r in groups) or any(
            same(pid, start) for pid, start in singles.items()
        )

    deadline = time.monotonic() + grace_s
    while alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if tag:  # anything tagged that was started meanwhile
        singles.update(_with_start_times(tagged_processes(tag)))
    for r in groups:
        _signal_group(r.pid, signal.SIGKILL)
    for pid, start in singles.items():
        if same(pid, start):
            _signal_pid(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    while alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    for path in paths or []:
        shutil.rmtree(path, ignore_errors=True)
    leaders = [r.pid for r in groups]
    return leaders + [pid for pid in singles if pid not in leaders]


def _owner_alive(pid: int, start_time: int | None) -> bool:
    start = process_start_time(pid)
    return start is not None and (start_time is None or start == start_time)


def _serve(args: argparse.Namespace) -> int:
    registered: dict[int, Registered] = {}
    paths: list[Path] = []
    reap_now = False

    def on_sigterm(signum: int, frame: object) -> None:
        nonlocal reap_now
        reap_now = True

    signal.signal(signal.SIGTERM, on_sigterm)
    for ignored in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(ignored, signal.SIG_IGN)
    os.set_blocking(0, False)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    buffer = b""
    while not reap_now:
        if not selector.select(timeout=_OWNER_POLL_S):
            if not _owner_alive(args.owner, args.owner_start_time):
                break
            continue
        try:
            chunk = os.read(0, 65536)
        except BlockingIOError:
            continue
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if not chunk:
            break  # end-of-file: the harness closed the pipe or died
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            _apply(line, registered, paths)
    reap(list(registered.values()), tag=args.tag, paths=paths, grace_s=args.grace)
    return 0


def _apply(line: bytes, registered: dict[int, Registered], paths: list[Path]) -> None:
    try:
        message = json.loads(line)
        op = message["op"]
        if op == "register":
            pid = int(message["pid"])
            registered[pid] = Registered(
                pid=pid,
                start_time=message.get("start_time"),
                kind=str(message.get("kind", "process")),
                label=str(message.get("label", "")),
                stop_signal=int(message.get("stop_signal", signal.SIGTERM)),
            )
        elif op == "unregister":
            registered.pop(int(message["pid"]), None)
        elif op == "path":
            paths.append(Path(message["path"]))
    except (ValueError, KeyError, TypeError):
        sys.stderr.write(f"reaper: ignored malformed message {line!r}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--owner", type=int, required=True, help="pid of the harness")
    parser.add_argument("--owner-start-time", type=int, default=None)
    parser.add_argument("--tag", default=None, help="value of RESILIENCE_REAPER_TAG to reap")
    parser.add_argument("--grace", type=float, default=2.0, help="seconds before SIGKILL")
    return _serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
