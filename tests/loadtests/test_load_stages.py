"""Load shapes are pure functions of elapsed seconds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtests.stages import (
    RampShape,
    SoakShape,
    SpikeShape,
    Stage,
    SteadyShape,
    build_shape,
    parse_duration_s,
    parse_params,
)


def test_steady_holds_its_users_then_stops() -> None:
    shape = SteadyShape(users=20, duration_s=30.0, spawn_rate=5.0)
    assert shape.stage_at(0.0) == Stage(20, 5.0)
    assert shape.stage_at(29.99) == Stage(20, 5.0)
    assert shape.stage_at(30.0) is None


def test_spike_jumps_during_its_window_only() -> None:
    shape = SpikeShape(
        base_users=5, spike_users=50, spike_at_s=10.0, spike_duration_s=5.0, duration_s=30.0
    )
    users = [shape.stage_at(t).users for t in (0.0, 9.9, 10.0, 14.9, 15.0, 29.0)]  # type: ignore[union-attr]
    assert users == [5, 5, 50, 50, 5, 5]
    assert shape.stage_at(30.0) is None


def test_stepped_ramp_adds_step_users_per_step() -> None:
    shape = RampShape(start_users=10, step_users=5, step_duration_s=10.0, steps=3)
    assert shape.duration_s == 30.0
    assert [shape.stage_at(t).users for t in (0, 9.99, 10, 25)] == [10, 10, 15, 20]  # type: ignore[union-attr]
    assert shape.stage_at(30.0) is None


def test_soak_spreads_the_ramp_over_ramp_s() -> None:
    shape = SoakShape(users=60, ramp_s=30.0, duration_s=600.0)
    assert shape.stage_at(1.0) == Stage(60, 2.0)
    assert shape.stage_at(600.0) is None


@given(
    base=st.integers(0, 50),
    extra=st.integers(0, 50),
    at=st.floats(0, 100),
    length=st.floats(0.1, 100),
    t=st.floats(-1, 300),
)
def test_spike_never_leaves_its_two_levels(
    base: int, extra: int, at: float, length: float, t: float
) -> None:
    shape = SpikeShape(
        base_users=base,
        spike_users=base + extra,
        spike_at_s=at,
        spike_duration_s=length,
        duration_s=at + length + 1,
    )
    stage = shape.stage_at(t)
    assert stage is None or stage.users in (base, base + extra)
    assert (stage is None) == (t >= shape.duration_s)


def test_build_shape_accepts_duration_strings_and_aliases() -> None:
    shape = build_shape(
        "spike",
        {
            "base_users": "2",
            "spike_users": 8,
            "spike_at": "1.5s",
            "spike_duration": "500ms",
            "duration": "1m",
        },
    )
    assert shape == SpikeShape(
        base_users=2, spike_users=8, spike_at_s=1.5, spike_duration_s=0.5, duration_s=60.0
    )


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("sawtooth", {}, "unknown shape 'sawtooth'"),
        ("steady", {"users": 1, "duration": 5, "colour": 3}, "no parameter 'colour'"),
        ("steady", {"users": 1}, "steady"),
        ("steady", {"users": 1, "duration": "soon"}, "not a duration"),
        (
            "spike",
            {"base_users": 9, "spike_users": 1, "spike_at": 0, "spike_duration": 1, "duration": 5},
            "base_users <= spike_users",
        ),
    ],
)
def test_build_shape_explains_bad_input(kind: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_shape(kind, params)


def test_parse_params_and_durations() -> None:
    assert parse_params(" users=20, duration=30s ,") == {"users": "20", "duration": "30s"}
    with pytest.raises(ValueError, match="name=value"):
        parse_params("users")
    assert parse_duration_s("2m") == 120.0
    assert parse_duration_s(0.25) == 0.25
    with pytest.raises(ValueError, match="negative"):
        parse_duration_s(-1)
