"""The tuning space: ``--param`` specifications and how combinations are drawn.

A parameter is a dotted service setting with either a list of values
(``breaker.failure_threshold=3,5,8``, ``cache.ttl=5m,30m``) or a range
(``retry.max_attempts=1..4``, ``breaker.reset_timeout=10s..60s``, optionally
with a step for the grid: ``cache.max_size=50..400:50``, or log-scaled for the
search: ``breaker.reset_timeout_s=1s..120s:log``). A list of numbers is
ordinal: the search samples its index (0 … n−1, the values sorted), so a
sampler such as TPE can use their order; a list with a word in it is
categorical; an integer range is an integer parameter; any other range is
continuous. Names may leave off
the unit suffix the configuration uses (``breaker.reset_timeout`` means
``breaker.reset_timeout_s``). Durations accept ``ms``/``s``/``m``/``h``.

:func:`combinations` draws a ``grid`` (every combination; integer ranges
enumerate, other ranges need a step), a ``random`` sample, or a Latin
hypercube (``lhs``: each parameter's range cut into N strata, each stratum
used once), all seeded.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Param", "ParamError", "combinations", "parse_param", "resolve_name"]

Value = int | float | str
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|min|h)\s*$")
_UNIT_S = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


class ParamError(ValueError):
    """A ``--param`` that cannot be understood (the message says why)."""


@dataclass(frozen=True, slots=True)
class Param:
    """One tuned setting: explicit ``values``, or a ``low``..``high`` range (``step``)."""

    name: str
    values: tuple[Value, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    integer: bool = False
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.low is not None

    @property
    def ordinal(self) -> bool:
        """A list of two or more numbers: searched by index into :attr:`ordered`."""
        return (
            not self.is_range
            and len(self.values) > 1
            and all(isinstance(v, int | float) for v in self.values)
        )

    @property
    def ordered(self) -> tuple[Value, ...]:
        """An ordinal list's values in ascending order (index i is the i-th smallest)."""
        return tuple(sorted(self.values, key=float)) if self.ordinal else self.values

    def from_search(self, raw: Any) -> Value:
        """The setting for a value the search sampled (an ordinal list samples an index)."""
        return self.ordered[int(raw)] if self.ordinal else raw

    def to_search(self, value: Value) -> Any:
        """What the search samples for ``value`` (its index for an ordinal list)."""
        return self.ordered.index(value) if self.ordinal else value

    def distribution(self) -> Any:
        """The optuna distribution of this parameter: an index for an ordinal list,
        else categorical, integer or float."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.ordinal:
            return IntDistribution(0, len(self.values) - 1)
        if not self.is_range:
            return CategoricalDistribution(self.values)
        assert self.low is not None
        assert self.high is not None
        if self.integer:
            step = 1 if self.log or self.step is None else int(self.step)
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=step)
        return FloatDistribution(
            self.low, self.high, log=self.log, step=None if self.log else self.step
        )

    def grid_values(self) -> tuple[Value, ...]:
        if not self.is_range:
            return self.values
        assert self.low is not None
        assert self.high is not None
        step = self.step if self.step is not None else (1 if self.integer else None)
        if self.log and not self.integer:
            raise ParamError(
                f"{self.name}: a log-scaled range has no grid; list the values "
                f"(e.g. {self.name}=1s,10s,100s) or use --search optuna|random"
            )
        if step is None:
            raise ParamError(
                f"{self.name}: a range of non-integers needs a step for the grid "
                f"(e.g. {self.name}={_fmt(self.low)}..{_fmt(self.high)}:STEP) "
                "or --search optuna|random|lhs"
            )
        count = math.floor((self.high - self.low) / step + 1e-9) + 1
        out = [self.low + i * step for i in range(count)]
        return tuple(round(v) if self.integer else round(v, 9) for v in out)

    def at(self, u: float) -> Value:
        """The value at position ``u`` in [0, 1) of this parameter's range or list."""
        if not self.is_range:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        assert self.low is not None
        assert self.high is not None
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
            return round(value) if self.integer else float(f"{value:.4g}")
        if self.integer:
            span = int(self.high) - int(self.low) + 1
            return int(self.low) + min(int(u * span), span - 1)
        return float(f"{self.low + u * (self.high - self.low):.4g}")  # 4 significant digits


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _scalar(text: str) -> tuple[float, bool] | None:
    """``(seconds or number, is_integer)`` of a number or duration; ``None`` otherwise."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return float(int(text)), True
    try:
        return float(text), False
    except ValueError:
        pass
    match = _DURATION.match(text)
    if match:
        return float(match.group(1)) * _UNIT_S[match.group(2)], False
    return None


def _value(text: str) -> Value:
    text = text.strip()
    parsed = _scalar(text)
    if parsed is None:
        if text.lower() in ("true", "false"):
            return text.lower()
        return text
    number, is_int = parsed
    return int(number) if is_int else number


def resolve_name(name: str, fields: Mapping[str, Sequence[str]]) -> str:
    """The configuration's dotted name for ``name`` (adds a missing ``_s`` suffix)."""
    section, _, field = name.partition(".")
    if section not in fields or not field:
        import difflib

        every = [f"{s}.{f}" for s, names in fields.items() for f in names]
        hint = difflib.get_close_matches(name, every, n=1, cutoff=0.6)
        did = f"; did you mean {hint[0]}?" if hint else ""
        raise ParamError(
            f"unknown setting {name!r}{did} (settings are section.field with a section among "
            f"{', '.join(sorted(fields))}; e.g. {', '.join(every[:6])}, …)"
        )
    known = fields[section]
    if field in known:
        return name
    for suffix in ("_s", "_ms"):
        if field + suffix in known:
            return f"{section}.{field}{suffix}"
    import difflib

    hint = difflib.get_close_matches(field, known, n=1)
    did = f"; did you mean {section}.{hint[0]}?" if hint else ""
    raise ParamError(f"unknown setting {name!r}{did} (fields of {section}: {', '.join(known)})")


def parse_param(spec: str, fields: Mapping[str, Sequence[str]] | None = None) -> Param:
    """Parse ``name=v1,v2`` or ``name=a..b[:step]``; ``fields`` checks the name."""
    name, sep, rhs = spec.partition("=")
    name, rhs = name.strip(), rhs.strip()
    if not sep or not name or not rhs:
        raise ParamError(f"--param {spec!r}: write name=v1,v2,... or name=low..high")
    if fields is not None:
        name = resolve_name(name, fields)
    if ".." in rhs:
        bounds, *options = rhs.split(":")
        low_text, _, high_text = bounds.partition("..")
        low, high = _scalar(low_text), _scalar(high_text)
        if low is None or high is None:
            raise ParamError(f"--param {spec!r}: range bounds must be numbers or durations")
        if high[0] < low[0]:
            raise ParamError(f"--param {spec!r}: the range's high end is below its low end")
        if high[0] == low[0]:
            raise ParamError(
                f"--param {spec!r}: the range is empty (low = high); "
                f"to fix the setting, write {name}={low_text.strip()}"
            )
        step: float | None = None
        log = False
        for option in (o.strip() for o in options):
            if option == "log":
                log = True
                continue
            parsed = _scalar(option)
            if parsed is None or parsed[0] <= 0:
                raise ParamError(
                    f"--param {spec!r}: after ':' write a positive step or 'log' (got {option!r})"
                )
            step = parsed[0]
        if log and low[0] <= 0:
            raise ParamError(f"--param {spec!r}: a log-scaled range must start above 0")
        if log and step is not None:
            raise ParamError(f"--param {spec!r}: a log-scaled range takes no step")
        if step is not None and step > high[0] - low[0]:
            raise ParamError(f"--param {spec!r}: the step is larger than the range")
        integer = low[1] and high[1] and (step is None or float(step).is_integer())
        return Param(name, low=low[0], high=high[0], step=step, integer=bool(integer), log=log)
    values = tuple(_value(v) for v in rhs.split(",") if v.strip())
    if not values:
        raise ParamError(f"--param {spec!r}: no values")
    if len(set(values)) != len(values):
        raise ParamError(f"--param {spec!r}: a value is listed twice")
    return Param(name, values=values)


def combinations(
    params: Sequence[Param],
    *,
    sample: Literal["grid", "random", "lhs"] = "grid",
    samples: int = 20,
    seed: int = 0,
) -> list[dict[str, Value]]:
    """The combinations to evaluate, each a mapping name → value, in a stable order."""
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ParamError("a setting is given twice with --param")
    if not params:
        return [{}]
    if sample == "grid":
        grids = [p.grid_values() for p in params]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]
    if samples < 1:
        raise ParamError("--samples must be at least 1")
    rng = random.Random(f"tune:{seed}")
    if sample == "random":
        draws = [[rng.random() for _ in params] for _ in range(samples)]
    elif sample == "lhs":
        columns = []
        for _ in params:
            strata = [(i + rng.random()) / samples for i in range(samples)]
            rng.shuffle(strata)
            columns.append(strata)
        draws = [[col[i] for col in columns] for i in range(samples)]
    else:
        raise ParamError(f"unknown sampling {sample!r} (use grid, random or lhs)")
    out: list[dict[str, Value]] = []
    seen: set[tuple[Any, ...]] = set()
    for row in draws:
        combo = {p.name: p.at(u) for p, u in zip(params, row, strict=True)}
        key = tuple(combo.values())
        if key not in seen:  # discrete parameters can repeat a combination
            seen.add(key)
            out.append(combo)
    return out
