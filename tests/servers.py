"""For tests that start PostgreSQL and Redis: whether this machine has their binaries,
and a state dir such servers can use."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilience.backends.state import fast_temp_root


def have_servers() -> bool:
    try:
        from resilience.backends.binaries import find_postgres, find_redis_server

        find_postgres()
        find_redis_server()
    except Exception:
        return False
    return True


requires_servers = pytest.mark.skipif(
    not have_servers(), reason="needs PostgreSQL and Redis binaries"
)


@contextlib.contextmanager
def private_state_dir() -> Iterator[Path]:
    """A fresh state dir an unprivileged PostgreSQL can traverse (unlike tmp_path, 0700),
    removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="resilience-test-", dir=fast_temp_root()))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
