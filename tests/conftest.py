"""Fixtures for every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import private_state_dir


@pytest.fixture
def state_dir_private() -> Iterator[Path]:
    """A state dir of this test alone (``resilience down`` there sees only its environments)."""
    with private_state_dir() as path:
        yield path
