"""Dependency models saved to and loaded from JSON (what ``calibrate`` fits, ``tune`` reuses).

The file holds each distribution by kind::

    {"version": 1,
     "db_query": {"kind": "empirical", "points_s": [...]},
     "redis_command": {"kind": "lognormal", "median_s": 0.00012, "p99_s": 0.0006},
     "clock_read_cost": {"kind": "fixed", "value_s": 2e-06},
     "clock_read_cost_s": 2e-06, "redis_pool_size": 50}

Fields left out keep their defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from resilience.sim.distributions import Distribution, Empirical, Fixed, LogNormal
from resilience.sim.stack import ModelSettings

__all__ = ["load_models", "models_to_dict", "save_models"]

_DISTRIBUTIONS = (
    "db_query", "db_connect", "db_insert", "redis_command", "clock_read_cost", "booking_api",
)  # fmt: skip
_NUMBERS = ("clock_read_cost_s", "redis_pool_size")


def _dist_to_dict(dist: Distribution) -> dict[str, Any]:
    if isinstance(dist, Empirical):
        return {"kind": "empirical", "points_s": list(dist.points_s)}
    if isinstance(dist, LogNormal):
        return {"kind": "lognormal", "median_s": dist.median_s, "p99_s": dist.p99_s}
    if isinstance(dist, Fixed):
        return {"kind": "fixed", "value_s": dist.value_s}
    raise TypeError(f"cannot save a {type(dist).__name__} distribution")


def _dist_from_dict(name: str, data: Any) -> Distribution:
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected an object with 'kind'")
    kind = data.get("kind")
    try:
        if kind == "empirical":
            return Empirical(tuple(float(x) for x in data["points_s"]))
        if kind == "lognormal":
            return LogNormal(float(data["median_s"]), float(data["p99_s"]))
        if kind == "fixed":
            return Fixed(float(data["value_s"]))
    except KeyError as exc:
        raise ValueError(f"{name}: missing {exc.args[0]!r}") from None
    raise ValueError(f"{name}: unknown kind {kind!r} (empirical, lognormal or fixed)")


def models_to_dict(models: ModelSettings) -> dict[str, Any]:
    out: dict[str, Any] = {"version": 1}
    for name in _DISTRIBUTIONS:
        dist = getattr(models, name)
        if dist is not None:
            out[name] = _dist_to_dict(dist)
    for name in _NUMBERS:
        out[name] = getattr(models, name)
    return out


def save_models(models: ModelSettings, path: str | Path) -> None:
    Path(path).write_text(json.dumps(models_to_dict(models), indent=2))


def load_models(path: str | Path) -> ModelSettings:
    """Models from a JSON file; a clear :class:`ValueError` for a bad one."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    unknown = set(data) - {"version", *_DISTRIBUTIONS, *_NUMBERS}
    if unknown:
        raise ValueError(f"{path}: unknown fields {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    try:
        for name in _DISTRIBUTIONS:
            if name in data:
                changes[name] = _dist_from_dict(name, data[name])
        if "clock_read_cost_s" in data:
            changes["clock_read_cost_s"] = float(data["clock_read_cost_s"])
        if "redis_pool_size" in data:
            changes["redis_pool_size"] = int(data["redis_pool_size"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return ModelSettings().with_(**changes)
