"""Sliding windows of call outcomes, O(1) per recorded call.

A window answers one question for the breaker: over the recent calls, how many
were there, how many failed and how many were slow? Two kinds:

- :class:`CountWindow` ``(size)``: the last ``size`` calls (a ring buffer).
- :class:`TimeWindow` ``(seconds, buckets)``: the calls of the last
  ``seconds``, kept in ``buckets`` equal time slices; a call leaves the window
  when its whole slice has aged out, so the window covers between
  ``seconds - seconds/buckets`` and ``seconds`` of history.

The specs are frozen and shareable; :meth:`~CountWindow.create` builds the
mutable counter a single breaker owns. Counters are not thread-safe by
themselves: the breaker updates them under its lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

__all__ = ["FAILED", "SLOW", "CountWindow", "OutcomeCounter", "TimeWindow", "WindowSpec"]

FAILED = 1
"""Outcome flag: the call failed."""
SLOW = 2
"""Outcome flag: the call took at least the slow-call duration."""

_NO_SLICE = -(2**62)


class OutcomeCounter(Protocol):
    """Mutable outcome totals over a sliding window."""

    needs_time: bool
    """True when :meth:`record` and :meth:`totals` use ``now`` (time windows)."""

    def record(self, flags: int, now: float) -> None:
        """Add one call with outcome ``flags`` (``FAILED | SLOW`` bits) at ``now``."""
        ...

    def totals(self, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow_calls)`` currently inside the window."""
        ...

    def clear(self) -> None:
        """Forget every recorded call."""
        ...


class WindowSpec(Protocol):
    """A frozen window description that builds one counter per breaker."""

    def create(self) -> OutcomeCounter: ...


@dataclass(frozen=True, slots=True)
class CountWindow:
    """The last ``size`` calls."""

    size: int = 100

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"CountWindow size must be >= 1, got {self.size}")

    def create(self) -> OutcomeCounter:
        return _CountCounter(self.size)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The calls of the last ``seconds`` seconds, in ``buckets`` slices."""

    seconds: float = 60.0
    buckets: int = 60

    def __post_init__(self) -> None:
        if not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise ValueError(f"TimeWindow seconds must be a positive number, got {self.seconds}")
        if self.buckets < 1:
            raise ValueError(f"TimeWindow buckets must be >= 1, got {self.buckets}")

    def create(self) -> OutcomeCounter:
        return _TimeCounter(self.seconds, self.buckets)


class _CountCounter:
    """Ring buffer of outcome flags with running totals.

    Plain successes are the common case, so the breaker may just bump
    :attr:`pending` (the number of successes not yet written to the ring); they
    are folded in, in order, before the next :meth:`record` or :meth:`totals`.
    Each success is folded once, so the cost stays O(1) amortised per call.
    """

    __slots__ = (
        "_filled",
        "_index",
        "_ring",
        "_size",
        "calls",
        "failures",
        "needs_time",
        "pending",
        "slow",
    )

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = [0] * size
        self._index = 0
        self._filled = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0
        self.pending = 0
        self.needs_time = False

    def _fold(self) -> None:
        k = self.pending
        self.pending = 0
        size = self._size
        if k >= size:
            self._ring = [0] * size
            self._filled = self.calls = size
            self.failures = self.slow = 0
            return
        ring = self._ring
        i = self._index
        for _ in range(k):
            if self._filled == size:
                old = ring[i]
                if old:
                    self.failures -= old & FAILED
                    self.slow -= old >> 1
                    ring[i] = 0
            else:
                self._filled += 1
                self.calls += 1
                ring[i] = 0
            i += 1
            if i == size:
                i = 0
        self._index = i

    def record(self, flags: int, now: float) -> None:
        if self.pending:
            self._fold()
        i = self._index
        ring = self._ring
        if self._filled == self._size:
            old = ring[i]
            if old:
                self.failures -= old & FAILED
                self.slow -= old >> 1
        else:
            self._filled += 1
            self.calls += 1
        ring[i] = flags
        if flags:
            self.failures += flags & FAILED
            self.slow += flags >> 1
        i += 1
        self._index = 0 if i == self._size else i

    def totals(self, now: float) -> tuple[int, int, int]:
        if self.pending:
            self._fold()
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        self._ring = [0] * self._size
        self._index = self._filled = self.calls = self.failures = self.slow = self.pending = 0


class _TimeCounter:
    """Per-slice counts indexed by slice number modulo ``buckets``.

    A slice is reused when time reaches it again; stale slices are subtracted
    lazily. Catching up after a gap touches at most ``buckets`` slices, so a
    call costs O(1) amortised (O(buckets) worst case after a long idle spell).
    """

    __slots__ = (
        "_bucket_s",
        "_buckets",
        "_epochs",
        "_fail",
        "_head",
        "_n",
        "_slow",
        "calls",
        "failures",
        "needs_time",
        "slow",
    )

    def __init__(self, seconds: float, buckets: int) -> None:
        self._buckets = buckets
        self._bucket_s = seconds / buckets
        self._epochs = [_NO_SLICE] * buckets
        self._n = [0] * buckets
        self._fail = [0] * buckets
        self._slow = [0] * buckets
        self._head = _NO_SLICE  # newest slice number seen
        self.calls = self.failures = self.slow = 0
        self.needs_time = True

    def _advance(self, now: float) -> int:
        epoch = math.floor(now / self._bucket_s)
        if epoch > self._head:
            oldest_kept = epoch - self._buckets + 1
            start = max(self._head + 1, oldest_kept)
            for e in range(start, epoch + 1):
                i = e % self._buckets
                if self._epochs[i] != e:
                    self.calls -= self._n[i]
                    self.failures -= self._fail[i]
                    self.slow -= self._slow[i]
                    self._epochs[i] = e
                    self._n[i] = self._fail[i] = self._slow[i] = 0
            self._head = epoch
        return epoch

    def record(self, flags: int, now: float) -> None:
        epoch = self._advance(now)
        if epoch < self._head - self._buckets + 1:
            return  # older than the window (clock went backwards): drop
        i = epoch % self._buckets
        if self._epochs[i] != epoch:
            return
        self._n[i] += 1
        self.calls += 1
        f = flags & FAILED
        s = (flags & SLOW) >> 1
        self._fail[i] += f
        self.failures += f
        self._slow[i] += s
        self.slow += s

    def totals(self, now: float) -> tuple[int, int, int]:
        self._advance(now)
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        b = self._buckets
        self._epochs = [_NO_SLICE] * b
        self._n = [0] * b
        self._fail = [0] * b
        self._slow = [0] * b
        self._head = _NO_SLICE
        self.calls = self.failures = self.slow = 0
