"""Fixtures of the service tests: a seeded catalogue on the session environment."""

from __future__ import annotations

import uuid
from typing import Any

import pytest


@pytest.fixture
def urls(resilience_env: Any, resilience_clean: None) -> Any:
    """The environment's URLs with the seed catalogue loaded (cleaned after the test)."""
    from resilience.db.catalogue import seed_catalogue

    seed_catalogue(resilience_env.urls.postgres_direct, size=50)
    return resilience_env.urls


@pytest.fixture
def known(urls: Any) -> dict[str, uuid.UUID]:
    """slug → UUID of the seeded catalogue."""
    from resilience.db.catalogue import catalogue

    return {e.slug: e.uuid for e in catalogue(size=50)}
