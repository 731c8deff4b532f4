"""Fixtures of the backend tests (the environment fixtures come from the plugin)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    """A private state dir an unprivileged PostgreSQL can traverse (unlike tmp_path).

    Shared by the session, so the PostgreSQL template is built once.
    """
    path = Path(tempfile.mkdtemp(prefix="resilience-test-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
