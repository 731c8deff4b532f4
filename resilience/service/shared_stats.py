"""``/stats`` and ``/metrics`` over every worker: snapshots shared through Redis.

``resilience serve --workers N`` runs N processes; each answers only what it
saw. :class:`SharedStats` makes them one service again:

- every worker publishes its *mergeable* state (counters and exact µs
  histograms, :meth:`LookupService.worker_state`) every ``publish_interval_s``,
  on demand, and once more on shutdown, as JSON under
  ``<prefix>:stats:worker:<id>`` with a TTL of ``ttl_s``; an index
  (``<prefix>:stats:workers``, a sorted set scored by publication time) lists
  the ids so no ``SCAN`` is needed;
- :meth:`collect` (behind ``GET /stats`` and ``GET /metrics``) first asks the
  others for a fresh snapshot (``PUBLISH <prefix>:stats:refresh <token>``;
  each answers by publishing at once with the token), waits for their answers
  at most ``refresh_timeout_s``, and returns the live workers' states. The
  caller merges them with its own fresh state. A worker that stopped is
  counted until its key expires (``ttl_s``), then dropped.

Redis trouble never fails a request: :meth:`collect` raises
:class:`SharedStatsUnavailable` and the caller answers with its own counts
(``scope: "worker"``), and for ``retry_interval_s`` after a failure it does
so without trying. Every Redis command is bounded by ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["SharedStats", "SharedStatsUnavailable", "WorkerSnapshot"]

T = TypeVar("T")
WorkerSnapshot = dict[str, Any]
"""``{"worker": id, "pid": n, "at_s": unix seconds, "answered": [tokens], "state": {...}}``."""
_ANSWERED = 8
"""Refresh tokens a snapshot remembers having answered (concurrent ``/stats`` calls)."""
_POLL_S = 0.01


class SharedStatsUnavailable(ConnectionError):
    """Redis could not be read or written; the caller falls back to its own counts."""


class SharedStats:
    """One worker's side of the shared statistics (publisher and reader).

    ``client`` is a ``redis.asyncio.Redis``; ``state`` returns this worker's
    JSON-ready mergeable state. ``worker_id`` defaults to a random id (pid
    included, for people reading Redis). Call :meth:`start` inside the event
    loop and :meth:`aclose` on shutdown (it publishes a final snapshot).
    """

    def __init__(
        self,
        client: Any,
        *,
        state: Callable[[], dict[str, Any]],
        prefix: str = "resilience",
        worker_id: str | None = None,
        publish_interval_s: float = 1.0,
        ttl_s: float = 5.0,
        refresh_timeout_s: float = 0.5,
        timeout_s: float = 0.5,
        retry_interval_s: float = 1.0,
    ) -> None:
        if ttl_s <= 0 or publish_interval_s <= 0:
            raise ValueError("ttl_s and publish_interval_s must be positive")
        self._client = client
        self._state = state
        self.worker_id = worker_id or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.publish_interval_s = publish_interval_s
        self.ttl_s = ttl_s
        self.refresh_timeout_s = refresh_timeout_s
        self.timeout_s = timeout_s
        self.retry_interval_s = retry_interval_s
        self._down_until = 0.0
        self._prefix = f"{prefix}:stats"
        self._index = f"{self._prefix}:workers"
        self._channel = f"{self._prefix}:refresh"
        self._answered: deque[str] = deque(maxlen=_ANSWERED)
        self._own_tokens: deque[str] = deque(maxlen=_ANSWERED)
        self._task: asyncio.Task[None] | None = None
        self._pubsub: Any = None
        self._owns_client = False
        self.published = 0
        self.failures = 0
        self.last_error: str | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        state: Callable[[], dict[str, Any]],
        timeout_s: float = 0.5,
        **options: Any,
    ) -> SharedStats:
        """With its own client, closed by :meth:`aclose`.

        No client-side retries, so a failing command fails within ``timeout_s``
        (redis-py's default retries back off for seconds and outlived
        cancellation in our tests), and no socket timeout under the refresh
        subscription's long reads.
        """
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )
        shared = cls(client, state=state, timeout_s=timeout_s, **options)
        shared._owns_client = True
        return shared

    def key(self, worker_id: str) -> str:
        """The Redis key of a worker's snapshot."""
        return f"{self._prefix}:worker:{worker_id}"

    # -- publishing --------------------------------------------------------------------

    async def publish(self) -> bool:
        """Write this worker's snapshot now; ``False`` (counted) when Redis failed."""
        snapshot: WorkerSnapshot = {
            "worker": self.worker_id,
            "pid": os.getpid(),
            "at_s": time.time(),
            "answered": list(self._answered),
            "state": self._state(),
        }
        payload = json.dumps(snapshot, separators=(",", ":"))
        now_ms = int(snapshot["at_s"] * 1000)
        ttl_ms = max(1, int(self.ttl_s * 1000))
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.set(self.key(self.worker_id), payload, px=ttl_ms)
            pipe.zadd(self._index, {self.worker_id: now_ms})
            # Index entries far older than any TTL belong to workers that are gone.
            pipe.zremrangebyscore(self._index, "-inf", now_ms - 10 * ttl_ms)
            await self._bounded(pipe.execute())
        except Exception as exc:
            self._failed(exc)
            return False
        self.published += 1
        return True

    def start(self) -> None:
        """Publish every ``publish_interval_s`` and whenever another worker asks."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="shared-stats")

    async def aclose(self) -> None:
        """Stop publishing, publish a final snapshot (kept for ``ttl_s``), unsubscribe."""
        task, self._task = self._task, None
        if task is not None:
            await _cancel_until_done(task, 4 * self.timeout_s)
        await self.publish()
        await self._drop_pubsub()
        if self._owns_client:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.aclose(), self.timeout_s)

    async def _run(self) -> None:
        while True:
            await self.publish()
            await self._wait_for_turn()

    async def _wait_for_turn(self) -> None:
        """Return after ``publish_interval_s``, or earlier when a refresh is asked for."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_interval_s
        while (left := deadline - loop.time()) > 0:
            try:
                if self._pubsub is None:
                    pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                    self._pubsub = pubsub
                    await self._bounded(pubsub.subscribe(self._channel))
                message = await self._pubsub.get_message(timeout=left)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
                await self._drop_pubsub()
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                return
            if message is None or message.get("type") != "message":
                continue
            token = _text(message.get("data"))
            if token in self._own_tokens:
                continue  # our own request: the asking worker uses its fresh state
            self._answered.append(token)
            return

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), self.timeout_s)

    # -- reading -----------------------------------------------------------------------

    async def collect(self, *, fresh: bool = True) -> tuple[list[WorkerSnapshot], int]:
        """(the *other* live workers' snapshots, how many of them did not answer in time).

        With ``fresh`` the others are asked to publish first and awaited up to
        ``refresh_timeout_s``; a worker that does not answer (busy, or its
        subscription is down) is used with its last snapshot and counted as
        stale. Raises :class:`SharedStatsUnavailable` when Redis fails, and at
        once, without a round trip, for ``retry_interval_s`` after a failure (a
        hung Redis costs one request ``timeout_s``, not every request).
        """
        loop = asyncio.get_running_loop()
        if loop.time() < self._down_until:
            raise SharedStatsUnavailable(f"Redis failed recently: {self.last_error}")
        try:
            token: str | None = None
            if fresh and self.refresh_timeout_s > 0:
                token = uuid.uuid4().hex
                self._own_tokens.append(token)
                listeners = int(await self._bounded(self._client.publish(self._channel, token)))
                if listeners <= 1:  # nobody but ourselves (or nobody) to wait for
                    token = None
            deadline = loop.time() + self.refresh_timeout_s
            while True:
                others = await self._read_others()
                stale = sum(1 for s in others if token is not None and token not in s["answered"])
                if not stale or loop.time() >= deadline:
                    return others, stale
                await asyncio.sleep(_POLL_S)
        except SharedStatsUnavailable:
            raise
        except Exception as exc:
            self._failed(exc)
            self._down_until = loop.time() + self.retry_interval_s
            raise SharedStatsUnavailable(self.last_error or "Redis failed") from exc

    async def _read_others(self) -> list[WorkerSnapshot]:
        ids = [_text(i) for i in await self._bounded(self._client.zrange(self._index, 0, -1))]
        ids = [i for i in ids if i != self.worker_id]
        if not ids:
            return []
        raw = await self._bounded(self._client.mget([self.key(i) for i in ids]))
        snapshots: list[WorkerSnapshot] = []
        for payload in raw:
            if payload is None:
                continue  # expired: the worker stopped publishing more than ttl_s ago
            snapshot = json.loads(payload)
            if isinstance(snapshot, dict) and isinstance(snapshot.get("state"), dict):
                snapshot.setdefault("answered", [])
                snapshots.append(snapshot)
        return snapshots

    # -- helpers -----------------------------------------------------------------------

    async def _bounded(self, awaitable: Awaitable[T]) -> T:
        return await asyncio.wait_for(awaitable, self.timeout_s)

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]

    def stats(self) -> dict[str, Any]:
        """This worker's publishing counters (``worker``, ``published``, ``failures``)."""
        return {
            "worker": self.worker_id,
            "published": self.published,
            "failures": self.failures,
            "last_error": self.last_error,
        }


async def _cancel_until_done(task: asyncio.Task[Any], timeout_s: float) -> bool:
    """Cancel ``task`` again and again until it ends, for at most ``timeout_s``.

    One ``cancel()`` is not always enough: a cancellation can be swallowed on
    its way through the Redis client's calls (Python 3.11's ``wait_for``
    returns instead of raising when its timeout and the cancel meet, and
    redis-py 8's ``PubSub.aclose`` shields its teardown). Seen under load: the
    publisher stayed "cancelling", waiting on a future nobody resolved, and the
    event loop's own shutdown (one ``cancel()`` per task, then waiting without
    limit) hung: the 300 s teardown timeouts of
    ``test_redis_down_gives_local_stats``. A later ``cancel()`` wakes such a
    wait. Returns whether the task ended.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=min(0.05, left))
    return True


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
