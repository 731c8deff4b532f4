"""A modelled PostgreSQL behind its proxy: a :class:`SlugRepository` for the service.

Queries go through a :class:`~resilience.sim.pool.ModelPool` (asyncpg's pool
of ``pool_size`` connections) over the ``postgres``
:class:`~resilience.sim.proxy.ModelProxy`, with message sizes of asyncpg's
extended protocol, and take a service time drawn from ``query_time``. A new
connection costs SCRAM's three start-up round trips (the local backend's
``--auth-host=scram-sha-256``); ``prepare_statements`` (on, as asyncpg's
statement cache works) adds a round trip the first time a statement runs on
a connection: behind a latency toxic, lookups on connections that had not
served one yet take two round trips (04-postgres-latency: 8 such lookups
simulated, 6 and 9 in two real runs). With
``reset_on_release`` each query is followed by asyncpg's default connection
reset (a second round trip, which a latency toxic delays too); the service's
pool skips it (``reset=_keep_session``), so the default is off. Failures
raise what asyncpg raises: :class:`ConnectionRefusedError` when the proxy is
disabled, :class:`ConnectionResetError` for an RST, and asyncpg's
``ConnectionDoesNotExistError`` when the connection closes mid-query (a plain
:class:`ConnectionError` when asyncpg is not installed). The service then
classifies them exactly as it classifies the real driver's.
"""

from __future__ import annotations

import errno
import random
import uuid
from collections.abc import Iterable, Mapping

from resilience.service.repository import PostgresSlugRepository
from resilience.sim.distributions import Distribution, LogNormal
from resilience.sim.pool import Handshake, ModelPool
from resilience.sim.protocol_errors import postgres_error
from resilience.sim.proxy import ErrorSet, ModelConnection, ModelProxy

__all__ = [
    "DEFAULT_CONNECT_TIME",
    "DEFAULT_QUERY_TIME",
    "POSTGRES_ERRORS",
    "ModelSlugRepository",
    "raise_protocol_error",
]

DEFAULT_QUERY_TIME: Distribution = LogNormal(median_s=0.00035, p99_s=0.0015)
"""An indexed ``SELECT id … WHERE slug = $1`` over loopback, driver included."""
DEFAULT_CONNECT_TIME: Distribution = LogNormal(median_s=0.0015, p99_s=0.004)
"""Server-side time of one start-up round trip (fork, auth, settings)."""

_QUERY_OVERHEAD_BYTES = 56  # Bind + Execute + Sync around the parameter
# Replies to a cached statement, in asyncpg's binary format (a UUID is 16 bytes):
# BindComplete (5) + DataRow (1 + 4 + 2 + 4 + 16) + CommandComplete "SELECT 1" (14)
# + ReadyForQuery (6). They matter under a bandwidth toxic: 52 B at 2 KB/s is 26 ms.
_REPLY_FOUND_BYTES = 52
_REPLY_EMPTY_BYTES = 25  # BindComplete + CommandComplete "SELECT 0" + ReadyForQuery
_ROW_BYTES = 31  # a (slug, id) DataRow without the slug's text: 1 + 4 + 2 + 4 + 16 + 4
_RESET_BYTES = 120  # the pool's reset query on release
_RESET_REPLY_BYTES = 60
_RESET_TIME_S = 0.00005


_SQL = {"one": PostgresSlugRepository._ONE, "many": PostgresSlugRepository._MANY}
"""The statements the service sends, which a postgres_error prefix matches."""


def raise_protocol_error(proxy: ModelProxy, conn: ModelConnection, sql: str) -> None:
    """Raise what asyncpg raises when a postgres_error toxic answers sql (FATAL: closed)."""
    toxic = proxy.protocol_error(sql)
    if toxic is None:
        return
    error, fatal = postgres_error(toxic, sql)
    if fatal:
        proxy.close(conn)
    raise error


def _closed() -> BaseException:
    try:
        from asyncpg.exceptions import ConnectionDoesNotExistError
    except ImportError:  # pragma: no cover - asyncpg is a runtime dependency
        return ConnectionError("connection was closed in the middle of operation")
    error: BaseException = ConnectionDoesNotExistError(
        "connection was closed in the middle of operation"
    )
    return error


POSTGRES_ERRORS = ErrorSet(
    refused=lambda: ConnectionRefusedError(
        errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 5432)"
    ),
    closed=_closed,
    reset=lambda: ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
)
"""What asyncpg raises for a refused connect, a closed and a reset connection."""

_HANDSHAKES = (
    # SCRAM-SHA-256 over TCP (the local backend's --auth-host): three round trips.
    Handshake(request_bytes=90, reply_bytes=24, service=DEFAULT_CONNECT_TIME),  # startup → SASL
    Handshake(request_bytes=60, reply_bytes=100, service=DEFAULT_CONNECT_TIME),  # → continue
    Handshake(request_bytes=110, reply_bytes=480, service=DEFAULT_CONNECT_TIME),  # → final, ready
)
_PREPARE_BYTES = 120  # Parse + Describe + Sync
_PREPARE_REPLY_BYTES = 60  # ParseComplete + ParameterDescription + RowDescription
_PREPARE_TIME_S = 0.0002


async def prepare(proxy: ModelProxy, conn: ModelConnection, statement: str) -> None:
    """asyncpg prepares each statement once per connection: one round trip the first time."""
    if statement not in conn.prepared:
        await proxy.exchange(conn, _PREPARE_BYTES, _PREPARE_REPLY_BYTES, _PREPARE_TIME_S)
        conn.prepared.add(statement)


class ModelSlugRepository:
    """The ``micro_services`` table as a mapping, served through a modelled pool.

    ``catalogue`` maps known slugs to their UUIDs. ``pool_size`` mirrors
    ``db.pool_max_size`` of the service configuration; ``pool_min_size``
    connections are open from the start (``db.pool_min_size``, and at least
    the one the service warms up with a lazy pool).
    """

    def __init__(
        self,
        proxy: ModelProxy,
        catalogue: Mapping[str, uuid.UUID],
        *,
        rng: random.Random,
        pool_size: int = 10,
        pool_min_size: int = 1,
        query_time: Distribution = DEFAULT_QUERY_TIME,
        connect_time: Distribution = DEFAULT_CONNECT_TIME,
        reset_on_release: bool = False,
        prepare_statements: bool = True,
    ) -> None:
        self.proxy = proxy
        self.prepare_statements = prepare_statements
        self.reset_on_release = reset_on_release
        self.catalogue = dict(catalogue)
        self.rng = rng
        self.query_time = query_time
        handshakes = tuple(
            Handshake(h.request_bytes, h.reply_bytes, connect_time) for h in _HANDSHAKES
        )
        self.pool = ModelPool(
            proxy, max_size=pool_size, min_size=pool_min_size, handshakes=handshakes, rng=rng
        )
        self.queries = 0

    async def _query(self, statement: str, request_bytes: int, reply_bytes: int) -> None:
        self.queries += 1
        pool = self.pool
        conn = pool.try_acquire() or await pool.acquire()
        ok = False
        try:
            if self.prepare_statements:
                await prepare(self.proxy, conn, statement)
            await self.proxy.exchange(
                conn, request_bytes, reply_bytes, self.query_time.sample(self.rng)
            )
            if self.proxy.protocol_toxics:
                raise_protocol_error(self.proxy, conn, _SQL[statement])
            if self.reset_on_release:
                # asyncpg's default pool reset: one more round trip inside the caller's
                # timeout (pg_advisory_unlock_all, CLOSE ALL, UNLISTEN *, RESET ALL).
                await self.proxy.exchange(conn, _RESET_BYTES, _RESET_REPLY_BYTES, _RESET_TIME_S)
            ok = True
        finally:
            pool.release(conn, broken=not ok)

    async def fetch_uuid(self, slug: str) -> uuid.UUID | None:
        found = self.catalogue.get(slug)
        reply = _REPLY_FOUND_BYTES if found is not None else _REPLY_EMPTY_BYTES
        await self._query("one", _QUERY_OVERHEAD_BYTES + len(slug), reply)
        return found

    async def fetch_many(self, slugs: Iterable[str]) -> dict[str, uuid.UUID]:
        wanted = list(dict.fromkeys(slugs))
        if not wanted:
            return {}
        found = {s: self.catalogue[s] for s in wanted if s in self.catalogue}
        request = _QUERY_OVERHEAD_BYTES + sum(len(s) + 4 for s in wanted)
        reply = _REPLY_EMPTY_BYTES + sum(_ROW_BYTES + len(s) for s in found)
        await self._query("many", request, reply)
        return found
