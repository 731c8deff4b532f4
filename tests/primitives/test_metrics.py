"""Metrics: exact histogram percentiles, recorder aggregation, Prometheus text."""

from __future__ import annotations

import json
import math
import re
import threading
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilience.clock import ManualClock
from resilience.metrics import (
    Histogram,
    MetricFamily,
    MetricsRecorder,
    OperationRecord,
    render,
)
from resilience.metrics.recorder import Outcome, Path

values_us = st.lists(st.integers(0, 5_000_000), min_size=1, max_size=300)
quantiles = st.sampled_from(
    [0.0, 1.0, 25.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0]
) | st.floats(0.0, 100.0)


def reference_percentile(values: list[int], q: float) -> int:
    """Nearest rank over a sorted list, with q read as the decimal it prints as."""
    ordered = sorted(values)
    rank = max(1, math.ceil(Fraction(repr(q)) * len(ordered) / 100))
    return ordered[rank - 1]


@settings(max_examples=300, deadline=None)
@given(values=values_us, qs=st.lists(quantiles, min_size=1, max_size=6))
def test_percentiles_are_exact(values: list[int], qs: list[float]) -> None:
    histogram = Histogram()
    for value in values:
        histogram.record(value)
    got = histogram.percentiles(qs)
    for q in qs:
        assert got[q] == reference_percentile(values, q)
        assert histogram.percentile(q) == got[q]
    assert histogram.count == len(values)
    assert histogram.min_us == min(values)
    assert histogram.max_us == max(values)
    assert histogram.sum_us == sum(values)
    assert histogram.mean_us == pytest.approx(sum(values) / len(values))


@settings(max_examples=100, deadline=None)
@given(left=values_us, right=values_us)
def test_merge_equals_recording_everything_in_one(left: list[int], right: list[int]) -> None:
    a, b, both = Histogram(), Histogram(), Histogram()
    for value in left:
        a.record(value)
        both.record(value)
    for value in right:
        b.record(value)
        both.record(value)
    merged = a + b
    assert merged == both
    assert merged.summary() == both.summary()
    a.merge(b)
    assert a == both
    assert Histogram.from_dict(json.loads(json.dumps(both.to_dict()))) == both


def test_summary_keys_and_nearest_rank() -> None:
    histogram = Histogram()
    for value in range(1, 1001):
        histogram.record(value)
    summary = histogram.summary()
    assert summary == {
        "count": 1000,
        "min": 1,
        "max": 1000,
        "mean": 500.5,
        "sum": 500500,
        "p50": 500,
        "p90": 900,
        "p95": 950,
        "p99": 990,
        "p999": 999,
    }


def test_empty_histogram() -> None:
    histogram = Histogram()
    assert histogram.percentile(50) is None
    assert histogram.mean_us is None
    assert histogram.summary()["p99"] is None


def test_histogram_refuses_bad_input() -> None:
    histogram = Histogram()
    with pytest.raises(ValueError, match="negative"):
        histogram.record(-1)
    with pytest.raises(ValueError, match="percentile"):
        histogram.percentile(101)


def _fill(recorder: MetricsRecorder) -> None:
    for _ in range(7):
        recorder.record(outcome="success", path="cache", duration_us=80)
    recorder.record(outcome="success", path="redis", duration_us=400)
    recorder.record(outcome="success", path="db", duration_us=20_000, attempts=2)
    recorder.record(outcome="fallback", path="fallback", duration_us=50, attempts=4)
    recorder.record(outcome="invalid", path="none", duration_us=5)
    recorder.record(outcome="error", path="db", duration_us=30_000, attempts=4)


def test_recorder_rates_exclude_invalid_calls() -> None:
    recorder = MetricsRecorder(clock=ManualClock())
    _fill(recorder)
    lookup = recorder.snapshot()["operations"]["lookup"]
    assert lookup["count"] == 12
    assert lookup["hit_rate"] == pytest.approx(8 / 11)
    assert lookup["success_rate"] == pytest.approx(9 / 11)
    assert lookup["fallback_rate"] == pytest.approx(1 / 11)
    assert lookup["error_rate"] == pytest.approx(1 / 11)
    assert lookup["invalid_rate"] == pytest.approx(1 / 12)
    assert lookup["attempts"] == 7 + 1 + 2 + 4 + 1 + 4
    assert lookup["retried"] == 3
    assert lookup["outcomes"] == {"success": 9, "fallback": 1, "error": 1, "invalid": 1}
    assert lookup["paths"]["cache"] == 7
    latency = lookup["latency_us"]
    assert latency["cache"]["p99"] == 80
    assert latency["db"]["max"] == 30_000
    assert latency["db"]["mean"] == 25_000
    assert latency["all"]["count"] == 12
    assert "none" in latency
    json.dumps(recorder.snapshot())


def test_rates_are_none_without_calls_and_operations_are_separate() -> None:
    recorder = MetricsRecorder(clock=ManualClock())
    recorder.record(outcome="invalid", path="none", duration_us=3)
    recorder.record(operation="post_job", outcome="success", path="db", duration_us=900)
    operations = recorder.snapshot()["operations"]
    assert operations["lookup"]["hit_rate"] is None
    assert operations["post_job"]["success_rate"] == 1.0


def test_histogram_accessor_returns_copies() -> None:
    recorder = MetricsRecorder(clock=ManualClock())
    _fill(recorder)
    cache = recorder.histogram(path="cache")
    assert cache.count == 7
    cache.record(1)
    assert recorder.histogram(path="cache").count == 7
    assert recorder.histogram().count == 12
    assert recorder.histogram("other").count == 0


def test_sinks_receive_frozen_records_and_cannot_break_the_caller() -> None:
    clock = ManualClock(wall_start=1_800_000_000.0)
    received: list[OperationRecord] = []

    class Collect:
        def on_record(self, record: OperationRecord) -> None:
            received.append(record)

    class Broken:
        def on_record(self, record: OperationRecord) -> None:
            raise RuntimeError("analytics down")

    recorder = MetricsRecorder(clock=clock, sinks=[Collect()])
    recorder.add_sink(Broken())
    recorder.record(outcome="success", path="db", duration_us=1234, attempts=2)
    assert received == [OperationRecord("lookup", "success", "db", 1234, 2, 1_800_000_000.0)]
    assert recorder.sink_errors == 1
    assert recorder.snapshot()["sink_errors"] == 1


def test_record_validates_its_input() -> None:
    recorder = MetricsRecorder(clock=ManualClock())
    with pytest.raises(ValueError, match="outcome"):
        recorder.record(outcome="meh", path="db", duration_us=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path"):
        recorder.record(outcome="success", path="disk", duration_us=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        recorder.record(outcome="success", path="db", duration_us=-1)


def test_add_counts_like_record_without_its_checks() -> None:
    calls: list[tuple[str, Outcome, Path, int, int]] = [
        ("lookup", "success", "cache", 80, 0),
        ("lookup", "fallback", "db", 30_000, 3),
        ("lookup", "invalid", "none", 2, 0),
        ("post_job", "success", "db", 900, 1),
    ]
    checked = MetricsRecorder(clock=ManualClock())
    unchecked = MetricsRecorder(clock=ManualClock())
    for operation, outcome, path, duration_us, attempts in calls:
        checked.record(
            operation=operation,
            outcome=outcome,
            path=path,
            duration_us=duration_us,
            attempts=attempts,
        )
        unchecked.add(operation, outcome, path, duration_us, attempts)
    assert unchecked.state() == checked.state()


def test_reset_and_uptime() -> None:
    clock = ManualClock()
    recorder = MetricsRecorder(clock=clock)
    _fill(recorder)
    clock.advance(12.5)
    assert recorder.snapshot()["uptime_s"] == 12.5
    recorder.reset()
    assert recorder.snapshot() == {"uptime_s": 0.0, "sink_errors": 0, "operations": {}}


def test_threads_lose_no_counts() -> None:
    recorder = MetricsRecorder(clock=ManualClock())

    def worker(offset: int) -> None:
        for i in range(1000):
            recorder.record(outcome="success", path="cache", duration_us=offset + i % 10)

    threads = [threading.Thread(target=worker, args=(n * 100,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lookup = recorder.snapshot()["operations"]["lookup"]
    assert lookup["count"] == 8000
    assert lookup["latency_us"]["cache"]["count"] == 8000
    assert lookup["latency_us"]["cache"]["max"] == 709


# -- Prometheus text -------------------------------------------------------------------

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"(?:\{(?P<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\n]|\\[\\\"n])*\",?)*)\})?"
    r" (?P<value>[-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|Inf))$"
)
_LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> dict[str, tuple[str, list[tuple[dict[str, str], float]]]]:
    """A strict little parser: every sample belongs to a family declared by HELP + TYPE."""
    assert text.endswith("\n")
    families: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] = {}
    current: str | None = None
    helped: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helped, f"HELP twice for {name}"
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name in helped, f"TYPE before HELP for {name}"
            assert kind in {"counter", "gauge", "summary", "histogram", "untyped"}
            assert name not in families, f"family {name} declared twice"
            if kind == "counter":
                assert name.endswith("_total")
            families[name] = (kind, [])
            current = name
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name = match["name"]
        assert current is not None
        assert name in (current, f"{current}_sum", f"{current}_count"), (name, current)
        labels = {
            key: value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            for key, value in _LABEL_PAIR.findall(match["labels"] or "")
        }
        families[current][1].append((labels, float(match["value"])))
    return families


def test_prometheus_text_parses_and_carries_the_snapshot() -> None:
    recorder = MetricsRecorder(clock=ManualClock())
    _fill(recorder)
    snapshot = recorder.snapshot()
    text = render(
        snapshot,
        gauges={"resilience_breaker_state": 1.0},
        counters={"resilience_breaker_opens": 3},
        families=[
            MetricFamily(
                "resilience_cache_entries",
                "gauge",
                "Entries in the cache.\nPer tier.",
                [({"tier": 'memory "L1"\\'}, 42.0)],
            )
        ],
    )
    families = parse_exposition(text)
    kind, samples = families["resilience_operations_total"]
    assert kind == "counter"
    assert ({"operation": "lookup", "outcome": "success"}, 9.0) in samples
    kind, samples = families["resilience_operation_hit_ratio"]
    assert kind == "gauge"
    [(labels, ratio)] = samples
    assert labels == {"operation": "lookup"}
    assert ratio == pytest.approx(8 / 11)
    kind, samples = families["resilience_operation_duration_seconds"]
    assert kind == "summary"
    assert ({"operation": "lookup", "path": "db", "quantile": "0.99"}, 0.03) in samples
    assert ({"operation": "lookup", "path": "cache"}, 7.0) in samples  # _count
    kind, samples = families["resilience_operation_latency_seconds"]
    assert ({"operation": "lookup", "quantile": "0.999"}, 0.03) in samples
    assert families["resilience_breaker_opens_total"] == ("counter", [({}, 3.0)])
    assert families["resilience_breaker_state"] == ("gauge", [({}, 1.0)])
    assert families["resilience_cache_entries"][1] == [({"tier": 'memory "L1"\\'}, 42.0)]
    assert "# HELP resilience_cache_entries Entries in the cache.\\nPer tier." in text


def test_prometheus_of_an_empty_snapshot_and_bad_names() -> None:
    families = parse_exposition(render(MetricsRecorder(clock=ManualClock()).snapshot()))
    assert families["resilience_operations_total"] == ("counter", [])
    with pytest.raises(ValueError, match="metric name"):
        render({}, gauges={"bad name": 1.0})
    with pytest.raises(ValueError, match="label name"):
        render({}, families=[MetricFamily("x", "gauge", "h", [({"bad-label": "v"}, 1.0)])])
