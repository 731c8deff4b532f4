"""Where a breaker's shared state lives.

Per-call data (sliding windows, consecutive failures, half-open trial counts)
stays inside each :class:`~resilience.breaker.CircuitBreaker`: the hot path
never touches a store. Only *transitions* go through the store, as
:class:`~resilience.breaker.state.BreakerRecord` values with a growing
``version``:

- :meth:`BreakerStore.apply` keeps a record only if its version is higher than
  the stored one (or nothing is stored) and returns what is stored afterwards.
  A breaker that loses a race adopts the winner.
- :meth:`BreakerStore.load` gives the current record when a breaker starts.
- :meth:`BreakerStore.watch` registers a callback for records written by
  others, so an opening in one process reaches the others without polling on
  every call. Callbacks may run on any thread (a Redis store would call them
  from its subscriber thread); the breaker ignores records it already has.

A Redis implementation maps this onto one hash per breaker, a Lua script for
the compare-on-version write, and pub/sub for ``watch``. Breakers never hold
their lock while calling a store, so a store may block briefly or call back
synchronously.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from resilience.breaker.state import BreakerRecord

__all__ = ["BreakerStore", "InMemoryBreakerStore", "RecordCallback"]

RecordCallback = Callable[[BreakerRecord], None]


@runtime_checkable
class BreakerStore(Protocol):
    """Shared breaker records, keyed by breaker name."""

    def load(self, name: str) -> BreakerRecord | None:
        """The stored record of ``name``, or ``None`` if nothing was written yet."""
        ...

    def apply(self, name: str, record: BreakerRecord) -> BreakerRecord:
        """Store ``record`` if its version is higher than the stored one; return the stored one."""
        ...

    def watch(self, name: str, callback: RecordCallback) -> None:
        """Call ``callback(record)`` whenever a record of ``name`` is stored."""
        ...


class InMemoryBreakerStore:
    """A process-local store; the default, one per breaker.

    Share one instance between several breakers of the same name to make them
    behave as one (this is how tests model several processes).
    """

    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}
        self._watchers: dict[str, list[RecordCallback]] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> BreakerRecord | None:
        return self._records.get(name)

    def apply(self, name: str, record: BreakerRecord) -> BreakerRecord:
        with self._lock:
            current = self._records.get(name)
            if current is not None and current.version >= record.version:
                return current
            self._records[name] = record
            watchers = list(self._watchers.get(name, ()))
        for callback in watchers:  # outside the lock: callbacks may take their own locks
            callback(record)
        return record

    def watch(self, name: str, callback: RecordCallback) -> None:
        with self._lock:
            self._watchers.setdefault(name, []).append(callback)

    def __repr__(self) -> str:
        return f"InMemoryBreakerStore(names={sorted(self._records)!r})"
