"""Shared scenarios for the simulator's tests (small, so each run takes well under a second)."""

from __future__ import annotations

from typing import Any

import pytest

from resilience.scenario.model import Scenario


def make_scenario(**changes: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "sim-test",
        "seed": 11,
        "workload": {
            "duration": 40,
            "rate": 100,
            "warmup": 2,
            "mix": {"lookup": 0.9, "job": 0.1},
            "keys": {"catalogue_size": 150, "unknown_share": 0.05, "invalid_share": 0.02},
        },
        "faults": [
            {
                "name": "pg-latency",
                "at": 8,
                "duration": 8,
                "target": "postgres",
                "toxic": "latency",
                "toxicity": 0.5,
                "attributes": {"latency": 300, "jitter": 100},
            },
            {
                "name": "redis-down",
                "at": 12,
                "duration": 10,
                "target": "redis",
                "action": "disable",
            },
            {"name": "pg-down", "at": 18, "duration": 6, "target": "postgres", "action": "disable"},
        ],
        "service": {"breaker.reset_timeout_s": "5s"},
        "steady_state": {"probes": 5, "timeout": "20s"},
    }
    data.update(changes)
    return Scenario.model_validate(data)


@pytest.fixture
def scenario() -> Scenario:
    return make_scenario()
