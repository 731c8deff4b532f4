"""The per-fault classification lines, from the history's cumulative counts."""

from __future__ import annotations

from typing import Any

from resilience.scenario.classification import classify_faults
from resilience.scenario.history import History


def _sample(t_s: float, seen: int, recovered: int, gave_up: int) -> dict[str, Any]:
    row = {
        "category": "SerializationFailure",
        "retryable": True,
        "recovery": "retry",
        "seen": seen,
        "recovered": recovered,
        "gave_up": gave_up,
    }
    return {
        "type": "sample",
        "t_us": int(t_s * 1e6),
        "stats": {"lookups": 1, "classified": {"40001": row}},
    }


def test_a_fault_gets_the_counts_that_grew_in_its_window_and_settling_time() -> None:
    history = History(
        meta={"scenario": "x"},
        faults=[
            {"name": "ser", "t_us": 2_000_000, "event": "start"},
            {"name": "ser", "t_us": 4_000_000, "event": "stop"},
        ],
        samples=[
            _sample(1.0, 1, 1, 0),  # before: not this fault's
            _sample(3.0, 5, 3, 0),
            _sample(6.5, 21, 19, 1),  # ≥ stop + 2 s: retries started in the window are done
            _sample(9.0, 40, 30, 5),  # later: not this fault's
        ],
    )
    (row,) = classify_faults(history)["ser"]
    assert (row.seen, row.recovered, row.gave_up) == (20, 18, 1)
    assert row.text() == (
        "40001 → SerializationFailure, retryable, retry: 20 failed attempts; "
        "95% of 19 operations recovered"
    )


def test_a_target_without_classified_counts_gets_no_lines() -> None:
    history = History(
        meta={},
        faults=[
            {"name": "f", "t_us": 0, "event": "start"},
            {"name": "f", "t_us": 1, "event": "stop"},
        ],
        samples=[{"type": "sample", "t_us": 5, "stats": {"lookups": 3}}],
    )
    assert classify_faults(history) == {"f": []}
