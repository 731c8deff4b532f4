"""Profile files: shipped ones load, the command line wins, bad files are explained."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import pytest

from loadtests.options import resolve
from loadtests.profile import PROFILES_DIR, load_profile, parse_gates
from loadtests.stages import RampShape, SpikeShape, SteadyShape

SHIPPED = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def test_the_four_shapes_and_the_outage_profile_are_shipped() -> None:
    assert {"smoke", "steady", "spike", "ramp", "soak", "pg-outage"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_is_valid(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.build_shape().duration_s > 0
    assert parse_gates(profile.gates)


def test_outage_profile_carries_a_scenario_fault_entry() -> None:
    (fault,) = load_profile("pg-outage").faults
    assert (fault.name, fault.target, fault.action, fault.at, fault.duration) == (
        "pg-down",
        "postgres",
        "disable",
        10.0,
        15.0,
    )


def _options(**given: object) -> Namespace:
    return Namespace(**given)


def test_command_line_wins_over_the_profile() -> None:
    settings = resolve(
        _options(load_profile="smoke", shape_params="users=3", zipf_s=0.5, wait_s="0.1,0.2"),
        host="http://127.0.0.1:9",
    )
    assert settings.shape == SteadyShape(users=3, duration_s=5.0, spawn_rate=10.0)
    assert settings.zipf_s == 0.5
    assert settings.wait_s == (0.1, 0.2)
    assert settings.catalogue_size == 300  # from the file
    assert settings.stats_url == "http://127.0.0.1:9/stats"


def test_another_shape_on_the_command_line_drops_the_file_parameters() -> None:
    settings = resolve(
        _options(
            load_profile="smoke",
            shape="ramp",
            shape_params="start_users=1,step_users=1,step_duration=1s,steps=2",
        ),
    )
    assert settings.shape == RampShape(start_users=1, step_users=1, step_duration_s=1.0, steps=2)


def test_shape_without_profile_and_plain_locust_options() -> None:
    spike = resolve(
        _options(
            shape="spike",
            shape_params=("base_users=1,spike_users=4,spike_at=1,spike_duration=1,duration=3"),
        )
    )
    assert isinstance(spike.shape, SpikeShape)
    assert resolve(_options()).shape is None  # Locust's -u/-r/-t then drive the run


def test_report_dir_defaults_beside_locust_csv(tmp_path: Path) -> None:
    csv = tmp_path / "out" / "run"
    assert resolve(_options(csv_prefix=str(csv))).report_dir == tmp_path / "out"
    assert resolve(_options(report_dir=str(tmp_path))).report_dir == tmp_path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("shape: {users: 3}\n", "needs a kind"),
        ("shape: {kind: steady, users: 3, duration: 1s}\nshapes: 1\n", "Extra inputs"),
        ("shape: {kind: steady, users: 3, duration: 1s}\ngates: ['p95 << 3']\n", "cannot parse"),
        (
            "shape: {kind: steady, users: 3, duration: 1s}\n"
            "gates: ['success_rate > 0.9 @ during: pg']\n",
            "not in the profile.s timeline",
        ),
        (
            "shape: {kind: steady, users: 3, duration: 1s}\n"
            "faults: [{at: 1, target: mysql, action: disable}]\n",
            "target",
        ),
    ],
)
def test_bad_profiles_are_explained(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ValueError, match=message):
        load_profile(path)


def test_unknown_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(FileNotFoundError, match="smoke"):
        load_profile("no-such-profile")


def test_a_bad_profile_stops_locust_at_init_with_exit_2(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from loadtests.options import check

    path = tmp_path / "bad.yaml"
    path.write_text("shape: {kind: steady, users: 1}\n")
    environment = SimpleNamespace(parsed_options=_options(load_profile=str(path)), host=None)
    with pytest.raises(SystemExit) as stopped:
        check(environment)
    assert stopped.value.code == 2
