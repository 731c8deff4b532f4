"""A throwaway PostgreSQL server: data dir from a cached template, tuned for speed.

``initdb`` dominates a cold start (about 1 s here), so the first start builds
a *template* data dir under the state dir's cache and every later start
copies it (``cp -a``). Durability is switched off (``fsync``,
``synchronous_commit``, ``full_page_writes``): the data dir is deleted at the
end anyway. The server listens on 127.0.0.1 only, without a Unix socket, and
uses SCRAM password authentication for the role ``resilience``.

PostgreSQL refuses to run as root; a root caller runs it as the unprivileged
account ``resilience`` (created with ``useradd`` when missing).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from resilience.backends.binaries import PostgresBinaries
from resilience.backends.errors import ConfigurationError, StartupFailed
from resilience.backends.process import ManagedProcess, RunAs, log_tail
from resilience.backends.readiness import free_port
from resilience.backends.watchdog import Watchdog

__all__ = [
    "FAST_SETTINGS",
    "THROWAWAY_SETTINGS",
    "LocalPostgres",
    "postgres_answers",
    "remove_orphan_shared_memory",
    "unprivileged_account",
]

THROWAWAY_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # Checkpoints every 64 MB of WAL (cheap with fsync off), so crash recovery after a
    # `kill` fault replays at most that much: ~0.3 s, not seconds after a suite's writes.
    "max_wal_size": "64MB",
    "min_wal_size": "32MB",
}
"""Durability off and crash recovery bounded: the local and docker backends' servers."""

FAST_SETTINGS: dict[str, str] = {
    **THROWAWAY_SETTINGS,
    "unix_socket_directories": "",
    # Dynamic shared memory as files in the data dir, so they go with it.
    "dynamic_shared_memory_type": "mmap",
    "max_connections": "200",
    "log_min_messages": "warning",
}
"""Server settings of every throwaway PostgreSQL (on top of listen address and port)."""

PG_USER = "resilience"
PG_DATABASE = "resilience"


def unprivileged_account(name: str = "resilience") -> RunAs | None:
    """The account PostgreSQL should run as: ``None`` unless we are root.

    As root, returns ``name`` (creating it as a system user without home and
    login shell when missing; ``nobody`` if that fails). The creation holds a
    lock: environments started at once on a fresh machine (``tune
    --confirm-jobs``, ``pytest -n``) would otherwise run two ``useradd`` at a
    time, and one of them could hand initdb a uid that is not there yet.
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        with _account_lock():
            entry = _create_account(name)
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid, name=entry.pw_name)


@contextlib.contextmanager
def _account_lock() -> Iterator[None]:
    """An exclusive lock between processes (root's own file, never followed as a link)."""
    directory = Path("/run/lock") if Path("/run/lock").is_dir() else Path(tempfile.gettempdir())
    fd = os.open(
        directory / "resilience-account.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _create_account(name: str) -> pwd.struct_passwd:
    """``name``'s entry, created first if another process did not create it meanwhile."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    subprocess.run(
        [
            useradd,
            "--system",
            "--no-create-home",
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        check=False,
        capture_output=True,
    )
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return pwd.getpwnam("nobody")


def remove_orphan_shared_memory(run_as: RunAs) -> int:
    """Remove SysV segments of ``run_as`` that nobody attaches and whose creator is gone.

    PostgreSQL's small interlock segment outlives a server killed with SIGKILL.
    Only segments of our own throwaway account are touched. Returns how many.
    """
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return 0
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return 0
    shmctl = ctypes.CDLL(libc_name, use_errno=True).shmctl
    removed = 0
    for row in rows:
        fields = row.split()
        shmid, cpid, nattch, uid = int(fields[1]), int(fields[4]), int(fields[6]), int(fields[7])
        if uid == run_as.uid and nattch == 0 and not Path(f"/proc/{cpid}").exists():
            removed += shmctl(shmid, 0, None) == 0  # 0 is IPC_RMID
    return removed


def check_reachable(path: Path, run_as: RunAs, *, advice: str) -> None:
    """Raise :class:`ConfigurationError` unless ``run_as`` may traverse every ancestor of path."""
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == run_as.uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == run_as.gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise ConfigurationError(
                f"PostgreSQL runs as the unprivileged user {run_as.name!r} (it refuses root), "
                f"which cannot enter {directory}; {advice}"
            )


def _chown(path: Path, run_as: RunAs | None) -> None:
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)


def _run(argv: list[str], *, run_as: RunAs | None, log_path: Path, stdin: str = "") -> None:
    with log_path.open("ab") as log:
        result = subprocess.run(
            argv,
            input=stdin.encode(),
            stdout=log,
            stderr=subprocess.STDOUT,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
            check=False,
        )
    if result.returncode != 0:
        raise StartupFailed(
            f"{Path(argv[0]).name} failed with exit code {result.returncode}",
            log_tail=log_tail(log_path),
        )


def build_data_dir(
    binaries: PostgresBinaries, target: Path, *, password: str, run_as: RunAs | None
) -> None:
    """initdb into ``target`` (which must not exist) and create the ``resilience`` database."""
    work = target.parent
    log_path = work / "initdb.log"
    pwfile = work / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    _chown(pwfile, run_as)
    target.mkdir(mode=0o700)
    _chown(target, run_as)
    try:
        _run(
            [
                str(binaries.initdb),
                "-D",
                str(target),
                "--no-sync",
                "-U",
                PG_USER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--wal-segsize=1",
            ],
            run_as=run_as,
            log_path=log_path,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    # Single-user mode creates our database without starting a server; dropping
    # the unused "postgres" database makes the template smaller to copy.
    for database, statement in (
        ("postgres", f"CREATE DATABASE {PG_DATABASE};\n"),
        (PG_DATABASE, "DROP DATABASE postgres;\n"),
    ):
        _run(
            [
                str(binaries.postgres),
                "--single",
                "-D",
                str(target),
                "-F",
                "-c",
                "exit_on_error=true",
                database,
            ],
            run_as=run_as,
            log_path=log_path,
            stdin=statement,
        )


def _template_key(binaries: PostgresBinaries, run_as: RunAs | None) -> str:
    st = binaries.postgres.stat()
    raw = f"{binaries.postgres}|{st.st_size}|{st.st_mtime_ns}|{run_as}|v2"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def ensure_template(
    binaries: PostgresBinaries, cache_dir: Path, *, run_as: RunAs | None
) -> tuple[Path, str]:
    """The cached template data dir for these binaries and its role password."""
    final = cache_dir / f"pg-{_template_key(binaries, run_as)}"
    meta = final / "meta.json"
    if meta.exists():
        return final / "data", str(json.loads(meta.read_text())["password"])
    building = cache_dir / f"{final.name}.building-{os.getpid()}-{secrets.token_hex(4)}"
    building.mkdir(mode=0o711)
    try:
        password = secrets.token_urlsafe(18)
        build_data_dir(binaries, building / "data", password=password, run_as=run_as)
        (building / "meta.json").write_text(
            json.dumps({"password": password, "postgres": str(binaries.postgres)})
        )
        (building / "meta.json").chmod(0o600)
        try:
            building.rename(final)
        except OSError:
            # Another process built the same template first: use theirs.
            shutil.rmtree(building, ignore_errors=True)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return final / "data", str(json.loads(meta.read_text())["password"])


def postgres_answers(dsn: str, *, timeout_s: float = 2.0) -> bool:
    """True when the server at ``dsn`` answers ``SELECT 1`` (raises while it cannot)."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=max(1, round(timeout_s))) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


class LocalPostgres:
    """One throwaway PostgreSQL in ``directory`` (created by :meth:`prepare`)."""

    def __init__(
        self,
        binaries: PostgresBinaries,
        *,
        directory: Path,
        run_as: RunAs | None,
        template_cache: Path | None,
        port: int | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.binaries = binaries
        self.directory = directory
        self.data_dir = directory / "data"
        self.run_as = run_as
        self.template_cache = template_cache
        self.port = port if port is not None else free_port()
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.password = ""
        self.process: ManagedProcess | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def prepare(self) -> None:
        """Create the data dir: copy the cached template, or run initdb without a cache."""
        self.directory.mkdir(mode=0o711, exist_ok=True)
        if self.run_as is not None:
            check_reachable(
                self.directory,
                self.run_as,
                advice="choose a state_dir it can reach (the default is)",
            )
            check_reachable(
                self.binaries.bin_dir,
                self.run_as,
                advice="install PostgreSQL system-wide (`apt-get install postgresql`) or point "
                "RESILIENCE_PG_BIN at binaries outside private directories",
            )
        if self.template_cache is None:
            self.password = secrets.token_urlsafe(18)
            build_data_dir(self.binaries, self.data_dir, password=self.password, run_as=self.run_as)
            return
        template, self.password = ensure_template(
            self.binaries, self.template_cache, run_as=self.run_as
        )
        # cp -a keeps owner and modes (PostgreSQL insists on a 0700 data dir).
        subprocess.run(["cp", "-a", str(template), str(self.data_dir)], check=True)

    def spawn(self, watchdog: Watchdog | None = None) -> ManagedProcess:
        """Start the server process (returns at once; see :meth:`probe`)."""
        argv = [
            str(self.binaries.postgres),
            "-D",
            str(self.data_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
        ]
        for key, value in self.settings.items():
            argv += ["-c", f"{key}={value}"]
        log_path = self.directory / "postgres.log"
        log_path.touch()
        _chown(log_path, self.run_as)
        self.process = ManagedProcess(
            "postgres",
            argv,
            log_path=log_path,
            run_as=self.run_as,
            cwd=self.directory,
            # SIGQUIT is PostgreSQL's immediate shutdown: right for a throwaway server.
            stop_signal=signal.SIGQUIT,
            watchdog=watchdog,
        )
        return self.process

    def probe(self) -> bool:
        """True once the server answers a query."""
        return postgres_answers(self.dsn)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
