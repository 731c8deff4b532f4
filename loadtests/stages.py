"""Load shapes as pure functions of elapsed seconds (no Locust here).

A shape answers one question: at ``elapsed_s`` seconds into the run, how many
users should be running and how fast should Locust get there? It answers
``None`` once the run is over. :class:`loadtests.shapes.ProfileShape` asks it
once a second; tests ask it directly.

Shapes (all durations are float seconds; profile files and ``--shape-params``
also accept ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``):

* ``steady``: ``users`` for ``duration_s``.
* ``spike``: ``base_users``, jumping to ``spike_users`` at ``spike_at_s`` for
  ``spike_duration_s``, back to ``base_users`` until ``duration_s``.
* ``ramp`` (stepped): ``start_users``, plus ``step_users`` every
  ``step_duration_s``, for ``steps`` steps; then done.
* ``soak``: ramp linearly to ``users`` over ``ramp_s``, hold until ``duration_s``
  (default one hour).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, Protocol

__all__ = [
    "SHAPES",
    "RampShape",
    "Shape",
    "SoakShape",
    "SpikeShape",
    "Stage",
    "SteadyShape",
    "build_shape",
    "parse_duration_s",
    "parse_params",
]


class Stage(NamedTuple):
    """Target user count and the spawn rate (users per second) to reach it."""

    users: int
    spawn_rate: float


class Shape(Protocol):
    """Anything that maps elapsed seconds to a :class:`Stage` (``None``: stop)."""

    @property
    def duration_s(self) -> float: ...

    def stage_at(self, elapsed_s: float) -> Stage | None: ...


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration_s(value: object) -> float:
    """``"500ms"`` → 0.5, ``"2m"`` → 120.0; plain numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 30s, 5m, 1h)")
    if seconds < 0 or math.isnan(seconds):
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return seconds


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class SteadyShape:
    """``users`` for ``duration_s``, reached at ``spawn_rate`` users/s (default: in 1 s)."""

    users: int
    duration_s: float
    spawn_rate: float | None = None

    def __post_init__(self) -> None:
        _check(self.users >= 0, f"users must be >= 0, got {self.users}")
        _check(self.duration_s > 0, f"duration_s must be > 0, got {self.duration_s}")

    def stage_at(self, elapsed_s: float) -> Stage | None:
        if elapsed_s >= self.duration_s:
            return None
        return Stage(self.users, self.spawn_rate or float(max(self.users, 1)))


@dataclass(frozen=True, slots=True, kw_only=True)
class SpikeShape:
    """``base_users``, ``spike_users`` during ``[spike_at_s, spike_at_s + spike_duration_s)``."""

    base_users: int
    spike_users: int
    spike_at_s: float
    spike_duration_s: float
    duration_s: float
    spawn_rate: float | None = None

    def __post_init__(self) -> None:
        _check(0 <= self.base_users <= self.spike_users, "need 0 <= base_users <= spike_users")
        _check(self.duration_s > 0, f"duration_s must be > 0, got {self.duration_s}")
        _check(
            self.spike_at_s + self.spike_duration_s <= self.duration_s,
            "the spike must end by duration_s",
        )

    def stage_at(self, elapsed_s: float) -> Stage | None:
        if elapsed_s >= self.duration_s:
            return None
        rate = self.spawn_rate or float(max(self.spike_users, 1))
        in_spike = self.spike_at_s <= elapsed_s < self.spike_at_s + self.spike_duration_s
        return Stage(self.spike_users if in_spike else self.base_users, rate)


@dataclass(frozen=True, slots=True, kw_only=True)
class RampShape:
    """Stepped ramp: ``start_users + k * step_users`` during step ``k`` (0-based)."""

    start_users: int
    step_users: int
    step_duration_s: float
    steps: int
    spawn_rate: float | None = None

    def __post_init__(self) -> None:
        _check(self.start_users >= 0 and self.step_users >= 0, "user counts must be >= 0")
        _check(self.step_duration_s > 0, "step_duration_s must be > 0")
        _check(self.steps >= 1, f"steps must be >= 1, got {self.steps}")

    @property
    def duration_s(self) -> float:
        return self.steps * self.step_duration_s

    def stage_at(self, elapsed_s: float) -> Stage | None:
        if elapsed_s >= self.duration_s:
            return None
        step = int(max(elapsed_s, 0.0) // self.step_duration_s)
        rate = self.spawn_rate or float(max(self.step_users, self.start_users, 1))
        return Stage(self.start_users + step * self.step_users, rate)


@dataclass(frozen=True, slots=True, kw_only=True)
class SoakShape:
    """Ramp linearly to ``users`` over ``ramp_s``, then hold until ``duration_s``."""

    users: int
    duration_s: float = 3600.0
    ramp_s: float = 60.0

    def __post_init__(self) -> None:
        _check(self.users >= 0, f"users must be >= 0, got {self.users}")
        _check(0 <= self.ramp_s < self.duration_s, "need 0 <= ramp_s < duration_s")

    def stage_at(self, elapsed_s: float) -> Stage | None:
        if elapsed_s >= self.duration_s:
            return None
        rate = self.users / self.ramp_s if self.ramp_s > 0 else float(max(self.users, 1))
        return Stage(self.users, max(rate, 0.1))


SHAPES: Mapping[str, Callable[..., Shape]] = {
    "ramp": RampShape,
    "soak": SoakShape,
    "spike": SpikeShape,
    "steady": SteadyShape,
}
"""Shape name → class, as profile files and ``--shape`` name them."""

_ALIASES = {
    "duration": "duration_s",
    "ramp": "ramp_s",
    "spike_at": "spike_at_s",
    "spike_duration": "spike_duration_s",
    "step_duration": "step_duration_s",
}


def build_shape(kind: str, params: Mapping[str, Any]) -> Shape:
    """The shape ``kind`` with ``params`` (ints, float seconds or duration strings).

    Parameter names ending in ``_s`` take durations; ``duration``, ``ramp``,
    ``spike_at``, ``spike_duration`` and ``step_duration`` are accepted for them.
    Unknown shapes, unknown parameters and bad values raise :class:`ValueError`.
    """
    try:
        cls = SHAPES[kind]
    except KeyError:
        raise ValueError(
            f"unknown shape {kind!r}; choose from {', '.join(sorted(SHAPES))}"
        ) from None
    allowed = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]  # all SHAPES are dataclasses
    kwargs: dict[str, Any] = {}
    for raw_name, value in params.items():
        name = _ALIASES.get(raw_name, raw_name)
        if name not in allowed:
            raise ValueError(
                f"shape {kind!r} has no parameter {raw_name!r}; "
                f"it takes {', '.join(sorted(allowed))}"
            )
        if name.endswith("_s"):
            kwargs[name] = parse_duration_s(value)
        elif name == "spawn_rate":
            kwargs[name] = float(value)
        else:
            kwargs[name] = int(value)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required parameter is missing
        raise ValueError(f"shape {kind!r}: {exc}") from exc


def parse_params(text: str) -> dict[str, str]:
    """``"users=20, duration=30s"`` → ``{"users": "20", "duration": "30s"}``."""
    params: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"shape parameter {item!r} is not name=value")
        params[name.strip()] = value.strip()
    return params
