"""The ``loadtests`` package importable however pytest is started; the real-run fixtures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


SEED, SIZE = 42, 300
"""The catalogue every real load run of these tests is seeded with (the profiles' too)."""


@pytest.fixture(scope="module")
def environment() -> Iterator[Any]:
    """A local environment (PostgreSQL, Redis, proxies), schema and catalogue; one per module."""
    from resilience.backends.environment import Environment
    from resilience.db.catalogue import seed_catalogue
    from resilience.db.schema import apply_schema

    with Environment("local") as env:
        apply_schema(env.urls.postgres_direct)
        seed_catalogue(env.urls.postgres_direct, seed=SEED, size=SIZE)
        yield env


@pytest.fixture
def service(environment: Any) -> Iterator[str]:
    """A fresh ``resilience serve`` (1 worker; breaker reset after 1 s so one test's faults
    stay its own) on a free loopback port; yields its base URL."""
    from resilience.backends.readiness import free_port
    from resilience.loadrun import running, serve_command, wait_until_up

    port = free_port()
    command = serve_command(
        host="127.0.0.1",
        port=port,
        workers=1,
        postgres_url=environment.urls.postgres,
        redis_url=environment.urls.redis,
        overrides={"breaker.reset_timeout_s": "1s"},
    )
    url = f"http://127.0.0.1:{port}"
    with running(command) as process:
        wait_until_up(f"{url}/health", timeout_s=30, process=process)
        yield url
