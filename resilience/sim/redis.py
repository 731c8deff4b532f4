"""A modelled Redis behind its proxy: a ``redis.asyncio.Redis`` stand-in.

:class:`ModelRedisClient` has the commands
:class:`~resilience.cache.redis_tier.RedisTier` uses (``get``, ``set`` with
``px``, ``mget``, ``delete``, ``ping``, ``pipeline``), keeps the data with
TTLs on the loop's (virtual) clock (and the hash commands of the service's
job outbox: ``hsetnx``, ``hset``, ``hgetall``, ``hdel``, ``hlen``), and sends each
command, sized as RESP,
through a :class:`~resilience.sim.pool.ModelPool` over the ``redis``
:class:`~resilience.sim.proxy.ModelProxy`. So the real ``RedisTier`` (its
timeouts, degradation and recovery) runs against it. Failures raise redis-py's
``ConnectionError`` with the driver's messages.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from typing import Any

from resilience.sim.distributions import Distribution, LogNormal
from resilience.sim.pool import Handshake, ModelPool
from resilience.sim.proxy import ErrorSet, ModelProxy

__all__ = ["DEFAULT_COMMAND_TIME", "DEFAULT_CONNECT_TIME", "REDIS_ERRORS", "ModelRedisClient"]

DEFAULT_COMMAND_TIME: Distribution = LogNormal(median_s=0.00012, p99_s=0.0006)
"""One GET/SET over loopback, client library included."""
DEFAULT_CONNECT_TIME: Distribution = LogNormal(median_s=0.0002, p99_s=0.001)
"""Server-side time of the connection's start-up round trip."""


def _redis_error(message: str) -> BaseException:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # pragma: no cover - redis is a runtime dependency
        return ConnectionError(message)
    return RedisConnectionError(message)


REDIS_ERRORS = ErrorSet(
    refused=lambda: _redis_error("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    closed=lambda: _redis_error("Connection closed by server."),
    reset=lambda: _redis_error("Error 104 while reading from socket: Connection reset by peer"),
)


def _bulk(value: bytes | None) -> int:
    return 5 if value is None else len(value) + 3 + len(str(len(value))) + 2


def _command(*parts: bytes) -> int:
    return 3 + len(str(len(parts))) + sum(len(p) + 5 + len(str(len(p))) for p in parts)


class ModelRedisClient:
    """Key → bytes with millisecond TTLs, over a modelled connection pool."""

    def __init__(
        self,
        proxy: ModelProxy,
        *,
        rng: random.Random,
        pool_size: int = 50,
        command_time: Distribution = DEFAULT_COMMAND_TIME,
        connect_time: Distribution = DEFAULT_CONNECT_TIME,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.proxy = proxy
        self.loop = loop
        self.rng = rng
        self.command_time = command_time
        hello = Handshake(request_bytes=60, reply_bytes=30, service=connect_time)
        self.pool = ModelPool(proxy, max_size=pool_size, handshakes=(hello,), rng=rng)
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._hashes: dict[str, dict[bytes, bytes]] = {}
        self.commands = 0

    # -- storage -------------------------------------------------------------------

    def _now(self) -> float:
        return (self.loop or asyncio.get_running_loop()).time()

    def _read(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and (self.loop or asyncio.get_running_loop()).time() >= expires:
            del self._data[key]
            return None
        return value

    def _write(self, key: str, value: Any, px: int | None) -> None:
        raw = value if isinstance(value, bytes) else str(value).encode()
        self._data[key] = (raw, None if px is None else self._now() + px / 1000.0)

    async def _roundtrip(self, request_bytes: int, reply_bytes: int, commands: int = 1) -> None:
        self.commands += commands
        pool = self.pool
        conn = pool.try_acquire() or await pool.acquire()
        ok = False
        try:
            await self.proxy.exchange(
                conn, request_bytes, reply_bytes, self.command_time.sample(self.rng)
            )
            ok = True
        finally:
            pool.release(conn, broken=not ok)

    # -- commands ------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        reply = _bulk(self._read(key))
        # _roundtrip inlined (one coroutine less): GET is the command of every Redis lookup.
        self.commands += 1
        pool = self.pool
        conn = pool.try_acquire() or await pool.acquire()
        ok = False
        try:
            await self.proxy.exchange(
                conn, 20 + len(key), reply, self.command_time.sample(self.rng)
            )  # RESP GET, 2-digit key length
            ok = True
        finally:
            pool.release(conn, broken=not ok)
        return self._read(key)

    async def set(self, key: str, value: Any, px: int | None = None) -> bool:
        raw = value if isinstance(value, bytes) else str(value).encode()
        await self._roundtrip(_command(b"SET", key.encode(), raw, b"PX", b"1800000"), 5)
        self._write(key, raw, px)
        return True

    async def mget(self, keys: Iterable[str]) -> list[bytes | None]:
        wanted = list(keys)
        request = _command(b"MGET", *(k.encode() for k in wanted))
        await self._roundtrip(request, 4 + sum(_bulk(self._read(k)) for k in wanted))
        return [self._read(k) for k in wanted]

    async def delete(self, *keys: str) -> int:
        await self._roundtrip(_command(b"DEL", *(k.encode() for k in keys)), 4)
        return sum(self._data.pop(k, None) is not None for k in keys)

    # -- hashes (the service's job outbox) -------------------------------------------

    async def hsetnx(self, key: str, field: str, value: Any) -> int:
        raw = value if isinstance(value, bytes) else str(value).encode()
        await self._roundtrip(_command(b"HSETNX", key.encode(), field.encode(), raw), 4)
        table = self._hashes.setdefault(key, {})
        name = field.encode()
        if name in table:
            return 0
        table[name] = raw
        return 1

    async def hset(self, key: str, field: str, value: Any) -> int:
        raw = value if isinstance(value, bytes) else str(value).encode()
        await self._roundtrip(_command(b"HSET", key.encode(), field.encode(), raw), 4)
        table = self._hashes.setdefault(key, {})
        name = field.encode()
        created = name not in table
        table[name] = raw
        return int(created)

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        table = dict(self._hashes.get(key, {}))
        reply = 4 + sum(_bulk(k) + _bulk(v) for k, v in table.items())
        await self._roundtrip(_command(b"HGETALL", key.encode()), reply)
        return dict(self._hashes.get(key, {}))

    async def hdel(self, key: str, *fields: Any) -> int:
        names = [f if isinstance(f, bytes) else str(f).encode() for f in fields]
        await self._roundtrip(_command(b"HDEL", key.encode(), *names), 4)
        table = self._hashes.get(key, {})
        return sum(table.pop(n, None) is not None for n in names)

    async def hlen(self, key: str) -> int:
        await self._roundtrip(_command(b"HLEN", key.encode()), 4)
        return len(self._hashes.get(key, {}))

    async def ping(self) -> bool:
        await self._roundtrip(14, 7)
        return True

    def pipeline(self, transaction: bool = False) -> _Pipeline:
        return _Pipeline(self)


class _Pipeline:
    """Queued ``set`` commands sent in one round trip."""

    def __init__(self, client: ModelRedisClient) -> None:
        self._client = client
        self._ops: list[tuple[str, Any, int | None]] = []

    def set(self, key: str, value: Any, px: int | None = None) -> _Pipeline:
        self._ops.append((key, value, px))
        return self

    async def execute(self) -> list[bool]:
        ops, self._ops = self._ops, []
        request = sum(
            _command(b"SET", k.encode(), str(v).encode(), b"PX", b"1800000") for k, v, _ in ops
        )
        await self._client._roundtrip(request, 5 * len(ops), commands=len(ops))
        for key, value, px in ops:
            self._client._write(key, value, px)
        return [True] * len(ops)
