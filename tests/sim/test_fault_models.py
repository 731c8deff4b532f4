"""The simulator's models of the process faults and the protocol error toxics.

The shipped scenarios 12–16 run simulated, and what each model does shows in
the service's own classification of what it saw, as in the real runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.scenario.classification import classify_faults
from resilience.scenario.history import read_history
from resilience.scenario.loader import load_scenario
from resilience.sim.run import run_simulated

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _simulate(stem: str, tmp_path: Path) -> dict[str, list[str]]:
    scenario = load_scenario(next(SCENARIOS.glob(f"{stem}-*.yaml")))
    result = run_simulated(scenario, history_path=tmp_path / "h.jsonl")
    assert result.status == "completed", result.error
    assert not result.fault_errors
    assert result.verdict == "PASS", [r.message for r in result.results if r.status != "pass"]
    history = read_history(tmp_path / "h.jsonl")
    return {f: [row.kind for row in rows] for f, rows in classify_faults(history).items()}


@pytest.mark.parametrize(
    ("stem", "fault", "kind"),
    [
        ("12", "serialization", "40001"),  # postgres_error on the job INSERT
        ("13", "readonly", "ReadOnlyError"),  # redis_error on SET
        ("14", "frozen", "TimeoutFailure"),  # a paused server: attempts time out
        ("15", "crash", "ConnectionRefusedError"),  # a killed server refuses connects
    ],
)
def test_each_fault_model_makes_the_service_see_what_the_real_fault_makes_it_see(
    tmp_path: Path, stem: str, fault: str, kind: str
) -> None:
    assert kind in _simulate(stem, tmp_path)[fault]


def test_a_cold_redis_restart_model_forgets_the_data(tmp_path: Path) -> None:
    import random

    from resilience.sim.proxy import ModelProxy
    from resilience.sim.redis import REDIS_ERRORS, ModelRedisClient

    proxy = ModelProxy("redis", errors=REDIS_ERRORS, rng=random.Random(1))
    client = ModelRedisClient(proxy, rng=random.Random(2))
    client._write("k", b"v", None)
    proxy.kill_server()
    proxy.start_server(keep_data=True)
    assert client._read("k") == b"v"
    proxy.kill_server()
    proxy.start_server(keep_data=False)
    assert client._read("k") is None
