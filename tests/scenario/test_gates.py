"""Gate expressions: parsing, evaluation against a metrics mapping, phase scoping."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience.scenario.gates import (
    DEFAULT_GATES,
    GateSyntaxError,
    Metrics,
    Phase,
    Timeline,
    check,
    default_gates,
    evaluate_scoped,
    parse_gate,
    parse_phase,
    parse_scoped_gate,
    percentile,
    windows_for,
)

# -- parsing -------------------------------------------------------------------------


def test_parses_the_documented_examples() -> None:
    g = parse_gate("lookup.cache p(99) < 1ms")
    assert (g.metric, g.aggregation, g.percentile, g.op) == ("lookup.cache", "p", 99.0, "<")
    assert g.threshold == pytest.approx(0.001)
    assert parse_gate("cache.hit_rate >= 0.70").threshold == pytest.approx(0.70)
    assert parse_gate("lookup.db avg < 50ms").threshold == pytest.approx(0.050)
    assert parse_gate("breaker.opens per_hour < 1").aggregation == "per_hour"
    assert parse_gate("errors == 0").op == "=="
    assert parse_gate("success_rate >= 95%").threshold == pytest.approx(0.95)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("x < 250us", 250e-6), ("x < 250µs", 250e-6), ("x < 2s", 2.0), ("x < 1.5 ms", 0.0015)],
)
def test_duration_units_become_seconds(text: str, seconds: float) -> None:
    assert parse_gate(text).threshold == pytest.approx(seconds)


def test_repr_prints_the_source_expression() -> None:
    assert repr(parse_gate("lookup.cache p(99) < 1ms")) == "Gate('lookup.cache p(99) < 1ms')"
    scoped = parse_scoped_gate("success_rate >= 0.95 @ during: pg-down")
    assert repr(scoped) == "ScopedGate('success_rate >= 0.95 @ during: pg-down')"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty gate"),
        ("lookup.cache p(99) << 1ms", "two comparisons"),
        ("x avgg < 1", "did you mean 'avg'"),
        ("x = 1", "did you mean '=='"),
        ("x < 3 mss", "unknown unit 'mss'"),
        ("x < fast", "expected a number"),
        ("x p(0) < 1", "percentile must be in (0, 100]"),
        ("x < 1 @ durng: a", "did you mean 'during'"),
        ("x < 1 @ recovery", "recovery needs a limit"),
        ("x count < 1ms", "not a duration"),
        ("x < 1 trailing", "unknown unit 'trailing'"),
    ],
)
def test_parse_errors_say_what_and_where(text: str, fragment: str) -> None:
    with pytest.raises(GateSyntaxError) as info:
        parse_scoped_gate(text)
    assert fragment in str(info.value)
    assert "^" in str(info.value)  # the caret under the offending column
    assert isinstance(info.value, ValueError)  # callers already catch ValueError


def test_phases_parse_with_or_without_colon() -> None:
    assert parse_phase("before") == Phase("before")
    assert parse_phase("during: pg-down") == Phase("during", fault="pg-down")
    assert parse_phase("during pg-down") == Phase("during", fault="pg-down")
    assert parse_phase("after") == Phase("after")
    assert parse_phase("recovery within 65s") == Phase("recovery", within_s=65.0)
    assert parse_phase("recovery: pg within 500ms") == Phase("recovery", "pg", 0.5)


_metric = st.from_regex(r"[a-z][a-z_]{0,8}(\.[a-z][a-z_]{0,8}){0,2}", fullmatch=True)
_op = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
_number = st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda x: round(x, 3))


@given(_metric, _op, _number)
def test_any_well_formed_gate_parses_and_round_trips(metric: str, op: str, value: float) -> None:
    gate = parse_gate(f"{metric} {op} {value}")
    assert (gate.metric, gate.op) == (metric, op)
    assert gate.threshold == pytest.approx(value)
    again = parse_gate(gate.source)
    assert (again.metric, again.op, again.threshold) == (gate.metric, gate.op, gate.threshold)


@given(_op, _number, _number)
def test_evaluation_agrees_with_python_comparison(
    op: str, threshold: float, observed: float
) -> None:
    gate = parse_gate(f"m {op} {threshold}")
    result = gate({"m": observed})
    expected = {
        "<": observed < threshold,
        "<=": observed <= threshold,
        ">": observed > threshold,
        ">=": observed >= threshold,
        "==": math.isclose(observed, threshold, rel_tol=1e-9, abs_tol=1e-12),
        "!=": not math.isclose(observed, threshold, rel_tol=1e-9, abs_tol=1e-12),
    }[op]
    assert (result.status == "pass") is expected
    assert result.observed == observed


# -- evaluation ------------------------------------------------------------------------


@given(
    st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), min_size=1, max_size=200),
    st.floats(min_value=0.1, max_value=100),
)
def test_percentile_is_exact_nearest_rank(samples: list[float], q: float) -> None:
    ordered = sorted(samples)
    value = percentile(ordered, q)
    below = sum(1 for s in ordered if s <= value)
    assert below >= math.ceil(q / 100 * len(ordered))
    assert value in ordered


def test_aggregations_over_latency_samples() -> None:
    samples = [0.001, 0.002, 0.003, 0.004, 0.100]
    metrics: Metrics = {"lat": samples, "window_s": 10.0}
    assert check(parse_gate("lat avg < 30ms"), metrics).observed == pytest.approx(0.022)
    assert check(parse_gate("lat med < 1s"), metrics).observed == pytest.approx(0.003)
    assert check(parse_gate("lat p(80) < 1s"), metrics).observed == pytest.approx(0.004)
    assert check(parse_gate("lat max < 1s"), metrics).observed == pytest.approx(0.100)
    assert check(parse_gate("lat count == 5"), metrics).status == "pass"
    assert check(parse_gate("lat rate == 0.5"), metrics).status == "pass"


def test_per_hour_scales_a_count_by_the_window() -> None:
    gate = parse_gate("breaker.opens per_hour < 1")
    result = gate({"breaker.opens": 1, "window_s": 30.0})
    assert result.status == "fail"
    assert result.observed == pytest.approx(120.0)
    assert "breaker.opens per_hour" in result.message
    assert "120" in result.message


def test_failure_message_names_field_rule_and_observed_value() -> None:
    result = parse_gate("lookup.cache p(99) < 1ms")({"lookup.cache": [0.0005, 0.002]})
    assert result.status == "fail"
    assert result.message == "lookup.cache p(99) must be < 1ms but was 2ms"


def test_missing_metric_fails_with_a_suggestion() -> None:
    result = parse_gate("cache.hit_rat >= 0.7")({"cache.hit_rate": 0.9})
    assert result.status == "fail"
    assert "did you mean 'cache.hit_rate'" in result.message


def test_no_samples_is_nodata_and_fails_the_run() -> None:
    result = parse_gate("lookup.db avg < 50ms")({"lookup.db": []})
    assert result.status == "nodata"
    assert not result.passed
    assert result.label == "NO DATA"
    assert "add 'if any'" in result.message


@pytest.mark.parametrize(
    "text",
    [
        "lookup.db avg < 50ms if any",
        "lookup.db avg < 50ms @ during pg-down if any",
        "lookup.db avg < 50ms if any @ during pg-down",
    ],
)
def test_if_any_lets_a_gate_see_no_data(text: str) -> None:
    gate = parse_scoped_gate(text)
    assert gate.allow_no_data
    assert gate.source.endswith(" if any")
    assert parse_scoped_gate(gate.source) == gate  # the source parses back
    result = check(gate, {"lookup.db": []})
    assert result.status == "nodata"
    assert result.passed
    assert result.label == "NO DATA (allowed)"
    assert result.to_dict()["allow_no_data"] is True
    assert check(gate, {"lookup.db": [0.1]}).status == "fail"  # data is still judged


def test_an_empty_phase_fails_unless_the_gate_allows_it() -> None:
    timeline = Timeline(0.0, 10.0, {"pg-down": [(20.0, 30.0)]})  # outside the run
    strict, lenient = (
        parse_scoped_gate("errors == 0 @ during pg-down"),
        parse_scoped_gate("errors == 0 @ during pg-down if any"),
    )
    [a, b] = evaluate_scoped([strict, lenient], timeline, lambda _w: {"errors": 0})
    assert (a.status, a.passed) == ("nodata", False)
    assert (b.status, b.passed) == ("nodata", True)
    assert "phase during: pg-down is empty" in a.message


def test_defaults_cover_every_targets_md_lookup_target() -> None:
    gates = default_gates()
    assert len(gates) == len(DEFAULT_GATES) == 7
    subjects = {g.gate.subject for g in gates}
    assert {
        "cache.hit_rate",
        "lookup.cache avg",
        "lookup.db avg",
        "success_rate",
        "fallback_rate",
        "breaker.opens per_hour",
        "error_rate",
    } == subjects


# -- phases --------------------------------------------------------------------------


TIMELINE = Timeline(start_s=2.0, end_s=30.0, faults={"a": [(10.0, 15.0)], "b": [(20.0, 22.0)]})


def test_phase_windows() -> None:
    assert windows_for(Phase("all"), TIMELINE) == [(2.0, 30.0)]
    assert windows_for(Phase("before"), TIMELINE) == [(2.0, 10.0)]
    assert windows_for(Phase("during"), TIMELINE) == [(10.0, 15.0), (20.0, 22.0)]
    assert windows_for(Phase("during", "b"), TIMELINE) == [(20.0, 22.0)]
    assert windows_for(Phase("after"), TIMELINE) == [(22.0, 30.0)]
    assert windows_for(Phase("after", "a"), TIMELINE) == [(15.0, 30.0)]


def _value_by_time(windows: object) -> dict[str, object]:
    """Fake metrics: ``bad`` is 1 while any window starts before t = 18, else 0."""
    assert isinstance(windows, list | tuple)
    start = min(a for a, _ in windows)
    return {"bad": 1.0 if start < 18.0 else 0.0}


def test_scoped_gates_see_only_their_windows() -> None:
    seen: list[object] = []

    def metrics_for(windows: object) -> dict[str, object]:
        seen.append(windows)
        return {"x": 1.0}

    evaluate_scoped([parse_scoped_gate("x == 1 @ during: b")], TIMELINE, metrics_for)  # type: ignore[arg-type]
    assert seen == [[(20.0, 22.0)]]


def test_recovery_reports_the_time_to_recover() -> None:
    gates = [
        parse_scoped_gate("bad == 0 @ recovery: a within 5s"),
        parse_scoped_gate("bad == 0 @ recovery: a within 2s"),
    ]
    ok, late = evaluate_scoped(gates, TIMELINE, _value_by_time)  # type: ignore[arg-type]
    assert ok.status == "pass"
    assert ok.observed == pytest.approx(3.0)
    assert late.status == "fail"
    assert late.observed == pytest.approx(3.0)
    assert "must recover within 2s" in late.message


def test_unknown_fault_in_a_phase_fails_with_a_suggestion() -> None:
    [result] = evaluate_scoped(
        [parse_scoped_gate("x == 1 @ during: aa")], TIMELINE, lambda w: {"x": 1.0}
    )
    assert result.status == "fail"
    assert "did you mean 'a'" in result.message


@given(
    st.floats(min_value=0, max_value=10),
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=100), st.floats(min_value=0.1, max_value=20)),
        min_size=1,
        max_size=4,
    ),
)
def test_before_during_after_cover_the_run_without_overlap(
    warmup: float, spans: list[tuple[float, float]]
) -> None:
    """With the faults inside the run, before + during + gaps + after = the measured span."""
    end = 150.0
    faults = {f"f{i}": [(warmup + at, warmup + at + d)] for i, (at, d) in enumerate(spans)}
    timeline = Timeline(warmup, end, faults)
    before = windows_for(Phase("before"), timeline)
    during = windows_for(Phase("during"), timeline)
    after = windows_for(Phase("after"), timeline)
    pieces = sorted(before + during + after)
    for (_, b), (c, _) in itertools.pairwise(pieces):
        assert b <= c + 1e-9  # no overlap
    assert pieces[0][0] == warmup or not before
    assert during[0][0] == (before[0][1] if before else warmup)
    assert (after[-1][1] if after else during[-1][1]) == pytest.approx(end)
    covered = sum(b - a for a, b in pieces)
    gaps = sum(max(0.0, c - b) for (_, b), (c, _) in itertools.pairwise(during))
    assert covered + gaps == pytest.approx(end - warmup)
