"""The simulated service runs its analytics batch writer on the lookups' pool, as the real one."""

from __future__ import annotations

from pathlib import Path

from resilience.scenario.history import read_history
from resilience.sim.run import run_simulated

from .conftest import make_scenario


def test_every_lookup_event_is_written_in_batches_through_the_pool(tmp_path: Path) -> None:
    scenario = make_scenario(faults=[], gates=[])
    path = tmp_path / "h.jsonl"
    assert run_simulated(scenario, history_path=path).status == "completed"
    history = read_history(path)
    analytics = history.samples[-1]["stats"]["analytics"]
    assert analytics["batches"] > 0
    assert analytics["write_failures"] == 0
    assert analytics["dropped"] == 0
    # every lookup the service answered is an event: written, or waiting for its batch
    lookups = history.samples[-1]["stats"]["lookups"]
    assert analytics["written"] + analytics["pending"] >= lookups - 10


def test_analytics_can_be_switched_off_as_in_the_real_service(tmp_path: Path) -> None:
    scenario = make_scenario(faults=[], gates=[], service={"analytics.enabled": False})
    path = tmp_path / "h.jsonl"
    assert run_simulated(scenario, history_path=path).status == "completed"
    assert "analytics" not in read_history(path).samples[-1]["stats"]
