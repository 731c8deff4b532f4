"""Fixtures of the backend tests (the environment fixtures come from the plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import private_state_dir


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    """A private state dir an unprivileged PostgreSQL can traverse (unlike tmp_path).

    Shared by the session, so the PostgreSQL template is built once.
    """
    with private_state_dir() as path:
        yield path
