"""Durations and shares in scenario files: ``"250ms"`` → 0.25 s, ``"20s"``, ``"1.5m"``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

__all__ = ["PositiveSeconds", "Seconds", "Share", "parse_duration_s"]

_DURATION_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|min|h)?\s*$")
_UNIT_S: dict[str | None, float] = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    None: 1.0,
}


def parse_duration_s(value: object) -> object:
    """``"250ms"`` → 0.25, ``"20s"`` → 20.0; numbers pass through as seconds."""
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is None:
            raise ValueError(f"not a duration: {value!r} (write e.g. 250ms, 20s, 1.5m)")
        return float(match.group(1)) * _UNIT_S[match.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration_s), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(parse_duration_s), Field(gt=0)]
Share = Annotated[float, Field(ge=0, le=1)]
