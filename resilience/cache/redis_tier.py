"""A Redis tier behind the in-memory cache: shared by processes, never fatal.

Values are stored under namespaced keys (``{prefix}:{namespace}:{key}``) as
the UUID text, or ``-`` for a cached "not found", with a TTL. Batches go
through one pipeline.

Redis being down must never fail a lookup: every command runs under
``timeout_s``; any error or timeout counts as a miss and marks the tier down
for ``retry_interval_s``, during which it is skipped without a round trip.
The first command after that interval probes Redis again, so the tier
recovers by itself. ``stats()`` reports hits, misses, errors and state.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from resilience.clock import SYSTEM_CLOCK, Clock

__all__ = ["NOT_FOUND", "NotFoundMarker", "RedisTier"]


class NotFoundMarker(enum.Enum):
    """The tier's answer for a cached "not found" (distinct from a miss, ``None``)."""

    NOT_FOUND = "not_found"


NOT_FOUND = NotFoundMarker.NOT_FOUND
_NEGATIVE = b"-"

TierValue = uuid.UUID | Literal[NotFoundMarker.NOT_FOUND]


class RedisTier:
    """Slug → UUID entries in Redis, with negative entries and self-healing degradation.

    ``client`` is a ``redis.asyncio.Redis`` (or anything with its ``get``,
    ``set``, ``delete``, ``pipeline`` and ``ping`` coroutines).
    """

    def __init__(
        self,
        client: Any,
        *,
        namespace: str = "slug",
        prefix: str = "resilience",
        ttl_s: float = 1800.0,
        negative_ttl_s: float = 60.0,
        timeout_s: float = 0.1,
        retry_interval_s: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._client = client
        self._prefix = f"{prefix}:{namespace}:"
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._negative_ttl_ms = max(1, round(negative_ttl_s * 1000))
        self._timeout_s = timeout_s
        self._retry_interval_s = retry_interval_s
        self._clock = clock
        self._down_until: float | None = None
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.skipped = 0
        self.last_error: str | None = None
        self.on_error: Callable[[BaseException], None] | None = None  # told every failure

    # -- state -----------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the tier is marked down (it will probe again by itself)."""
        return self._down_until is None

    def key(self, slug: str) -> str:
        return self._prefix + slug

    def stats(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
            "skipped": self.skipped,
            "last_error": self.last_error,
        }

    def _skip(self) -> bool:
        if self._down_until is None:
            return False
        if self._clock.monotonic() >= self._down_until:
            return False  # probe: this command decides whether Redis is back
        self.skipped += 1
        return True

    def _ok(self) -> None:
        self._down_until = None

    def _failed(self, exc: BaseException) -> None:
        if self.on_error is not None:
            self.on_error(exc)
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]
        self._down_until = self._clock.monotonic() + self._retry_interval_s

    async def _run(self, command: Any) -> tuple[bool, Any]:
        """Await ``command`` under the timeout; ``(False, None)`` when Redis failed."""
        try:
            async with asyncio.timeout(self._timeout_s):  # no extra task, unlike wait_for
                value = await command
        except Exception as exc:  # any driver, OS or timeout error degrades the tier
            self._failed(exc)
            return False, None
        self._ok()
        return True, value

    # -- single keys -------------------------------------------------------------

    async def get(self, slug: str) -> TierValue | None:
        """The cached UUID, :data:`NOT_FOUND`, or ``None`` on a miss or when Redis is down."""
        if self._down_until is not None and self._skip():
            return None
        command = self._client.get(self._prefix + slug)
        try:  # _run inlined: this is the tier's hot path (one coroutine less per lookup)
            async with asyncio.timeout(self._timeout_s):
                raw = await command
        except Exception as exc:
            self._failed(exc)
            self.misses += 1
            return None
        self._down_until = None
        value = _decode(raw)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    async def set(self, slug: str, value: uuid.UUID) -> bool:
        """Store ``slug`` → ``value``; False when Redis is down (nothing else happens)."""
        if self._skip():
            return False
        ok, _ = await self._run(self._client.set(self.key(slug), str(value), px=self._ttl_ms))
        return ok

    async def set_not_found(self, slug: str) -> bool:
        """Remember that ``slug`` does not exist, for ``negative_ttl_s``."""
        if self._skip():
            return False
        ok, _ = await self._run(
            self._client.set(self.key(slug), _NEGATIVE, px=self._negative_ttl_ms)
        )
        return ok

    async def delete(self, slug: str) -> bool:
        if self._skip():
            return False
        ok, _ = await self._run(self._client.delete(self.key(slug)))
        return ok

    # -- batches (one pipeline each) -------------------------------------------

    async def get_many(self, slugs: Iterable[str]) -> dict[str, TierValue]:
        """Cached entries among ``slugs`` (misses are absent); ``{}`` when Redis is down."""
        wanted = list(dict.fromkeys(slugs))
        if not wanted or self._skip():
            return {}
        ok, raws = await self._run(self._client.mget([self.key(s) for s in wanted]))
        if not ok:
            return {}
        found: dict[str, TierValue] = {}
        for slug, raw in zip(wanted, raws, strict=True):
            value = _decode(raw)
            if value is not None:
                found[slug] = value
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    async def set_many(self, found: Mapping[str, uuid.UUID], not_found: Iterable[str] = ()) -> bool:
        """Store many entries (and negative entries) in one pipelined round trip."""
        missing = list(not_found)
        if (not found and not missing) or self._skip():
            return False

        async def _pipeline() -> Any:
            pipe = self._client.pipeline(transaction=False)
            for slug, value in found.items():
                pipe.set(self.key(slug), str(value), px=self._ttl_ms)
            for slug in missing:
                pipe.set(self.key(slug), _NEGATIVE, px=self._negative_ttl_ms)
            return await pipe.execute()

        ok, _ = await self._run(_pipeline())
        return ok

    async def ping(self) -> bool:
        """Probe Redis now, whatever the down state (for health checks)."""
        ok, _ = await self._run(self._client.ping())
        return ok


def _decode(raw: object) -> TierValue | None:
    if raw is None:
        return None
    if type(raw) is not bytes:  # bytearray, str (decode_responses=True), anything else
        raw = bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw)
    return _parse(raw)


@functools.lru_cache(maxsize=4096)
def _parse(raw: bytes | str) -> TierValue | None:
    """A stored value parsed once per distinct value (hot keys repeat; UUIDs are immutable)."""
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    if text == "-":
        return NOT_FOUND
    try:
        return uuid.UUID(text)
    except ValueError:  # a foreign or corrupt value under our key: treat as a miss
        return None
