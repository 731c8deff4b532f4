"""pytest plugin: a throwaway environment and clients through its fault proxies.

Registered through the ``pytest11`` entry point, so installing the package is
enough. Importing it is cheap: every heavy import happens inside a fixture.

Backend choice, first set wins: ``--resilience-backend``, ``$RESILIENCE_BACKEND``,
the ``resilience_backend`` ini option, ``auto``.

Fixtures
    ``resilience_env`` (session): a started :class:`~resilience.backends.Environment`
        with the schema applied; started only when a test asks for it.
    ``resilience_urls`` (session): its :class:`~resilience.backends.EnvironmentURLs`.
    ``toxiproxy_server`` (session): a toxiproxy-python ``Toxiproxy`` aimed at it.
    ``resilience_toxiproxy`` (session): the typed
        :class:`~resilience.proxy.client.ToxiproxyClient` of the environment.
    ``postgres_proxy`` / ``redis_proxy``: toxiproxy-python ``Proxy`` objects.
    ``pg_conn``: a psycopg connection (autocommit) through the ``postgres`` proxy.
    ``asyncpg_conn``: an asyncpg connection through the proxy (needs pytest-asyncio).
    ``redis_client``: a redis-py client through the ``redis`` proxy.
    ``resilience_clean``: after the test, toxics removed, proxies enabled, tables
        truncated and Redis flushed. Every fixture above except the session
        ones depends on it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from resilience.backends import Environment, EnvironmentURLs

__all__ = [
    "pg_conn",
    "postgres_proxy",
    "pytest_addoption",
    "redis_client",
    "redis_proxy",
    "resilience_clean",
    "resilience_env",
    "resilience_toxiproxy",
    "resilience_urls",
    "toxiproxy_server",
]

_BACKENDS = ("auto", "local", "docker", "external")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience", "resilience harness environment")
    group.addoption(
        "--resilience-backend",
        dest="resilience_backend",
        choices=_BACKENDS,
        default=None,
        help="backend of the resilience_env fixture (default: $RESILIENCE_BACKEND, "
        "the resilience_backend ini option, else auto)",
    )
    parser.addini(
        "resilience_backend",
        "backend of the resilience_env fixture: auto | local | docker | external",
        default="auto",
    )


def selected_backend(config: pytest.Config) -> str:
    """The backend name from option, environment variable or ini (in that order)."""
    option = config.getoption("resilience_backend", default=None)
    chosen = option or os.environ.get("RESILIENCE_BACKEND") or config.getini("resilience_backend")
    return str(chosen or "auto")


@pytest.fixture(scope="session")
def resilience_env(request: pytest.FixtureRequest) -> Iterator[Environment]:
    """A started environment with the schema applied (stopped at session end)."""
    from resilience.backends import BackendUnavailable, Environment
    from resilience.db.schema import apply_schema

    env = Environment(selected_backend(request.config))
    try:
        env.start()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    try:
        apply_schema(env.urls.postgres_direct)
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="session")
def resilience_urls(resilience_env: Environment) -> EnvironmentURLs:
    return resilience_env.urls


@pytest.fixture
def toxiproxy_server(resilience_env: Environment) -> Iterator[Any]:
    """toxiproxy-python's ``Toxiproxy``, pointed at this environment's API.

    toxiproxy-python keeps its API address in class attributes (process-wide),
    so the fixture points them here for each test and restores them after.
    """
    from urllib.parse import urlparse

    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer

    api = urlparse(resilience_env.urls.toxiproxy_api)
    previous = (APIConsumer.host, APIConsumer.port)
    server = Toxiproxy()
    server.update_api_consumer(api.hostname, api.port)
    yield server
    server.update_api_consumer(*previous)


@pytest.fixture(scope="session")
def resilience_toxiproxy(resilience_env: Environment) -> Any:
    """The typed :class:`~resilience.proxy.client.ToxiproxyClient` of the environment."""
    return resilience_env.toxiproxy


@pytest.fixture
def resilience_clean(resilience_env: Environment) -> Iterator[None]:
    """After the test: reset the proxies, truncate the tables, flush Redis."""
    yield
    from resilience.backends.cleanup import reset_environment

    reset_environment(resilience_env.urls)


@pytest.fixture
def postgres_proxy(toxiproxy_server: Any, resilience_clean: None) -> Any:
    """The ``postgres`` proxy as a toxiproxy-python ``Proxy``."""
    return toxiproxy_server.get_proxy("postgres")


@pytest.fixture
def redis_proxy(toxiproxy_server: Any, resilience_clean: None) -> Any:
    """The ``redis`` proxy as a toxiproxy-python ``Proxy``."""
    return toxiproxy_server.get_proxy("redis")


@pytest.fixture
def pg_conn(resilience_env: Environment, resilience_clean: None) -> Iterator[Any]:
    """A psycopg connection (autocommit) through the ``postgres`` proxy."""
    import psycopg

    conn = psycopg.connect(resilience_env.urls.postgres, autocommit=True, connect_timeout=5)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def redis_client(resilience_env: Environment, resilience_clean: None) -> Iterator[Any]:
    """A redis-py client through the ``redis`` proxy."""
    import redis

    client = redis.Redis.from_url(resilience_env.urls.redis, socket_timeout=5)
    try:
        yield client
    finally:
        client.close()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture needs pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture(loop_scope="function")
    async def asyncpg_conn(
        resilience_env: Environment, resilience_clean: None
    ) -> AsyncIterator[Any]:
        """An asyncpg connection through the ``postgres`` proxy (function event loop)."""
        import asyncpg

        conn = await asyncpg.connect(resilience_env.urls.postgres, timeout=5)
        try:
            yield conn
        finally:
            await conn.close()

    __all__ += ["asyncpg_conn"]
