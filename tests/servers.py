"""Whether this machine has PostgreSQL and Redis server binaries, for tests that start them."""

from __future__ import annotations

import pytest


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
