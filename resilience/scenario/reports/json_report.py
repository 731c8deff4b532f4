"""The JSON report: verdict, gates, headline metrics and fault windows of one run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from resilience.scenario.history import History
from resilience.scenario.metrics import summary
from resilience.scenario.runner import RunResult

__all__ = ["result_dict", "write_json", "write_suite_json"]


def result_dict(result: RunResult, history: History | None) -> dict[str, Any]:
    """Everything the JSON report holds, as plain data."""
    data: dict[str, Any] = {
        "scenario": result.scenario.name,
        "description": result.scenario.description,
        "source": str(result.scenario.source) if result.scenario.source else None,
        "verdict": result.verdict,
        "exit_code": result.exit_code,
        "status": result.status,
        "error": result.error,
        "fault_errors": result.fault_errors,
        "wall_s": round(result.wall_s, 3),
        "history": str(result.history_path),
        "gates": [r.to_dict() for r in result.results],
    }
    if history is not None:
        data["mode"] = history.meta.get("mode")
        data["seed"] = history.meta.get("seed")
        data["faults"] = {k: [list(w) for w in v] for k, v in history.fault_windows().items()}
        data["metrics"] = summary(history)
        data["breaker"] = [
            {"t_s": r["t_us"] / 1e6, "from": r.get("from"), "to": r.get("to")}
            for r in history.breaker
        ]
    return data


def write_json(result: RunResult, history: History | None, path: Path) -> Path:
    path.write_bytes(orjson.dumps(result_dict(result, history), option=orjson.OPT_INDENT_2))
    return path


def write_suite_json(results: Sequence[RunResult], wall_s: float, path: Path) -> Path:
    from resilience.scenario.reports.terminal import suite_exit_code

    data = {
        "exit_code": suite_exit_code(results),
        "wall_s": round(wall_s, 3),
        "scenarios": [
            {
                "scenario": r.scenario.name,
                "verdict": r.verdict,
                "exit_code": r.exit_code,
                "wall_s": round(r.wall_s, 3),
                "failed": [g.gate.source for g in r.results if not g.passed],
                "error": r.error,
                "report_dir": str(r.report_dir) if r.report_dir else None,
            }
            for r in results
        ],
    }
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return path
