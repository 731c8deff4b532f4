"""Failure detector: recent outcomes → healthy / degraded / critical.

Defaults are the documented thresholds (TARGETS.md): **critical** at ≥ 3
failures in the last minute or ≥ 5 critical-severity failures in it;
otherwise **degraded** at a failure rate ≥ 25 % over the window; otherwise
**healthy**.

Outcomes are counted in ``bucket_s``-wide time buckets (1 s by default) on the
injected clock, so memory is constant whatever the call rate and the window's
edge is exact to one bucket: an event at time ``t`` counts while
``now - t < window_s``, with ``t`` rounded down to its bucket. Thread-safe.
"""

from __future__ import annotations

import enum
import math
import threading
from collections import Counter
from typing import Any, Literal

from resilience.clock import SYSTEM_CLOCK, Clock

__all__ = ["SEVERITIES", "FailureDetector", "HealthStatus", "Severity"]

_floor = math.floor

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")


class HealthStatus(enum.StrEnum):
    """Health of a dependency or of the service as a whole."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    CRITICAL = "critical"


class _Bucket:
    __slots__ = ("critical", "failures", "index", "successes")

    def __init__(self) -> None:
        self.index = -1
        self.successes = 0
        self.failures = 0
        self.critical = 0


class FailureDetector:
    """Counts successes and failures over a sliding window and grades health.

    - ``window_s`` (60): the window for the failure rate and the recent counts.
    - ``degraded_failure_rate`` (0.25): failure rate at or above which the
      status is at least DEGRADED.
    - ``critical_recent_failures`` (3): failures in the window that make it
      CRITICAL.
    - ``critical_severe_failures`` (5): critical-severity failures in the window
      that make it CRITICAL.
    - ``bucket_s`` (1.0): the counting resolution.

    Lifetime totals per severity and per component are kept as well (for
    reports); they do not affect :meth:`status`.
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        window_s: float = 60.0,
        degraded_failure_rate: float = 0.25,
        critical_recent_failures: int = 3,
        critical_severe_failures: int = 5,
        bucket_s: float = 1.0,
    ) -> None:
        if window_s <= 0 or bucket_s <= 0 or bucket_s > window_s:
            raise ValueError("need 0 < bucket_s <= window_s")
        if not 0 < degraded_failure_rate <= 1:
            raise ValueError(
                f"degraded_failure_rate must be in (0, 1], got {degraded_failure_rate}"
            )
        if critical_recent_failures < 1 or critical_severe_failures < 1:
            raise ValueError("critical thresholds must be at least 1")
        self.window_s = window_s
        self.degraded_failure_rate = degraded_failure_rate
        self.critical_recent_failures = critical_recent_failures
        self.critical_severe_failures = critical_severe_failures
        self.bucket_s = bucket_s
        self._clock = clock
        self._buckets = [_Bucket() for _ in range(math.ceil(window_s / bucket_s))]
        self._lock = threading.Lock()
        self.total_successes = 0
        self.total_failures = 0
        self.severity_totals: Counter[str] = Counter()
        """Lifetime failures per severity."""
        self.component_totals: Counter[str] = Counter()
        """Lifetime failures per component."""

    def _bucket(self, now: float) -> _Bucket:
        # Caller holds the lock.
        index = math.floor(now / self.bucket_s)
        bucket = self._buckets[index % len(self._buckets)]
        if bucket.index != index:
            bucket.index = index
            bucket.successes = bucket.failures = bucket.critical = 0
        return bucket

    def record_success(self) -> None:
        """Count one successful call.

        Called once per lookup, so :meth:`_bucket` is inlined and the lock
        taken with ``acquire``/``release`` (half the cost of ``with`` on 3.11).
        """
        now = self._clock.monotonic()
        lock = self._lock
        lock.acquire()
        try:
            index = _floor(now / self.bucket_s)
            buckets = self._buckets
            bucket = buckets[index % len(buckets)]
            if bucket.index != index:
                bucket.index = index
                bucket.successes = bucket.failures = bucket.critical = 0
            bucket.successes += 1
            self.total_successes += 1
        finally:
            lock.release()

    def record_failure(self, *, severity: Severity = "medium", component: str = "unknown") -> None:
        """Count one failed call of ``severity`` in ``component``."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        now = self._clock.monotonic()
        with self._lock:
            bucket = self._bucket(now)
            bucket.failures += 1
            if severity == "critical":
                bucket.critical += 1
            self.total_failures += 1
            self.severity_totals[severity] += 1
            self.component_totals[component] += 1

    def _window(self) -> tuple[int, int, int]:
        """(successes, failures, critical failures) within the window."""
        now_index = math.floor(self._clock.monotonic() / self.bucket_s)
        oldest = now_index - len(self._buckets) + 1
        successes = failures = critical = 0
        with self._lock:
            for bucket in self._buckets:
                if oldest <= bucket.index <= now_index:
                    successes += bucket.successes
                    failures += bucket.failures
                    critical += bucket.critical
        return successes, failures, critical

    @property
    def failure_rate(self) -> float:
        """Failures / calls within the window; 0.0 with no calls."""
        successes, failures, _ = self._window()
        calls = successes + failures
        return failures / calls if calls else 0.0

    @property
    def failures_last_minute(self) -> int:
        """Failures within the window (the last minute with the default ``window_s``)."""
        return self._window()[1]

    @property
    def critical_failures_last_minute(self) -> int:
        """Critical-severity failures within the window."""
        return self._window()[2]

    def status(self) -> HealthStatus:
        """CRITICAL, DEGRADED or HEALTHY by the thresholds above."""
        successes, failures, critical = self._window()
        return self._grade(successes, failures, critical)

    def _grade(self, successes: int, failures: int, critical: int) -> HealthStatus:
        if failures >= self.critical_recent_failures or critical >= self.critical_severe_failures:
            return HealthStatus.CRITICAL
        calls = successes + failures
        if calls and failures / calls >= self.degraded_failure_rate:
            return HealthStatus.DEGRADED
        return HealthStatus.HEALTHY

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready view: status, window counts, rate and lifetime totals."""
        successes, failures, critical = self._window()
        calls = successes + failures
        with self._lock:
            severity_totals = {name: self.severity_totals[name] for name in SEVERITIES}
            component_totals = dict(self.component_totals)
            total_successes, total_failures = self.total_successes, self.total_failures
        return {
            "status": self._grade(successes, failures, critical).value,
            "window_s": self.window_s,
            "calls": calls,
            "failures": failures,
            "critical_failures": critical,
            "failure_rate": failures / calls if calls else 0.0,
            "total_successes": total_successes,
            "total_failures": total_failures,
            "severity_totals": severity_totals,
            "component_totals": component_totals,
        }

    def reset(self) -> None:
        """Forget everything (window and totals)."""
        with self._lock:
            for bucket in self._buckets:
                bucket.index = -1
                bucket.successes = bucket.failures = bucket.critical = 0
            self.total_successes = self.total_failures = 0
            self.severity_totals.clear()
            self.component_totals.clear()

    def __repr__(self) -> str:
        return f"FailureDetector(window_s={self.window_s}, status={self.status().value!r})"
