"""Where slugs and jobs live: protocols, and their PostgreSQL implementations.

:class:`LookupService` only sees the protocols, so the virtual-time simulator
runs the same flow against modelled repositories. The PostgreSQL versions use
an asyncpg pool and translate nothing: driver errors reach the service, which
classifies them once (:func:`resilience.classify.classify`).

Every query here is meant to run under
:func:`~resilience.service.timeouts.bounded`, which abandons an attempt at
its deadline without waiting for it. Two rules make abandoning cheap:

- a query cancelled mid-flight terminates its connection (asyncpg's own
  cancellation asks the server and waits for an answer a hung link never
  brings);
- connection *setup* is not cancelled with the attempt (:func:`acquire`): a
  new connection costs several round trips (TLS negotiation and SCRAM: four
  round trips, 1.2 s behind a 300 ms latency, more than one 1 s attempt), so
  an attempt that times out while connecting lets the connection finish and
  hands it back to the pool, where the retry finds it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from resilience.service.model import Job
from resilience.service.timeouts import bounded

__all__ = [
    "BoundedPool",
    "InMemoryJobRepository",
    "InMemorySlugRepository",
    "JobRepository",
    "PostgresJobRepository",
    "PostgresSlugRepository",
    "SlugRepository",
    "acquire",
    "on_connection",
    "stored_with_key_prefix",
]


@runtime_checkable
class SlugRepository(Protocol):
    """The source of truth for slug → UUID."""

    async def fetch_uuid(self, slug: str) -> uuid.UUID | None:
        """The UUID of ``slug``, or ``None`` when no such service exists."""
        ...

    async def fetch_many(self, slugs: Iterable[str]) -> dict[str, uuid.UUID]:
        """UUIDs of the known slugs among ``slugs`` (unknown ones are absent), in one query."""
        ...


@runtime_checkable
class JobRepository(Protocol):
    """Job storage with exactly-once semantics per idempotency key."""

    async def insert_job(
        self,
        *,
        micro_id: str,
        micro_uuid: uuid.UUID | None,
        answers: Mapping[str, Any],
        idempotency_key: str,
    ) -> Job:
        """Store a job, or return the one already stored under ``idempotency_key``."""
        ...

    async def get_job(self, job_id: int) -> Job | None:
        """The job with ``job_id``, or ``None``."""
        ...


class PostgresSlugRepository:
    """:class:`SlugRepository` on an asyncpg pool (``micro_services``)."""

    _ONE = "SELECT id FROM micro_services WHERE slug = $1"
    _MANY = "SELECT slug, id FROM micro_services WHERE slug = ANY($1::text[])"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def fetch_uuid(self, slug: str) -> uuid.UUID | None:
        value = await on_connection(self._pool, "fetchval", self._ONE, slug)
        return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    async def fetch_many(self, slugs: Iterable[str]) -> dict[str, uuid.UUID]:
        wanted = list(dict.fromkeys(slugs))
        if not wanted:
            return {}
        rows = await on_connection(self._pool, "fetch", self._MANY, wanted)
        return {row["slug"]: uuid.UUID(str(row["id"])) for row in rows}


_settling: set[asyncio.Future[Any]] = set()
"""Acquisitions given up by their caller, kept alive until the connection is back."""


def _hand_back(pool: Any, acquiring: asyncio.Future[Any]) -> None:
    """Done callback of an abandoned acquisition: return its connection to the pool."""
    _settling.discard(acquiring)
    if acquiring.cancelled() or acquiring.exception() is not None:
        return  # nothing acquired (the exception is retrieved: an abandoned failure is no news)
    release: asyncio.Future[Any] = asyncio.ensure_future(pool.release(acquiring.result()))
    _settling.add(release)
    release.add_done_callback(_released)


def _released(release: asyncio.Future[Any]) -> None:
    _settling.discard(release)
    if not release.cancelled():
        release.exception()


async def acquire(pool: Any) -> Any:
    """``pool.acquire()``, except that a cancelled caller does not cancel connection setup.

    When the caller gives up (its attempt timed out) the acquisition goes on in
    the background; a connection it opens is released to the pool at once, so
    the work of connecting is not lost and the next attempt reuses it. The
    setup itself is bounded by the pool's connect timeout.
    """
    acquiring: asyncio.Future[Any] = asyncio.ensure_future(pool.acquire())
    try:
        return await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        _settling.add(acquiring)
        acquiring.add_done_callback(functools.partial(_hand_back, pool))
        raise


async def on_connection(pool: Any, method: str, *args: Any) -> Any:
    """Run one query on a pooled connection; a cancelled query kills its connection.

    asyncpg's own cancellation asks the server to cancel and waits for the
    answer, which never comes over a hung link: terminating the connection
    frees the pool slot at once (the pool opens a new one when needed).
    """
    conn = await acquire(pool)
    try:
        return await getattr(conn, method)(*args)
    except asyncio.CancelledError:
        conn.terminate()
        raise
    finally:
        await pool.release(conn)


class BoundedPool:
    """An asyncpg pool's query shortcuts, each bounded by ``timeout_s``.

    For the background writers, the error-event repository and the health
    probe: ``pool.execute`` and friends would wait forever on a hung link
    (holding a pool slot), and cancelling them waits for asyncpg's server-side
    cancellation. Here every call goes through :func:`on_connection` under
    :func:`~resilience.service.timeouts.bounded`: it fails with
    :class:`~resilience.errors.TimeoutFailure` after ``timeout_s`` and the
    abandoned query terminates its connection.
    """

    def __init__(self, pool: Any, timeout_s: float) -> None:
        self.pool = pool
        self.timeout_s = timeout_s

    async def _call(self, method: str, *args: Any) -> Any:
        return await bounded(
            on_connection(self.pool, method, *args), self.timeout_s, what=f"pool.{method}"
        )

    async def execute(self, *args: Any) -> Any:
        return await self._call("execute", *args)

    async def fetch(self, *args: Any) -> Any:
        return await self._call("fetch", *args)

    async def fetchrow(self, *args: Any) -> Any:
        return await self._call("fetchrow", *args)

    async def fetchval(self, *args: Any) -> Any:
        return await self._call("fetchval", *args)


_JOB_COLUMNS = "id, micro_id, micro_uuid, answers, idempotency_key, status, created_at"


class PostgresJobRepository:
    """:class:`JobRepository` on an asyncpg pool (``jobs``, unique ``idempotency_key``).

    ``INSERT … ON CONFLICT (idempotency_key) DO NOTHING`` then a read of the
    stored row: a retry after a lost reply (e.g. a connection reset after the
    commit) finds the job the first attempt stored, so each key is stored once.
    """

    _INSERT = (
        "INSERT INTO jobs (micro_id, micro_uuid, answers, idempotency_key, status) "
        "VALUES ($1, $2, $3::jsonb, $4, 'pending') "
        f"ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_JOB_COLUMNS}"
    )
    _BY_KEY = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE idempotency_key = $1"
    _BY_ID = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = $1"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def insert_job(
        self,
        *,
        micro_id: str,
        micro_uuid: uuid.UUID | None,
        answers: Mapping[str, Any],
        idempotency_key: str,
    ) -> Job:
        body = json.dumps(dict(answers), separators=(",", ":"), sort_keys=True)
        conn = await acquire(self._pool)
        try:
            row = await conn.fetchrow(self._INSERT, micro_id, micro_uuid, body, idempotency_key)
            created = row is not None
            if row is None:
                row = await conn.fetchrow(self._BY_KEY, idempotency_key)
        except asyncio.CancelledError:
            conn.terminate()
            raise
        finally:
            await self._pool.release(conn)
        if row is None:  # deleted between the two statements: a caller-visible oddity, not ours
            raise LookupError(f"job with idempotency key {idempotency_key!r} vanished")
        return _job_from_row(row, created=created)

    async def get_job(self, job_id: int) -> Job | None:
        row = await on_connection(self._pool, "fetchrow", self._BY_ID, job_id)
        return None if row is None else _job_from_row(row, created=False)

    async def stored_with_key_prefix(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """(idempotency key, answers) of every job whose key starts with ``prefix``
        (the audit a scenario run reconciles with; not on any request path)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await on_connection(
            self._pool,
            "fetch",
            "SELECT idempotency_key, answers FROM jobs WHERE idempotency_key LIKE $1",
            escaped + "%",
        )
        return [(r["idempotency_key"], _answers(r["answers"])) for r in rows]


def _answers(value: Any) -> dict[str, Any]:
    return dict(json.loads(value) if isinstance(value, str) else value)


def _job_from_row(row: Mapping[str, Any], *, created: bool) -> Job:
    answers = _answers(row["answers"])
    micro_uuid = row["micro_uuid"]
    return Job(
        id=int(row["id"]),
        micro_id=row["micro_id"],
        micro_uuid=None if micro_uuid is None else uuid.UUID(str(micro_uuid)),
        answers=dict(answers or {}),
        idempotency_key=row["idempotency_key"],
        status=row["status"],
        created_at=row["created_at"],
        created=created,
    )


class InMemorySlugRepository:
    """A :class:`SlugRepository` over a dict, for tests and models.

    ``fail_with`` (an exception instance), when set, is raised by every call;
    ``calls`` counts calls, so tests can assert that no query was made.
    """

    def __init__(self, catalogue: Mapping[str, uuid.UUID] | None = None) -> None:
        self.catalogue: dict[str, uuid.UUID] = dict(catalogue or {})
        self.fail_with: BaseException | None = None
        self.calls = 0

    async def fetch_uuid(self, slug: str) -> uuid.UUID | None:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return self.catalogue.get(slug)

    async def fetch_many(self, slugs: Iterable[str]) -> dict[str, uuid.UUID]:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return {s: self.catalogue[s] for s in dict.fromkeys(slugs) if s in self.catalogue}


class InMemoryJobRepository:
    """A :class:`JobRepository` over a dict (exactly once per key), for tests and models."""

    def __init__(self) -> None:
        self.by_id: dict[int, Job] = {}
        self.by_key: dict[str, int] = {}
        self.fail_with: BaseException | None = None

    async def insert_job(
        self,
        *,
        micro_id: str,
        micro_uuid: uuid.UUID | None,
        answers: Mapping[str, Any],
        idempotency_key: str,
    ) -> Job:
        if self.fail_with is not None:
            raise self.fail_with
        existing = self.by_key.get(idempotency_key)
        if existing is not None:
            return dataclasses.replace(self.by_id[existing], created=False)
        job_id = len(self.by_id) + 1
        job = Job(
            id=job_id,
            micro_id=micro_id,
            micro_uuid=micro_uuid,
            answers=dict(answers),
            idempotency_key=idempotency_key,
        )
        self.by_id[job_id] = job
        self.by_key[idempotency_key] = job_id
        return job

    async def get_job(self, job_id: int) -> Job | None:
        if self.fail_with is not None:
            raise self.fail_with
        return self.by_id.get(job_id)

    async def stored_with_key_prefix(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """(idempotency key, answers) of every job whose key starts with ``prefix``."""
        return stored_with_key_prefix(self.by_id.values(), prefix)


def stored_with_key_prefix(jobs: Iterable[Job], prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """(idempotency key, answers) of the ``jobs`` whose key starts with ``prefix``."""
    return [
        (j.idempotency_key, dict(j.answers)) for j in jobs if j.idempotency_key.startswith(prefix)
    ]
