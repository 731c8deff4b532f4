"""Fixtures of the backend tests (the environment fixtures come from the plugin)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilience.backends.state import fast_temp_root


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    """A private state dir an unprivileged PostgreSQL can traverse (unlike tmp_path).

    Shared by the session, so the PostgreSQL template is built once.
    """
    path = Path(tempfile.mkdtemp(prefix="resilience-test-", dir=fast_temp_root()))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def state_dir_private() -> Iterator[Path]:
    """A state dir of this test alone (``resilience down`` there sees only its environments)."""
    path = Path(tempfile.mkdtemp(prefix="resilience-test-", dir=fast_temp_root()))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
