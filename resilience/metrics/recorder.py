"""Per-call records aggregated into counters, rates and exact histograms.

Every lookup (or other operation) is recorded once with its outcome, the path
that answered it, its duration in microseconds and the attempts it took::

    recorder.record(outcome="success", path="cache", duration_us=83)

Derived rates, per operation, over calls that were **not** ``invalid``
(invalid input is the caller's fault, not the system's):

- ``hit_rate``: calls answered from ``cache`` or ``redis`` (whatever the outcome,
  so a cached "not found" is a hit);
- ``success_rate`` / ``fallback_rate`` / ``error_rate``: share of each outcome.

``invalid_rate`` is over all calls. Rates are ``None`` with no calls to divide by.

Sinks (objects with ``on_record(record)``, e.g. the analytics batcher) receive
a frozen :class:`OperationRecord` per call, outside the lock; a sink that
raises is counted in ``sink_errors`` and never breaks the caller. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.metrics.histogram import Histogram

__all__ = [
    "OUTCOMES",
    "PATHS",
    "MetricsRecorder",
    "MetricsSink",
    "OperationRecord",
    "Outcome",
    "Path",
]

Outcome = Literal["success", "fallback", "error", "invalid"]
Path = Literal["cache", "redis", "db", "fallback", "none"]
OUTCOMES: tuple[Outcome, ...] = ("success", "fallback", "error", "invalid")
PATHS: tuple[Path, ...] = ("cache", "redis", "db", "fallback", "none")
_OUTCOME_SET = frozenset(OUTCOMES)
_PATH_SET = frozenset(PATHS)
_HIT_PATHS = frozenset({"cache", "redis"})


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One recorded call, as sinks receive it."""

    operation: str
    outcome: Outcome
    path: Path
    duration_us: int
    attempts: int
    at_s: float
    """The recorder clock's wall time (Unix seconds) when it was recorded."""


@runtime_checkable
class MetricsSink(Protocol):
    """Receives every record (e.g. to batch rows into ``analytics_events``)."""

    def on_record(self, record: OperationRecord) -> None: ...


class _Operation:
    __slots__ = (
        "attempts",
        "count",
        "hits",
        "latency_by_path",
        "outcomes",
        "paths",
        "retried",
    )

    def __init__(self) -> None:
        self.count = 0
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.paths: dict[str, int] = dict.fromkeys(PATHS, 0)
        self.attempts = 0
        self.retried = 0
        self.hits = 0
        self.latency_by_path: dict[str, Histogram] = {}

    def overall_latency(self) -> Histogram:
        """All paths merged (kept per path only, so each call records once)."""
        overall = Histogram()
        for histogram in self.latency_by_path.values():
            overall.merge(histogram)
        return overall


def _reject(outcome: str, path: str, duration_us: int, attempts: int) -> None:
    if outcome not in _OUTCOME_SET:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    if path not in _PATH_SET:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    raise ValueError(
        f"duration_us and attempts must not be negative, got {duration_us} and {attempts}"
    )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class MetricsRecorder:
    """Aggregates :meth:`record` calls; :meth:`snapshot` gives a JSON-ready dict."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, sinks: Iterable[MetricsSink] = ()) -> None:
        self._clock = clock
        self._sinks: tuple[MetricsSink, ...] = tuple(sinks)
        self._lock = threading.Lock()
        self._operations: dict[str, _Operation] = {}
        self._started_s = clock.monotonic()
        self.sink_errors = 0
        """Exceptions raised by sinks (swallowed)."""

    def add_sink(self, sink: MetricsSink) -> None:
        """Also send every future record to ``sink``."""
        with self._lock:
            self._sinks = (*self._sinks, sink)

    def record(
        self,
        *,
        operation: str = "lookup",
        outcome: Outcome,
        path: Path,
        duration_us: int,
        attempts: int = 1,
    ) -> None:
        """Count one call. ``duration_us`` is a non-negative integer of microseconds."""
        if outcome not in _OUTCOME_SET or path not in _PATH_SET or duration_us < 0 or attempts < 0:
            _reject(outcome, path, duration_us, attempts)
        self.add(operation, outcome, path, duration_us, attempts)

    def add(
        self, operation: str, outcome: Outcome, path: Path, duration_us: int, attempts: int
    ) -> None:
        """:meth:`record` unchecked and positional: the per-lookup hot path.

        For callers whose values are valid by construction (the lookup
        service): nothing is checked. The lock is taken with ``acquire`` and
        ``release`` rather than ``with``, which costs twice as much on CPython 3.11.
        """
        lock = self._lock
        lock.acquire()
        try:
            op = self._operations.get(operation)
            if op is None:
                op = self._operations[operation] = _Operation()
            op.count += 1
            op.outcomes[outcome] += 1
            op.paths[path] += 1
            op.attempts += attempts
            if attempts > 1:
                op.retried += 1
            if outcome != "invalid" and path in _HIT_PATHS:
                op.hits += 1
            by_path = op.latency_by_path.get(path)
            if by_path is None:
                by_path = op.latency_by_path[path] = Histogram()
            by_path.add(duration_us)
            sinks = self._sinks
        finally:
            lock.release()
        if sinks:
            record = OperationRecord(
                operation, outcome, path, duration_us, attempts, self._clock.wall()
            )
            for sink in sinks:
                try:
                    sink.on_record(record)
                except Exception:
                    with self._lock:
                        self.sink_errors += 1

    def histogram(self, operation: str = "lookup", path: Path | None = None) -> Histogram:
        """A copy of the latency histogram of ``operation`` (one ``path``, or all)."""
        with self._lock:
            op = self._operations.get(operation)
            if op is None:
                return Histogram()
            if path is None:
                return op.overall_latency()
            found = op.latency_by_path.get(path)
            return found.copy() if found is not None else Histogram()

    def snapshot(self) -> dict[str, Any]:
        """Counters, rates and latency summaries (µs) per operation; JSON-ready.

        Shape::

            {"uptime_s": 12.5, "sink_errors": 0, "operations": {"lookup": {
                "count": 100, "outcomes": {"success": 95, ...}, "paths": {"cache": 70, ...},
                "attempts": 104, "retried": 3,
                "hit_rate": 0.7, "success_rate": 0.95, "fallback_rate": 0.05,
                "error_rate": 0.0, "invalid_rate": 0.0,
                "latency_us": {"all": {"count", "min", "max", "mean", "sum",
                                       "p50", "p90", "p95", "p99", "p999"},
                               "cache": {...}, "db": {...}}}}}
        """
        with self._lock:
            operations = {name: self._describe(op) for name, op in self._operations.items()}
            sink_errors = self.sink_errors
        return {
            "uptime_s": self._clock.monotonic() - self._started_s,
            "sink_errors": sink_errors,
            "operations": operations,
        }

    @staticmethod
    def _describe(op: _Operation) -> dict[str, Any]:
        valid = op.count - op.outcomes["invalid"]
        latency = {"all": op.overall_latency().summary()}
        for path in PATHS:
            histogram = op.latency_by_path.get(path)
            if histogram is not None:
                latency[path] = histogram.summary()
        return {
            "count": op.count,
            "outcomes": dict(op.outcomes),
            "paths": dict(op.paths),
            "attempts": op.attempts,
            "retried": op.retried,
            "hit_rate": _ratio(op.hits, valid),
            "success_rate": _ratio(op.outcomes["success"], valid),
            "fallback_rate": _ratio(op.outcomes["fallback"], valid),
            "error_rate": _ratio(op.outcomes["error"], valid),
            "invalid_rate": _ratio(op.outcomes["invalid"], op.count),
            "latency_us": latency,
        }

    def state(self) -> dict[str, Any]:
        """Lossless, JSON-ready counters and histograms, for :meth:`merge_state` elsewhere.

        Unlike :meth:`snapshot` (derived figures), this can be summed exactly
        across processes: ``{"sink_errors": n, "operations": {name: {"count",
        "outcomes", "paths", "attempts", "retried", "hits",
        "latency_us": {path: Histogram.to_dict()}}}}``.
        """
        with self._lock:
            operations = {
                name: {
                    "count": op.count,
                    "outcomes": dict(op.outcomes),
                    "paths": dict(op.paths),
                    "attempts": op.attempts,
                    "retried": op.retried,
                    "hits": op.hits,
                    "latency_us": {p: h.to_dict() for p, h in op.latency_by_path.items()},
                }
                for name, op in self._operations.items()
            }
            return {"sink_errors": self.sink_errors, "operations": operations}

    def merge_state(self, state: Mapping[str, Any]) -> None:
        """Add a :meth:`state` (another recorder's, e.g. another worker's) into this one.

        Sinks are not called. Unknown outcome or path names raise ``ValueError``.
        """
        with self._lock:
            self.sink_errors += int(state.get("sink_errors", 0))
            for name, data in state.get("operations", {}).items():
                op = self._operations.get(name)
                if op is None:
                    op = self._operations[name] = _Operation()
                op.count += int(data["count"])
                for key, n in data["outcomes"].items():
                    if key not in _OUTCOME_SET:
                        raise ValueError(f"unknown outcome {key!r} in a recorder state")
                    op.outcomes[key] += int(n)
                for key, n in data["paths"].items():
                    if key not in _PATH_SET:
                        raise ValueError(f"unknown path {key!r} in a recorder state")
                    op.paths[key] += int(n)
                op.attempts += int(data["attempts"])
                op.retried += int(data["retried"])
                op.hits += int(data["hits"])
                for path, counts in data["latency_us"].items():
                    if path not in _PATH_SET:
                        raise ValueError(f"unknown path {path!r} in a recorder state")
                    histogram = op.latency_by_path.get(path)
                    if histogram is None:
                        histogram = op.latency_by_path[path] = Histogram()
                    histogram.merge(Histogram.from_dict(counts))

    def reset(self) -> None:
        """Forget every count and histogram (sinks stay)."""
        with self._lock:
            self._operations.clear()
            self._started_s = self._clock.monotonic()
            self.sink_errors = 0
