"""notes-app: a small, ordinary FastAPI service, written the way a team would write it.

Notes live in PostgreSQL (a psycopg connection pool); reads are cached in
Redis for 60 s (redis-py); a database call that fails is retried three times
with a fixed 100 ms pause (our own little retry, no breaker). Nothing here
knows about the resilience harness: it reads ``DATABASE_URL`` and
``REDIS_URL`` like any twelve-factor app, and its few settings the same way:
``CACHE_TTL_S`` (60), ``DB_RETRY_ATTEMPTS`` (3), ``POOL_TIMEOUT_S`` (5).

Run: ``uvicorn app:app --port 8000`` (with DATABASE_URL and REDIS_URL set).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
import redis
from fastapi import FastAPI, HTTPException
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

T = TypeVar("T")

CACHE_TTL_S = int(float(os.environ.get("CACHE_TTL_S", "60")))
DB_RETRY_ATTEMPTS = int(os.environ.get("DB_RETRY_ATTEMPTS", "3"))
POOL_TIMEOUT_S = float(os.environ.get("POOL_TIMEOUT_S", "5"))

pool = ConnectionPool(
    os.environ["DATABASE_URL"], min_size=2, max_size=10, open=False, timeout=POOL_TIMEOUT_S
)
cache = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1.0, socket_connect_timeout=1.0)


def with_retry(fn: Callable[[], T], attempts: int = DB_RETRY_ATTEMPTS, pause_s: float = 0.1) -> T:
    """Try ``fn`` up to ``attempts`` times (what most teams write before they read about breakers)."""
    for attempt in range(attempts):
        try:
            return fn()
        except psycopg.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(pause_s)
    raise AssertionError("unreachable")


@asynccontextmanager
async def lifespan(app: FastAPI) -> Any:
    pool.open(wait=True)
    yield
    pool.close()


app = FastAPI(title="notes-app", lifespan=lifespan)


class NoteIn(BaseModel):
    title: str
    body: str = ""


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/notes/{slug}")
def get_note(slug: str) -> dict[str, Any]:
    try:
        cached = cache.get(f"note:{slug}")
    except redis.RedisError:
        cached = None  # Redis is only a cache
    if cached is not None:
        return {**json.loads(cached), "source": "cache"}

    def read() -> Any:
        with pool.connection() as conn:
            return conn.execute(
                "SELECT slug, title, body FROM notes WHERE slug = %s", (slug,)
            ).fetchone()

    row = with_retry(read)
    if row is None:
        raise HTTPException(404, "no such note")
    note = {"slug": row[0], "title": row[1], "body": row[2]}
    try:
        cache.set(f"note:{slug}", json.dumps(note), ex=CACHE_TTL_S)
    except redis.RedisError:
        pass
    return {**note, "source": "db"}


@app.put("/notes/{slug}", status_code=201)
def put_note(slug: str, note: NoteIn) -> dict[str, str]:
    def write() -> None:
        with pool.connection() as conn:
            conn.execute(
                "INSERT INTO notes (slug, title, body) VALUES (%s, %s, %s) "
                "ON CONFLICT (slug) DO UPDATE SET title = EXCLUDED.title, body = EXCLUDED.body",
                (slug, note.title, note.body),
            )

    with_retry(write)
    try:
        cache.delete(f"note:{slug}")
    except redis.RedisError:
        pass
    return {"slug": slug}
