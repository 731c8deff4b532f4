"""pytest plugin: a throwaway environment and clients through its fault proxies.

Registered through the ``pytest11`` entry point, so installing the package is
enough. Importing it is cheap: every heavy import happens inside a fixture.

Backend choice, first set wins: ``--resilience-backend``, ``$RESILIENCE_BACKEND``,
the ``resilience_backend`` ini option, ``auto``. The user's own SQL:
``resilience_schema`` / ``resilience_seed`` (ini, linelist, relative to rootdir)
plus ``--resilience-schema`` / ``--resilience-seed`` (repeatable): schema files
once per session, seed files then and after every per-test reset.

Fixtures (built by :mod:`resilience.pytest_factories`, which makes more)
    ``resilience_env`` (session): a started :class:`~resilience.backends.Environment`
        with the reference schema, then the user's schema and seed files, applied;
        started only when a test asks for it.
    ``resilience_urls`` (session): its :class:`~resilience.backends.EnvironmentURLs`.
    ``resilience_toxiproxy`` (session): the typed
        :class:`~resilience.proxy.client.ToxiproxyClient` of the environment.
    ``toxiproxy_server`` (session): a toxiproxy-python ``Toxiproxy`` aimed at it.
    ``postgres_proxy`` / ``redis_proxy`` (test): a
        :class:`~resilience.pytest_factories.ProxyHandle`, the typed client bound to
        that proxy: ``postgres_proxy.add_toxic("latency", attributes={"latency": 300})``.
    ``pg_conn`` (test): a psycopg connection (autocommit) through the ``postgres`` proxy.
    ``asyncpg_conn`` (test): an asyncpg connection through the proxy (pytest-asyncio).
    ``redis_client`` (test): a redis-py client through the ``redis`` proxy.
    ``resilience_clean`` (test): before and after the test, toxics removed, proxies enabled,
        every table truncated and the seed files applied again, Redis flushed.
        Every per-test fixture above depends on it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from resilience import pytest_factories as factories

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
    for kind, when in (("schema", "once per session"), ("seed", "after each reset")):
        group.addoption(
            f"--resilience-{kind}",
            dest=f"resilience_{kind}",
            action="append",
            default=None,
            metavar="SQL_FILE",
            help=f"SQL file applied to the environment's database {when} (repeatable; "
            f"adds to the resilience_{kind} ini option)",
        )
        parser.addini(
            f"resilience_{kind}",
            f"SQL files applied to the environment's database {when}, relative to rootdir",
            type="linelist",
            default=[],
        )


def selected_files(config: pytest.Config, kind: str) -> list[str]:
    """SQL files of ``kind`` (``schema`` or ``seed``): the ini option's, then the CLI's."""
    from_ini = [str(item) for item in config.getini(f"resilience_{kind}")]
    return from_ini + list(config.getoption(f"resilience_{kind}", default=None) or [])


def selected_backend(config: pytest.Config) -> str:
    """The backend name from option, environment variable or ini (in that order)."""
    option = config.getoption("resilience_backend", default=None)
    chosen = option or os.environ.get("RESILIENCE_BACKEND") or config.getini("resilience_backend")
    return str(chosen or "auto")


resilience_env = factories.environment()
resilience_env.__doc__ = "A started environment, schema and seed files applied (session)."
resilience_clean = factories.clean("resilience_env")
postgres_proxy = factories.proxy("resilience_env", "postgres")
redis_proxy = factories.proxy("resilience_env", "redis")
pg_conn = factories.pg_conn("resilience_env")
redis_client = factories.redis_client("resilience_env")


@pytest.fixture(scope="session")
def resilience_urls(resilience_env: Environment) -> EnvironmentURLs:
    return resilience_env.urls


@pytest.fixture(scope="session")
def toxiproxy_server(resilience_env: Environment) -> Iterator[Any]:
    """toxiproxy-python's ``Toxiproxy``, pointed at this environment's API (session).

    toxiproxy-python keeps its API address in class attributes (process-wide),
    so the fixture points them here for the session and restores them after.
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


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture needs pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture(loop_scope="function")
    async def asyncpg_conn(
        resilience_env: Environment, resilience_clean: None
    ) -> AsyncIterator[Any]:  # one async fixture: no factory for it yet
        """An asyncpg connection through the ``postgres`` proxy (function event loop)."""
        import asyncpg

        conn = await asyncpg.connect(resilience_env.urls.postgres, timeout=5)
        try:
            yield conn
        finally:
            await conn.close()

    __all__ += ["asyncpg_conn"]
