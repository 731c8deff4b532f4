"""Failure detector: thresholds from TARGETS.md, sliding window, thread safety."""

from __future__ import annotations

import threading

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from resilience.clock import SYSTEM_CLOCK, ManualClock
from resilience.detector import FailureDetector, HealthStatus


def test_no_calls_is_healthy() -> None:
    detector = FailureDetector(clock=ManualClock())
    assert detector.status() is HealthStatus.HEALTHY
    assert detector.failure_rate == 0.0
    assert detector.failures_last_minute == 0


def test_failure_rate_at_25_percent_is_degraded() -> None:
    detector = FailureDetector(clock=ManualClock())
    for _ in range(3):
        detector.record_success()
    detector.record_failure()
    assert detector.failure_rate == 0.25
    assert detector.status() is HealthStatus.DEGRADED


def test_failure_rate_below_25_percent_is_healthy() -> None:
    detector = FailureDetector(clock=ManualClock())
    for _ in range(4):
        detector.record_success()
    detector.record_failure()
    assert detector.failure_rate == 0.2
    assert detector.status() is HealthStatus.HEALTHY


def test_three_failures_in_a_minute_are_critical_whatever_the_rate() -> None:
    detector = FailureDetector(clock=ManualClock())
    for _ in range(1000):
        detector.record_success()
    for _ in range(3):
        detector.record_failure(severity="low")
    assert detector.failure_rate < 0.01
    assert detector.status() is HealthStatus.CRITICAL


def test_five_critical_severity_failures_are_critical() -> None:
    detector = FailureDetector(clock=ManualClock(), critical_recent_failures=100)
    for _ in range(1000):
        detector.record_success()
    for _ in range(4):
        detector.record_failure(severity="critical")
    assert detector.status() is HealthStatus.HEALTHY
    detector.record_failure(severity="critical")
    assert detector.critical_failures_last_minute == 5
    assert detector.status() is HealthStatus.CRITICAL


def test_failures_age_out_of_the_window() -> None:
    clock = ManualClock()
    detector = FailureDetector(clock=clock)
    for _ in range(3):
        detector.record_failure()
    assert detector.status() is HealthStatus.CRITICAL
    clock.advance(59.0)
    assert detector.failures_last_minute == 3
    clock.advance(1.0)
    assert detector.failures_last_minute == 0
    assert detector.status() is HealthStatus.HEALTHY
    assert detector.total_failures == 3


def test_window_is_sliding_bucket_by_bucket() -> None:
    clock = ManualClock()
    detector = FailureDetector(clock=clock)
    detector.record_failure()
    clock.advance(30.0)
    detector.record_failure()
    clock.advance(30.0)  # first failure (t=0) leaves, second (t=30) stays
    assert detector.failures_last_minute == 1
    detector.record_success()
    assert detector.failure_rate == 0.5


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 20.0), st.booleans()), max_size=60))
def test_window_counts_match_a_reference(events: list[tuple[float, bool]]) -> None:
    """Counts equal those of a plain list filtered by whole-second buckets."""
    clock = ManualClock()
    detector = FailureDetector(clock=clock)
    history: list[tuple[int, bool]] = []
    for gap, failed in events:
        clock.advance(gap)
        if failed:
            detector.record_failure()
        else:
            detector.record_success()
        history.append((int(clock.monotonic()), failed))
        now = int(clock.monotonic())
        recent = [f for second, f in history if now - second < 60]
        assert detector.failures_last_minute == sum(recent)
        expected_rate = sum(recent) / len(recent) if recent else 0.0
        assert detector.failure_rate == pytest.approx(expected_rate)


def test_lifetime_totals_by_severity_and_component() -> None:
    detector = FailureDetector(clock=ManualClock())
    detector.record_failure(severity="high", component="db")
    detector.record_failure(severity="low", component="redis")
    detector.record_failure(severity="high", component="db")
    snap = detector.snapshot()
    assert snap["severity_totals"] == {"low": 1, "medium": 0, "high": 2, "critical": 0}
    assert snap["component_totals"] == {"db": 2, "redis": 1}
    assert snap["status"] == "critical"


def test_unknown_severity_is_refused() -> None:
    detector = FailureDetector(clock=ManualClock())
    with pytest.raises(ValueError, match="severity"):
        detector.record_failure(severity="apocalyptic")  # type: ignore[arg-type]


def test_threads_lose_no_counts() -> None:
    detector = FailureDetector(clock=ManualClock(), critical_recent_failures=10**9)

    def worker() -> None:
        for i in range(2000):
            if i % 4 == 0:
                detector.record_failure(component="db")
            else:
                detector.record_success()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert detector.failures_last_minute == 8 * 500
    assert detector.total_successes == 8 * 1500
    assert detector.failure_rate == 0.25
    assert detector.status() is HealthStatus.DEGRADED


def test_system_clock_under_freezegun() -> None:
    with freeze_time("2026-01-01 00:00:00") as frozen:
        detector = FailureDetector(clock=SYSTEM_CLOCK)
        for _ in range(3):
            detector.record_failure()
        assert detector.status() is HealthStatus.CRITICAL
        frozen.tick(61)
        assert detector.status() is HealthStatus.HEALTHY


def test_reset_forgets_everything() -> None:
    detector = FailureDetector(clock=ManualClock())
    detector.record_failure(severity="critical")
    detector.reset()
    assert detector.snapshot()["total_failures"] == 0
    assert detector.status() is HealthStatus.HEALTHY
