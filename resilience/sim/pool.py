"""A modelled client connection pool (asyncpg / redis-py style) over a proxy.

Up to ``max_size`` connections, opened lazily through the
:class:`~resilience.sim.proxy.ModelProxy` (a connect costs ``handshakes``
exchanges, so toxics slow or break it like the real start-up), reused
last-in first-out like both drivers' pools — which is why a toxic with
toxicity 0.3 hits about 30 % of *connections*, and at low concurrency all or
none of the requests. ``min_size`` connections are open from the start (a
warm pool: asyncpg's ``min_size``, connected before the service takes
traffic); the rest open on demand. Callers beyond ``max_size`` wait first-in
first-out. A connection that failed or whose operation was cancelled is closed and
replaced by a fresh one on a later acquire. Opening a connection runs in a
task of its own, like the service's pool (whose connection setup has its own,
longer timeout): a lookup that times out while a connection is being opened
does not abort it, and the connection joins the pool when it is ready.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from resilience.sim.distributions import Distribution
from resilience.sim.proxy import ModelConnection, ModelProxy

__all__ = ["Handshake", "ModelPool"]


@dataclass(frozen=True, slots=True)
class Handshake:
    """One round trip of a connection's start-up (bytes each way, server time)."""

    request_bytes: int
    reply_bytes: int
    service: Distribution


class ModelPool:
    """Connections to ``proxy``; at most ``max_size`` open at once."""

    def __init__(
        self,
        proxy: ModelProxy,
        *,
        max_size: int,
        min_size: int = 0,
        handshakes: Sequence[Handshake] = (),
        rng: random.Random,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1 (got {max_size})")
        if not 0 <= min_size <= max_size:
            raise ValueError(f"min_size must be between 0 and max_size (got {min_size})")
        self.proxy = proxy
        self.max_size = max_size
        self.handshakes = tuple(handshakes)
        self.rng = rng
        self._idle: list[ModelConnection] = [proxy.connect() for _ in range(min_size)]
        self._open = min_size
        self._waiters: deque[asyncio.Future[ModelConnection | None]] = deque()

    @property
    def size(self) -> int:
        """Connections open or opening."""
        return self._open

    def try_acquire(self) -> ModelConnection | None:
        """An idle connection, or ``None``: then :meth:`acquire` (the fast path, no coroutine)."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
            self._open -= 1
        return None

    async def acquire(self) -> ModelConnection:
        """A connection: an idle one, a new one, or the next one released."""
        conn = self.try_acquire()
        if conn is not None:
            return conn
        if self._open >= self.max_size:
            waiter: asyncio.Future[ModelConnection | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    # Handed over just as we were cancelled: pass it on.
                    handed_late = waiter.result()
                    if handed_late is None:
                        self._open -= 1
                    self._hand_over(handed_late)
                raise
            if handed is not None:
                return handed
        else:
            self._open += 1
        return await self._open_new()

    async def _open_new(self) -> ModelConnection:
        """Connect in a task of its own: a caller that gives up does not abort it."""
        task = asyncio.get_running_loop().create_task(self._connect())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                self._adopt(task)
            else:
                task.add_done_callback(self._adopt)
            raise
        except BaseException:
            self._open -= 1
            self._hand_over(None)
            raise

    def _adopt(self, task: asyncio.Task[ModelConnection]) -> None:
        """A connection finished opening after its caller left: it joins the pool."""
        if task.cancelled() or task.exception() is not None:
            self._open -= 1
            self._hand_over(None)
        else:
            self._hand_over(task.result())

    def release(self, conn: ModelConnection, *, broken: bool = False) -> None:
        """Give ``conn`` back; ``broken`` (or closed) connections are closed and dropped."""
        if broken or conn.closed:
            self.proxy.close(conn)
            self._open -= 1
            self._hand_over(None)
            return
        self._hand_over(conn)

    def _hand_over(self, conn: ModelConnection | None) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                if conn is None:
                    self._open += 1  # the waiter opens a new connection in this slot
                waiter.set_result(conn)
                return
        if conn is not None:
            self._idle.append(conn)

    async def _connect(self) -> ModelConnection:
        conn = self.proxy.connect()
        try:
            for step in self.handshakes:
                await self.proxy.exchange(
                    conn, step.request_bytes, step.reply_bytes, step.service.sample(self.rng)
                )
        except BaseException:
            self.proxy.close(conn)
            raise
        return conn
