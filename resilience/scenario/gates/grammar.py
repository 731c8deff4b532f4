"""The gate language: k6-style threshold expressions, parsed into :class:`Gate`.

::

    gate   := metric [aggregation] op number [unit] ["@" phase] ["if any"]
    metric := name ("." name)*            e.g. cache.hit_rate, lookup.cache
    aggregation := avg | min | max | med | count | sum | rate
                 | p(N) | per_s | per_min | per_hour
    op     := "<" | "<=" | ">" | ">=" | "==" | "!="
    unit   := us | µs | ms | s | m | %     (durations become seconds, % a ratio)
    phase  := all | before | during [":"] [fault] | after [":"] [fault]
            | recovery [":" fault] within duration

Examples: ``cache.hit_rate >= 0.70``, ``lookup.cache p(99) < 1ms``,
``breaker.opens per_hour < 1``, ``success_rate >= 95% @ during: pg-down``,
``fallback_rate < 0.10 @ recovery within 10s``,
``lookup.db p(99) < 50ms @ during: pg-down if any`` (``if any``: the gate may see
no data; without it a gate that saw none fails the run).

The grammar knows no metric names: whoever evaluates decides what exists
(the scenario harness and the Locust profiles use different sets).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resilience.errors import InvalidInput

if TYPE_CHECKING:
    from resilience.scenario.gates.evaluate import GateResult, Metrics

__all__ = [
    "AGGREGATIONS",
    "BREAKER_STATES",
    "DURATION_UNITS",
    "OPERATORS",
    "Gate",
    "GateSyntaxError",
    "Phase",
    "Reference",
    "ScopedGate",
    "parse_gate",
    "parse_phase",
    "parse_scoped_gate",
]

OPERATORS = ("<=", ">=", "==", "!=", "<", ">")
AGGREGATIONS = ("avg", "min", "max", "med", "count", "sum", "rate", "per_s", "per_min", "per_hour")
DURATION_UNITS: dict[str, float] = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_RATIO_UNITS: dict[str, float] = {"%": 0.01}

_METRIC_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_AGG_RE = re.compile(r"p\(\s*(\d+(?:\.\d+)?)\s*\)|[a-z_]+")
_OP_RE = re.compile(r"<=|>=|==|!=|<|>|=")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_UNIT_RE = re.compile(r"µs|us|ms|s|m|%")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(µs|us|ms|s|m)?$")


class GateSyntaxError(InvalidInput):
    """A gate or phase that does not parse; ``str()`` shows where, with a caret."""

    def __init__(self, text: str, column: int, problem: str) -> None:
        self.text = text
        self.column = column
        self.problem = problem
        pointer = " " * column + "^"
        super().__init__(
            f"cannot parse gate {text!r}: {problem} (column {column + 1})"
            f"\n    {text}\n    {pointer}"
        )


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib

    hit = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {hit[0]!r}?" if hit else ""


BREAKER_STATES = ("closed", "half_open", "open")
"""Names a phase may scope to besides faults: the windows the breaker spent in a state
(a fault of the same name wins)."""


@dataclass(frozen=True, slots=True)
class Phase:
    """Which part of a run a gate looks at.

    ``all``: everything after warm-up. ``before``: warm-up end to the first
    fault. ``during``: inside the fault windows (of ``fault`` when named; a
    breaker state — ``open``, ``half_open``, ``closed`` — names the windows
    the breaker spent in it; ``#n``: only the n-th occurrence of a repeated
    fault). ``each``: like ``during``, but every window (occurrence) is judged
    on its own and every one must hold. ``after``: from the end of the last
    (or the named) fault to the end. ``recovery``: the gate must hold again,
    in every 1 s bucket from some moment on, no later than ``within_s`` after
    the (last or named) fault ended; the observed value is that recovery time.
    """

    kind: str = "all"
    fault: str | None = None
    within_s: float | None = None
    occurrence: int | None = None
    """1-based occurrence of a repeated fault (``during flap#3``)."""

    def __str__(self) -> str:
        if self.kind == "recovery":
            named = f": {self.fault}" if self.fault else ""
            return f"recovery{named} within {_fmt_seconds(self.within_s or 0.0)}"
        if self.kind == "each":
            return f"each {self.fault}"
        if self.fault:
            nth = f"#{self.occurrence}" if self.occurrence is not None else ""
            return f"{self.kind}: {self.fault}{nth}"
        return self.kind


def _fmt_seconds(value: float) -> str:
    if value >= 1 or value == 0:
        return f"{value:g}s"
    if value >= 1e-3:
        return f"{value * 1e3:g}ms"
    return f"{value * 1e6:g}us"


def parse_phase(text: str) -> Phase:
    """Parse a phase such as ``before``, ``during: pg-down`` or ``recovery within 65s``."""
    raw = text
    s = text.strip()
    word, _, rest = s.partition(" ")
    word, colon, after_colon = word.partition(":")
    rest = (after_colon + " " + rest).strip() if colon else rest.strip()
    rest = rest.lstrip(":").strip()
    kinds = ("all", "before", "during", "each", "after", "recovery")
    if word not in kinds:
        raise GateSyntaxError(
            raw,
            raw.find(word) if word else 0,
            f"unknown phase {word!r}{_suggest(word, kinds)} (valid: {', '.join(kinds)})",
        )
    if word in ("all", "before"):
        if rest:
            raise GateSyntaxError(raw, raw.find(rest), f"phase {word!r} takes no fault name")
        return Phase(word)
    if word in ("during", "after", "each"):
        named = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9_.-]*)(?:#(\d+))?", rest)
        if rest and named is None:
            raise GateSyntaxError(
                raw, raw.find(rest), f"not a fault or breaker-state name: {rest!r}"
            )
        if word == "each" and not rest:
            raise GateSyntaxError(
                raw, len(raw), "'each' needs a fault or breaker state, e.g. 'each half_open'"
            )
        occurrence = int(named.group(2)) if named is not None and named.group(2) else None
        if occurrence is not None and (word != "during" or occurrence < 1):
            column = raw.find("#")
            problem = (
                "occurrences count from 1 (#1)"
                if word == "during"
                else (f"'#n' picks one occurrence for 'during', not for {word!r}")
            )
            raise GateSyntaxError(raw, column, problem)
        return Phase(word, fault=named.group(1) if named else None, occurrence=occurrence)
    fault: str | None = None
    match = re.fullmatch(r"(?:([A-Za-z0-9][A-Za-z0-9_.-]*)\s+)?within\s+(.+)", rest)
    if match is None:
        raise GateSyntaxError(raw, len(raw), "recovery needs a limit, e.g. 'recovery within 65s'")
    fault = match.group(1)
    duration = _DURATION_RE.match(match.group(2).strip())
    if duration is None:
        raise GateSyntaxError(
            raw, raw.find(match.group(2)), f"not a duration: {match.group(2)!r} (e.g. 65s)"
        )
    within = float(duration.group(1)) * DURATION_UNITS[duration.group(2) or "s"]
    return Phase("recovery", fault=fault, within_s=within)


@dataclass(frozen=True, slots=True)
class Gate:
    """One threshold on one metric; call it with a metrics mapping to check it.

    ``threshold`` is in base units (seconds for durations, a ratio for ``%``);
    ``unit`` is how the source wrote it, used again to show observed values.
    """

    metric: str
    aggregation: str | None
    percentile: float | None
    op: str
    threshold: float
    unit: str | None
    source: str
    labels: tuple[tuple[str, str], ...] = ()
    """Filters ``metric{name=value,…}``: over the operation records' fields, or the
    labels of a series (``prom.x{status="500"}``)."""
    ref: Reference | None = None
    """``threshold × ref`` replaces the threshold (comparing phases); ``threshold``
    is then the factor."""

    def __repr__(self) -> str:
        return f"Gate({self.source!r})"

    @property
    def labelled(self) -> str:
        """The metric with its label filters, e.g. ``lookup{reason=connection}``."""
        return _labelled(self.metric, self.labels)

    def __call__(self, metrics: Metrics) -> GateResult:
        """Check this gate against a metrics mapping (see :func:`evaluate.check`)."""
        from resilience.scenario.gates.evaluate import check

        return check(self, metrics)

    def __str__(self) -> str:
        return self.source

    @property
    def subject(self) -> str:
        """The metric with its filters and aggregation, e.g. ``lookup.cache p(99)``."""
        metric = self.labelled
        if self.aggregation is None:
            return metric
        if self.aggregation == "p":
            return f"{metric} p({self.percentile:g})"
        return f"{metric} {self.aggregation}"

    @property
    def target(self) -> str:
        """The rule as written: ``< 1ms`` (``>= 0.95 * cache.hit_rate @ before``)."""
        if self.ref is not None:
            return f"{self.op} {_num(self.threshold)} * {self.ref}"
        return f"{self.op} {self.format_value(self.threshold)}"

    def holds(self, observed: float) -> bool:
        """Whether ``observed`` (base units) satisfies the comparison."""
        t = self.threshold
        if self.op == "<":
            return observed < t
        if self.op == "<=":
            return observed <= t
        if self.op == ">":
            return observed > t
        if self.op == ">=":
            return observed >= t
        if self.op == "==":
            return math.isclose(observed, t, rel_tol=1e-9, abs_tol=1e-12)
        return not math.isclose(observed, t, rel_tol=1e-9, abs_tol=1e-12)

    def format_value(self, value: float) -> str:
        """``value`` (base units) in the unit the gate was written with.

        Durations far below that unit switch to a smaller one (9.9ms, not 0.0099s).
        """
        if self.unit in DURATION_UNITS:
            unit = self.unit
            for smaller in ("s", "ms", "us"):
                if (
                    DURATION_UNITS[smaller] < DURATION_UNITS[unit]
                    and abs(value) >= DURATION_UNITS[smaller]
                ):
                    if abs(value) < 0.1 * DURATION_UNITS[unit]:
                        unit = smaller
                    break
            scaled = value / DURATION_UNITS[unit]
            return f"{_num(scaled)}{unit}"
        if self.unit == "%":
            return f"{_num(value * 100)}%"
        return _num(value)


def _labelled(metric: str, labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return metric
    inner = ",".join(
        f"{k}={v}" if re.fullmatch(r"[A-Za-z0-9_.:-]+", v) else f"{k}={json.dumps(v)}"
        for k, v in labels
    )
    return f"{metric}{{{inner}}}"


@dataclass(frozen=True, slots=True)
class Reference:
    """The other side of a phase comparison: ``metric [aggregation] [@ phase]``.

    ``phase`` ``None``: the gate's own phase.
    """

    gate: Gate
    """The metric, filters and aggregation (its op and threshold are unused)."""
    phase: Phase | None = None

    def __str__(self) -> str:
        return self.gate.subject + (f" @ {self.phase}" if self.phase is not None else "")


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.4g}"


@dataclass(frozen=True, slots=True)
class ScopedGate:
    """A :class:`Gate` and the :class:`Phase` it is evaluated in.

    ``allow_no_data``: the gate may see no data (``… if any`` in the text, or
    ``allow_no_data: true``); without it a gate with no data fails the run.
    """

    gate: Gate
    phase: Phase = Phase()
    allow_no_data: bool = False

    @property
    def source(self) -> str:
        suffix = " if any" if self.allow_no_data else ""
        g = self.gate
        if g.ref is not None:  # the gate's phase goes with its own metric
            scope = "" if self.phase.kind == "all" else f" @ {self.phase}"
            return f"{g.subject}{scope} {g.target}{suffix}"
        if self.phase.kind == "all":
            return f"{g.source}{suffix}"
        return f"{g.source} @ {self.phase}{suffix}"

    def __repr__(self) -> str:
        return f"ScopedGate({self.source!r})"

    def __call__(self, metrics: Metrics) -> GateResult:
        """Check against one mapping already restricted to this gate's phase."""
        from resilience.scenario.gates.evaluate import check

        return check(self, metrics)

    def __str__(self) -> str:
        return self.source


def parse_gate(text: str) -> Gate:
    """Parse one gate expression (without a phase) into a :class:`Gate`."""
    if not isinstance(text, str):
        raise GateSyntaxError(repr(text), 0, f"a gate is a string, got {type(text).__name__}")
    s = text
    pos = _skip(s, 0)
    if pos >= len(s):
        raise GateSyntaxError(text, 0, "empty gate; write e.g. 'cache.hit_rate >= 0.70'")
    m = _METRIC_RE.match(s, pos)
    if m is None:
        raise GateSyntaxError(text, pos, "expected a metric name such as cache.hit_rate")
    metric = m.group(0)
    labels: tuple[tuple[str, str], ...] = ()
    pos = m.end()
    if pos < len(s) and s[pos] == "{":
        labels, pos = _parse_labels(text, pos)
    pos = _skip(s, pos)
    aggregation: str | None = None
    percentile: float | None = None
    if pos < len(s) and not _OP_RE.match(s, pos):
        a = _AGG_RE.match(s, pos)
        if a is None:
            raise GateSyntaxError(
                text, pos, "expected an aggregation (avg, p(99), …) or a comparison (<, >=, …)"
            )
        if a.group(1) is not None:
            aggregation, percentile = "p", float(a.group(1))
            if not 0 < percentile <= 100:
                raise GateSyntaxError(
                    text, pos, f"percentile must be in (0, 100], got {percentile:g}"
                )
        else:
            word = a.group(0)
            if word not in AGGREGATIONS:
                raise GateSyntaxError(
                    text,
                    pos,
                    f"unknown aggregation {word!r}{_suggest(word, (*AGGREGATIONS, 'p(99)'))} "
                    f"(valid: {', '.join(AGGREGATIONS)}, p(N))",
                )
            aggregation = word
        pos = _skip(s, a.end())
    o = _OP_RE.match(s, pos)
    if o is None:
        raise GateSyntaxError(text, pos, "expected a comparison: <, <=, >, >=, == or !=")
    op = o.group(0)
    if op == "=":
        raise GateSyntaxError(text, pos, "single '=' is not a comparison; did you mean '=='?")
    pos = _skip(s, o.end())
    if _OP_RE.match(s, pos):
        raise GateSyntaxError(text, pos, "two comparisons in a row")
    n = _NUMBER_RE.match(s, pos)
    if n is None:
        raise GateSyntaxError(text, pos, "expected a number after the comparison")
    value = float(n.group(0))
    pos = n.end()
    unit: str | None = None
    upos = _skip(s, pos)
    u = _UNIT_RE.match(s, upos)
    if u is not None and (u.end() == len(s) or not s[u.end()].isalnum()):
        unit = u.group(0)
        value *= DURATION_UNITS.get(unit, _RATIO_UNITS.get(unit, 1.0))
        pos = u.end()
    elif upos < len(s) and (s[upos].isalpha() or s[upos] == "µ"):
        found = re.match(r"[A-Za-zµ]+", s[upos:])
        bad = found.group(0) if found else s[upos]
        raise GateSyntaxError(text, upos, f"unknown unit {bad!r} (valid: us, µs, ms, s, m, %)")
    pos = _skip(s, pos)
    if pos != len(s):
        raise GateSyntaxError(text, pos, f"unexpected {s[pos:]!r} after the threshold")
    if aggregation in ("count", "per_s", "per_min", "per_hour", "rate") and unit in DURATION_UNITS:
        raise GateSyntaxError(text, n.start(), f"{aggregation} is a number, not a duration")
    gate = Gate(metric, aggregation, percentile, op, value, unit, "", labels)
    written = n.group(0).lstrip("+")
    source = f"{gate.subject} {op} {written}{unit or ''}"
    return Gate(metric, aggregation, percentile, op, value, unit, source, labels)


_LABEL_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,}"\s]+)\s*')


def _parse_labels(text: str, start: int) -> tuple[tuple[tuple[str, str], ...], int]:
    """``{name=value, name="value"}`` at ``start``; returns the pairs and the end."""
    end = text.find("}", start)
    if end < 0:
        raise GateSyntaxError(text, start, "label filter not closed: expected '}'")
    pairs: list[tuple[str, str]] = []
    pos = start + 1
    while pos < end:
        m = _LABEL_RE.match(text, pos, end)
        if m is None:
            raise GateSyntaxError(
                text,
                _skip(text, pos),
                "expected name=value in the label filter, e.g. reason=connection",
            )
        value = m.group(2)
        pairs.append((m.group(1), json.loads(value) if value.startswith('"') else value))
        pos = m.end()
        if pos < end:
            if text[pos] != ",":
                raise GateSyntaxError(text, pos, "expected ',' between label filters")
            pos += 1
    if not pairs:
        raise GateSyntaxError(text, start, "empty label filter '{}'")
    return tuple(pairs), end + 1


_IF_ANY_RE = re.compile(r"\s+if\s+any\s*$")


def parse_scoped_gate(
    text: str, phase: str | Phase | None = None, *, allow_no_data: bool = False
) -> ScopedGate:
    """Parse ``expr [@ phase] [if any]``; an explicit ``phase`` wins over none in the text.

    ``if any`` at the end (after the threshold or after the phase) or
    ``allow_no_data`` lets the gate see no data without failing. A phase
    comparison puts the gate's phase beside its metric and the reference's
    after it: ``cache.hit_rate @ during slicer >= 0.95 * cache.hit_rate @ before``.
    """
    if not isinstance(text, str):
        raise GateSyntaxError(repr(text), 0, f"a gate is a string, got {type(text).__name__}")
    body = text
    if_any = _IF_ANY_RE.search(body)
    if if_any is not None:
        body = body[: if_any.start()]
        allow_no_data = True
    op_at = _outside(body, "<>=!")
    left, right = (body, "") if op_at is None else (body[:op_at], body[op_at:])
    left_expr, left_scope = _split_phase(left)
    star = _outside(right, "*")
    ref_text = ""
    if star is not None:
        right, ref_text = right[:star], right[star + 1 :]
        right_expr, right_scope = right, None
    else:
        right_expr, right_scope = _split_phase(right)
    if_any = _IF_ANY_RE.search(left_expr if right else "")
    if if_any is not None:  # "x if any @ during f >= 1" is not a form; keep columns honest
        raise GateSyntaxError(text, if_any.start() + 1, "'if any' goes at the end of the gate")
    if_any = _IF_ANY_RE.search(right_expr)
    if if_any is not None and right_scope is not None:  # "x < 1 if any @ during f"
        right_expr = right_expr[: if_any.start()]
        allow_no_data = True
    core = left_expr.ljust(len(left)) + right_expr
    try:
        gate = parse_gate(core.rstrip())
    except GateSyntaxError as exc:
        raise GateSyntaxError(text, exc.column, exc.problem) from None
    scopes = [(len(left_expr) + 1, left_scope), (len(left) + len(right_expr) + 1, right_scope)]
    given = [(at, scope) for at, scope in scopes if scope is not None]
    parsed = Phase()
    if len(given) == 2:
        raise GateSyntaxError(text, given[1][0] - 1, "phase given twice ('@' on both sides)")
    if given:
        at, scope = given[0]
        if phase is not None and str(phase).strip() not in ("", "all"):
            raise GateSyntaxError(text, at - 1, "phase given twice ('@' and 'phase:')")
        try:
            parsed = parse_phase(scope)
        except GateSyntaxError as exc:
            raise GateSyntaxError(text, at + exc.column, exc.problem) from None
    elif isinstance(phase, Phase):
        parsed = phase
    elif phase:
        parsed = parse_phase(phase)
    if star is not None:
        offset = (op_at or 0) + star + 1
        gate = _with_reference(text, gate, ref_text, offset)
    return ScopedGate(gate, parsed, allow_no_data)


def _with_reference(text: str, gate: Gate, ref_text: str, offset: int) -> Gate:
    """``gate`` compared with ``threshold × <reference>`` (``ref_text`` at ``offset``)."""
    if gate.unit is not None:
        raise GateSyntaxError(text, offset - 1, "a factor before '*' takes no unit")
    expr, scope = _split_phase(ref_text)
    if not expr.strip():
        raise GateSyntaxError(text, offset, "expected a metric after '*', e.g. cache.hit_rate")
    try:
        ref_gate = parse_gate(expr.rstrip() + " > 0")
    except GateSyntaxError as exc:
        raise GateSyntaxError(text, offset + min(exc.column, len(expr)), exc.problem) from None
    ref_phase = None
    if scope is not None:
        try:
            ref_phase = parse_phase(scope)
        except GateSyntaxError as exc:
            raise GateSyntaxError(text, offset + len(expr) + 1 + exc.column, exc.problem) from None
        if ref_phase.kind in ("recovery", "each"):
            column = offset + len(expr) + 1 + len(scope) - len(scope.lstrip())
            raise GateSyntaxError(
                text, column, f"a reference cannot be scoped to {ref_phase.kind!r}"
            )
    from dataclasses import replace

    ref = Reference(ref_gate, ref_phase)
    source = f"{gate.subject} {gate.op} {_num(gate.threshold)} * {ref}"
    return replace(gate, ref=ref, source=source)


def _outside(text: str, chars: str) -> int | None:
    """The index of the first of ``chars`` outside ``{…}`` and quotes, ``None`` if absent."""
    depth, quoted = 0, False
    for i, ch in enumerate(text):
        if quoted:
            quoted = ch != '"' or text[i - 1] == "\\"
        elif ch == '"':
            quoted = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif depth == 0 and ch in chars:
            return i
    return None


def _split_phase(text: str) -> tuple[str, str | None]:
    """``expr @ phase`` → (expr, phase) at the first '@' outside filters; phase None if none."""
    at = _outside(text, "@")
    if at is None:
        return text, None
    return text[:at], text[at + 1 :]


def _skip(s: str, pos: int) -> int:
    while pos < len(s) and s[pos].isspace():
        pos += 1
    return pos
