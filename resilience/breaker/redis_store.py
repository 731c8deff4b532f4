"""A :class:`~resilience.breaker.store.BreakerStore` in Redis: one breaker for many processes.

Layout, per breaker name ``N`` (``prefix`` defaults to ``resilience:breaker``):

- hash ``{prefix}:{N}`` with the :class:`BreakerRecord` fields;
- channel ``{prefix}:events:{N}``, on which every stored record is published
  as JSON.

Writes are one Lua script (compare on ``version``, write, publish), so two
processes racing on a transition cannot both win; the loser gets the stored
record back and adopts it. Only transitions reach Redis: the breaker's hot
path never does. Records written by others arrive through pub/sub on a daemon
thread, which also re-reads the hashes every ``sync_interval_s`` so a message
lost while Redis was away is caught up.

When Redis is unreachable the store degrades to local state: :meth:`apply`
returns the caller's own record (the breaker goes on alone), :meth:`load`
returns ``None``, and Redis is not tried again for ``retry_interval_s``, so a
dead Redis costs at most one ``timeout_s`` per interval.

``client`` is a synchronous ``redis.Redis`` (the protocol is synchronous and
is called outside the breaker's lock, on transitions only).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from resilience.breaker.state import BreakerRecord, BreakerState
from resilience.clock import SYSTEM_CLOCK, Clock

__all__ = ["RedisBreakerStore"]

RecordCallback = Callable[[BreakerRecord], None]

_log = logging.getLogger(__name__)

_APPLY = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version'))
if current == nil or tonumber(ARGV[2]) > current then
  redis.call('HSET', KEYS[1], 'state', ARGV[1], 'version', ARGV[2], 'writer', ARGV[3],
             'opened_at_wall', ARGV[4], 'opens', ARGV[5], 'reason', ARGV[6])
  redis.call('PUBLISH', KEYS[2], ARGV[7])
end
return redis.call('HGETALL', KEYS[1])
"""


def _encode(record: BreakerRecord) -> dict[str, str]:
    return {
        "state": record.state.value,
        "version": str(record.version),
        "writer": record.writer,
        "opened_at_wall": "" if record.opened_at_wall is None else repr(record.opened_at_wall),
        "opens": str(record.opens),
        "reason": record.reason,
    }


def _decode(fields: dict[str, str]) -> BreakerRecord | None:
    if not fields or "version" not in fields:
        return None
    opened = fields.get("opened_at_wall") or ""
    return BreakerRecord(
        state=BreakerState(fields["state"]),
        version=int(fields["version"]),
        writer=fields.get("writer", ""),
        opened_at_wall=float(opened) if opened else None,
        opens=int(fields.get("opens") or 0),
        reason=fields.get("reason", ""),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


class RedisBreakerStore:
    """Breaker records shared through Redis, degrading to local state when Redis is away."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "resilience:breaker",
        sync_interval_s: float = 0.5,
        retry_interval_s: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._sync_interval_s = sync_interval_s
        self._retry_interval_s = retry_interval_s
        self._clock = clock
        self._script = client.register_script(_APPLY)
        self._lock = threading.Lock()
        self._watchers: dict[str, list[RecordCallback]] = {}
        self._seen: dict[str, int] = {}
        self._down_until: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.last_error: str | None = None

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 0.2, **kwargs: Any) -> RedisBreakerStore:
        """A store on a fresh synchronous client for ``url`` (commands bounded by ``timeout_s``)."""
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        return cls(client, **kwargs)

    # -- keys and state --------------------------------------------------------------

    def key(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    def channel(self, name: str) -> str:
        return f"{self._prefix}:events:{name}"

    @property
    def available(self) -> bool:
        """False while Redis is considered away (local state only)."""
        return self._down_until is None

    def _usable(self) -> bool:
        return self._down_until is None or self._clock.monotonic() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]
        self._down_until = self._clock.monotonic() + self._retry_interval_s

    # -- BreakerStore ----------------------------------------------------------------

    def load(self, name: str) -> BreakerRecord | None:
        if not self._usable():
            return None
        try:
            fields = self._client.hgetall(self.key(name))
        except Exception as exc:  # Redis away: the breaker starts from local state
            self._failed(exc)
            return None
        self._down_until = None
        record = _decode({_text(k): _text(v) for k, v in fields.items()})
        if record is not None:
            self._note(name, record.version)
        return record

    def apply(self, name: str, record: BreakerRecord) -> BreakerRecord:
        if not self._usable():
            return record
        encoded = _encode(record)
        message = json.dumps(encoded, separators=(",", ":"))
        try:
            flat = self._script(
                keys=[self.key(name), self.channel(name)],
                args=[*encoded.values(), message],
            )
        except Exception as exc:  # Redis away: this breaker goes on with its own record
            self._failed(exc)
            return record
        self._down_until = None
        stored = _decode(_pairs(list(flat))) or record
        self._note(name, stored.version)
        return stored

    def watch(self, name: str, callback: RecordCallback) -> None:
        with self._lock:
            self._watchers.setdefault(name, []).append(callback)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._follow, name=f"breaker-store-{self._prefix}", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop the subscriber thread (the client is the caller's to close)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self._sync_interval_s + 2.0)

    def __enter__(self) -> RedisBreakerStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisBreakerStore(prefix={self._prefix!r}, available={self.available})"

    # -- following other writers -----------------------------------------------------

    def _note(self, name: str, version: int) -> bool:
        """Remember ``version`` of ``name``; True when it is newer than anything seen."""
        with self._lock:
            if version <= self._seen.get(name, -1):
                return False
            self._seen[name] = version
            return True

    def _deliver(self, name: str, record: BreakerRecord) -> None:
        if not self._note(name, record.version):
            return
        with self._lock:
            callbacks = list(self._watchers.get(name, ()))
        for callback in callbacks:
            try:
                callback(record)
            except Exception:  # a broken watcher must not stop the others
                _log.exception("breaker store watcher failed for %s", name)

    def _follow(self) -> None:
        """Subscriber thread: pub/sub messages plus a periodic re-read of every hash."""
        pattern = f"{self._prefix}:events:*"
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(pattern)
                self._sync_all()
                next_sync = self._clock.monotonic() + self._sync_interval_s
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=self._sync_interval_s)
                    if message is not None and message.get("type") == "pmessage":
                        name = _text(message["channel"])[len(pattern) - 1 :]
                        record = _decode(json.loads(_text(message["data"])))
                        if record is not None:
                            self._deliver(name, record)
                    if self._clock.monotonic() >= next_sync:
                        self._sync_all()
                        next_sync = self._clock.monotonic() + self._sync_interval_s
            except Exception as exc:  # Redis away: wait, then subscribe again
                self._failed(exc)
                self._stop.wait(self._retry_interval_s)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # closing a dead connection may fail too
                        _log.debug("closing pubsub failed", exc_info=True)

    def _sync_all(self) -> None:
        with self._lock:
            names = list(self._watchers)
        for name in names:
            fields = self._client.hgetall(self.key(name))
            record = _decode({_text(k): _text(v) for k, v in fields.items()})
            if record is not None:
                self._deliver(name, record)
        self._down_until = None
