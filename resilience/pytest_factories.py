"""Fixture factories for a team's own tests, in the style of pytest-postgresql.

The plugin's own fixtures (:mod:`resilience.pytest_plugin`) are built by these
factories from its options; a conftest.py builds more, e.g. a second
environment with another schema::

    from resilience import pytest_factories as factories

    orders_env = factories.environment(schema=["sql/orders.sql"], seed=["sql/seed.sql"])
    orders_env_clean = factories.clean("orders_env")
    orders_db = factories.pg_conn("orders_env")          # psycopg, through the proxy
    orders_pg_proxy = factories.proxy("orders_env", "postgres")

    def test_slow_database(orders_db, orders_pg_proxy):
        orders_pg_proxy.add_toxic("latency", attributes={"latency": 300})
        ...

``environment`` applies the schema files once per session (after the
reference service's schema, unless ``reference_schema=False``) and then the
seed files. ``clean`` runs after each test that uses a connection or proxy
fixture: toxics removed and proxies enabled, every table truncated and the
seed files applied again, Redis flushed. Name it ``<env>_clean``; the
connection and proxy fixtures of that environment then depend on it (without
one they register the same reset themselves).

Toxics use one style: :class:`ProxyHandle`, our typed client bound to one
proxy (``add_toxic(type, *, name, stream, toxicity, attributes)``,
``remove_toxic``, ``toxics``, ``disable``/``enable``, ``down()``).
Importing this module is cheap: every heavy import happens in a fixture.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from resilience.backends import Environment
    from resilience.proxy.client import ProxyInfo, ToxicInfo, ToxiproxyClient

__all__ = [
    "DataFiles",
    "ProxyHandle",
    "clean",
    "environment",
    "pg_conn",
    "proxy",
    "redis_client",
]

_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


@dataclass(frozen=True, slots=True)
class DataFiles:
    """A session's SQL: ``schema`` files applied once, ``seed`` files after every reset."""

    schema: tuple[Path, ...] = ()
    seed: tuple[Path, ...] = ()


_DATA: weakref.WeakKeyDictionary[Any, DataFiles] = weakref.WeakKeyDictionary()


class ProxyHandle:
    """One proxy of an environment through the typed client (the plugin's one toxic style)."""

    def __init__(self, client: ToxiproxyClient, name: str) -> None:
        self.client = client
        self.name = name

    def add_toxic(
        self,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, int] | None = None,
    ) -> ToxicInfo:
        """Add a toxic (``latency`` ms, ``bandwidth`` KB/s, ``timeout`` ms, ...)."""
        return self.client.add_toxic(
            self.name, type, name=name, stream=stream, toxicity=toxicity, attributes=attributes
        )

    def remove_toxic(self, name: str) -> None:
        self.client.remove_toxic(self.name, name)

    def destroy_toxic(self, name: str) -> None:
        """:meth:`remove_toxic` under toxiproxy-python's name (the fixtures' former type)."""
        self.remove_toxic(name)

    def toxics(self) -> list[ToxicInfo]:
        return self.client.toxics(self.name)

    def disable(self) -> ProxyInfo:
        """Refuse and cut every connection (the dependency is down) until :meth:`enable`."""
        return self.client.update_proxy(self.name, enabled=False)

    def enable(self) -> ProxyInfo:
        return self.client.update_proxy(self.name, enabled=True)

    def down(self) -> contextlib.AbstractContextManager[ProxyInfo]:
        """Disabled inside the ``with`` block, enabled after it."""
        return self.client.down(self.name)

    @property
    def info(self) -> ProxyInfo:
        return self.client.get_proxy(self.name)

    def __repr__(self) -> str:
        return f"ProxyHandle({self.name!r})"


def _paths(files: Sequence[str | Path], root: Path) -> tuple[Path, ...]:
    resolved = []
    for item in files:
        path = Path(item)
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise pytest.UsageError(f"resilience: SQL file {path} does not exist")
        resolved.append(path)
    return tuple(resolved)


def _run_sql(dsn: str, files: Sequence[Path]) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        for path in files:
            try:
                conn.execute(path.read_bytes())
            except psycopg.Error as exc:
                raise pytest.UsageError(f"resilience: {path} failed: {exc}") from exc


def truncate_all_tables(dsn: str) -> None:
    """Empty every table outside the system schemas (the user's and the reference ones)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname <> ALL(%s) AND schemaname NOT LIKE 'pg_toast%%'",
            (list(_SYSTEM_SCHEMAS),),
        ).fetchall()
        if not rows:
            return
        names = sql.SQL(", ").join(sql.Identifier(schema, table) for schema, table in rows)
        statement = sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names)
        conn.execute("SET lock_timeout = '5s'")
        try:
            conn.execute(statement)
        except psycopg.errors.LockNotAvailable:
            # A session holds a transaction open on a table (a test's client the
            # proxy cut off): end the other sessions, then try again.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            conn.execute(statement)


def environment(
    *,
    backend: str | None = None,
    schema: Sequence[str | Path] | None = None,
    seed: Sequence[str | Path] | None = None,
    reference_schema: bool = True,
    scope: str = "session",
) -> Callable[..., Any]:
    """A fixture giving a started :class:`~resilience.backends.Environment`.

    Arguments left ``None`` come from the plugin's options (``--resilience-backend``,
    ``--resilience-schema``, ``--resilience-seed`` and their ini names); relative
    paths are relative to the rootdir. A backend that cannot run here skips.
    """

    def fixture(request: pytest.FixtureRequest) -> Iterator[Environment]:
        from resilience.backends import BackendUnavailable, Environment
        from resilience.pytest_plugin import selected_backend, selected_files

        config = request.config
        root = Path(str(config.rootpath))
        data = DataFiles(
            schema=_paths(schema if schema is not None else selected_files(config, "schema"), root),
            seed=_paths(seed if seed is not None else selected_files(config, "seed"), root),
        )
        env = Environment(backend or selected_backend(config))
        try:
            env.start()
        except BackendUnavailable as exc:
            pytest.skip(str(exc))
        try:
            if reference_schema:
                from resilience.db.schema import apply_schema

                apply_schema(env.urls.postgres_direct)
            _run_sql(env.urls.postgres_direct, data.schema)
            _run_sql(env.urls.postgres_direct, data.seed)
            _DATA[env] = data
            yield env
        finally:
            env.stop()

    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload, no-any-return]


def _env(request: pytest.FixtureRequest, name: str) -> Environment:
    env: Environment = request.getfixturevalue(name)
    return env


def reset(env: Environment) -> None:
    """Proxies reset, every table truncated and re-seeded, Redis flushed, booking stub zeroed."""
    from resilience.backends.cleanup import flush_redis, reset_booking_stub, reset_proxies

    urls = env.urls
    reset_proxies(urls.toxiproxy_api)
    truncate_all_tables(urls.postgres_direct)
    _run_sql(urls.postgres_direct, _DATA.get(env, DataFiles()).seed)
    flush_redis(urls.redis_direct)
    reset_booking_stub(urls)


def clean(env_fixture: str) -> Callable[..., Any]:
    """A per-test fixture: ``env_fixture``'s environment reset before the test and after it.

    Before as well: whatever reached the session's environment since the last
    reset (a test without this fixture, a late write of an earlier test's
    service) must not show in this test's data.
    """

    def fixture(request: pytest.FixtureRequest) -> Iterator[None]:
        env = _env(request, env_fixture)
        reset(env)
        yield
        reset(env)

    return pytest.fixture(fixture)


def _clean_name(env_fixture: str) -> str:
    return "resilience_clean" if env_fixture == "resilience_env" else f"{env_fixture}_clean"


_RESET_REGISTERED = pytest.StashKey[set[int]]()


def _after_clean(request: pytest.FixtureRequest, env_fixture: str) -> None:
    """Make sure ``env_fixture``'s environment is reset after the test, once.

    The clean fixture named ``<env>_clean`` (``resilience_clean`` for
    ``resilience_env``) is used when defined; otherwise the reset is added to
    the test's finalizers directly.
    """
    try:
        request.getfixturevalue(_clean_name(env_fixture))
        return
    except pytest.FixtureLookupError:
        pass
    env = _env(request, env_fixture)
    registered = request.node.stash.setdefault(_RESET_REGISTERED, set())
    if id(env) not in registered:
        registered.add(id(env))
        request.node.addfinalizer(lambda: reset(env))


def proxy(env_fixture: str, name: str) -> Callable[..., Any]:
    """A per-test :class:`ProxyHandle` for proxy ``name`` (``postgres`` or ``redis``)."""

    def fixture(request: pytest.FixtureRequest) -> ProxyHandle:
        env = _env(request, env_fixture)
        _after_clean(request, env_fixture)
        return ProxyHandle(env.toxiproxy, name)

    return pytest.fixture(fixture)


def pg_conn(env_fixture: str, *, autocommit: bool = True) -> Callable[..., Any]:
    """A per-test psycopg connection through the ``postgres`` proxy."""

    def fixture(request: pytest.FixtureRequest) -> Iterator[Any]:
        import psycopg

        env = _env(request, env_fixture)
        _after_clean(request, env_fixture)
        conn = psycopg.connect(env.urls.postgres, autocommit=autocommit, connect_timeout=5)
        try:
            yield conn
        finally:
            conn.close()

    return pytest.fixture(fixture)


def redis_client(env_fixture: str) -> Callable[..., Any]:
    """A per-test redis-py client through the ``redis`` proxy."""

    def fixture(request: pytest.FixtureRequest) -> Iterator[Any]:
        import redis

        env = _env(request, env_fixture)
        _after_clean(request, env_fixture)
        client = redis.Redis.from_url(env.urls.redis, socket_timeout=5)
        try:
            yield client
        finally:
            client.close()

    return pytest.fixture(fixture)
