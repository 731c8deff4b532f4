"""Reading scenario YAML files into :class:`~resilience.scenario.model.Scenario`.

Every problem is reported with the file, the line and the dotted field, and
where the value is one of a fixed set, with the valid choices and the closest
one ("did you mean"). All problems of a file are reported at once.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from resilience.errors import InvalidInput
from resilience.scenario.gates import GateSyntaxError
from resilience.scenario.metrics import known_metric, metric_names
from resilience.scenario.model import GateSpec, Scenario

__all__ = [
    "FileCheck",
    "Issue",
    "ScenarioError",
    "check_files",
    "discover",
    "load_scenario",
    "load_suite",
    "locate_message",
    "parse_scenario",
]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a scenario file."""

    source: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.field or '(file)'}: {self.message}"


class ScenarioError(InvalidInput):
    """A scenario file that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        head = "invalid scenario" if len(self.issues) == 1 else f"{len(self.issues)} problems"
        super().__init__(head + ":\n" + "\n".join(f"  {i}" for i in self.issues))


Path_ = tuple[str | int, ...]


def _line_map(node: yaml.Node, source: str) -> tuple[dict[Path_, int], list[Issue]]:
    lines: dict[Path_, int] = {(): node.start_mark.line + 1}
    issues: list[Issue] = []

    def walk(n: yaml.Node, path: Path_) -> None:
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in n.value:
                key = str(key_node.value)
                if key in seen:
                    issues.append(
                        Issue(
                            source,
                            key_node.start_mark.line + 1,
                            _dotted((*path, key)),
                            "duplicate key (the second one would silently win)",
                        )
                    )
                seen.add(key)
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                lines[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    walk(node, ())
    return lines, issues


def _dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_for(loc: Sequence[str | int], lines: dict[Path_, int]) -> tuple[int | None, Path_]:
    """The line of the deepest known prefix of ``loc`` (skipping pydantic's union tags)."""
    best: Path_ = ()
    path: Path_ = ()
    for part in loc:
        candidate = (*path, part)
        if candidate in lines:
            path = candidate
            best = path
    return lines.get(best), best


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class whose fields live at ``loc`` (for suggesting valid keys)."""
    current: Any = Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(str(part))
        if info is None:
            continue
        current = _unwrap(info.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    for _ in range(5):
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if args else tp
        elif origin is list:
            tp = typing.get_args(tp)[0]
        else:
            break
    return tp


def _explain(err: Any, loc: Sequence[str | int]) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(loc[:-1])
        choices = sorted(model.model_fields) if model else []
        choices = [c for c in choices if c != "source"]
        hint = difflib.get_close_matches(key, choices, n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        valid = f" (valid: {', '.join(choices)})" if choices else ""
        return f"unknown key {key!r}{did}{valid}"
    if kind == "missing":
        return "required field is missing"
    if kind in ("literal_error", "enum"):
        expected = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        given = err.get("input")
        hint = difflib.get_close_matches(str(given), expected, n=1) if expected else []
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{given!r} is not a valid choice{did} (valid: {', '.join(expected)})"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, ") :]
    given = err.get("input")
    if kind not in ("value_error",) and not isinstance(given, dict | list):
        msg += f" (got {given!r})"
    return msg


_FIELD_AT_START = re.compile(
    r"^((?:target|dependencies|workload|steady_state|faults)(?:\.[\w-]+|\[\d+\])*)[: ]"
)


def locate_message(source: Path | None, message: str) -> str:
    """``message`` prefixed with ``file:line:`` when it starts with a field of ``source``.

    For problems found only when the run starts (a target command not found,
    a port taken, a SQL file unreadable): they name the field, and this adds
    where it is written. Unchanged when the field or the file is not found.
    """
    match = _FIELD_AT_START.match(message)
    if source is None or match is None:
        return message
    try:
        node = yaml.compose(source.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return message
    if node is None:
        return message
    lines, _ = _line_map(node, str(source))
    path: list[str | int] = []
    for name, index in re.findall(r"([\w-]+)|\[(\d+)\]", match.group(1)):
        path.append(int(index) if index else name)
    line, _ = _line_for(path, lines)
    return f"{source}:{line}: {message}" if line else message


def parse_scenario(text: str, source: str = "<string>", *, path: Path | None = None) -> Scenario:
    """Parse and validate scenario YAML; raise :class:`ScenarioError` listing every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ScenarioError(
            [Issue(source, line, "", f"not valid YAML: {exc.problem or exc}")]
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Issue(source, None, "", f"not valid YAML: {exc}")]) from None
    if node is None or data is None:
        raise ScenarioError([Issue(source, 1, "", "the file is empty")])
    if not isinstance(data, dict):
        raise ScenarioError(
            [Issue(source, 1, "", f"a scenario is a mapping of keys, got {type(data).__name__}")]
        )
    lines, issues = _line_map(node, source)
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate({**data, "source": path})
    except ValidationError as exc:
        for err in exc.errors():
            loc = [p for p in err["loc"] if isinstance(p, str | int)]
            # The model's cross-field checks carry each problem with its own location.
            located = (
                err.get("ctx", {}).get("problems") if err["type"] == "scenario_timeline" else None
            )
            for sub_loc, message in located or [((), _explain(err, loc))]:
                full = [*loc, *sub_loc]
                line, best = _line_for(full, lines)
                issues.append(Issue(source, line, _dotted(full) or _dotted(best), message))
    gates = scenario.gates if scenario is not None else _gates_that_parse(data)
    issues.extend(_check_gate_metrics(gates or [], data, lines, source))
    if scenario is not None:
        issues.extend(_check_service(scenario, lines, source))
    if issues:
        raise ScenarioError(issues)
    assert scenario is not None
    return scenario


def _gates_that_parse(data: dict[str, Any]) -> list[GateSpec]:
    """The file's gates, when the scenario as a whole is invalid (to check them too).

    Gates after one that does not parse are left out: their index would be wrong.
    """
    from resilience.scenario.model import _normalise_gates

    raw = _normalise_gates(data.get("gates"))
    specs: list[GateSpec] = []
    for item in raw if isinstance(raw, list) else []:
        try:
            specs.append(GateSpec.model_validate(item))
        except ValidationError:
            break
    return specs


def _target_of(data: dict[str, Any]) -> tuple[str, list[str]]:
    """The target kind and its operation names, read from the raw file (it may not validate)."""
    if not isinstance(data.get("target"), dict):
        return "reference", ["lookup", "job"]
    workload = data.get("workload")
    requests = workload.get("requests") if isinstance(workload, dict) else None
    names = [r.get("name") for r in requests or [] if isinstance(r, dict)]
    return "http", [n for n in names if isinstance(n, str)]


def _check_gate_metrics(
    gates: list[GateSpec], data: dict[str, Any], lines: dict[Path_, int], source: str
) -> list[Issue]:
    issues: list[Issue] = []
    raw = data.get("gates")
    kind, operations = _target_of(data)
    names = sorted(metric_names(kind) | set(operations))
    for i, spec in enumerate(gates):
        metric = spec.scoped.gate.metric
        if known_metric(metric, kind, operations):
            continue
        hint = difflib.get_close_matches(metric, names, n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        line = lines.get(("gates", i)) if isinstance(raw, list) else lines.get(("gates",))
        issues.append(
            Issue(
                source,
                line,
                f"gates[{i}]",
                f"unknown metric {metric!r} in {spec.expr!r}{did} (see docs/gates.md)",
            )
        )
    return issues


def _check_service(scenario: Scenario, lines: dict[Path_, int], source: str) -> list[Issue]:
    if not scenario.service:
        return []
    try:
        from resilience.service.config import ServiceConfig
    except ImportError:  # the service package is optional for parsing
        return []
    issues: list[Issue] = []
    for key, value in scenario.service.items():
        try:
            ServiceConfig().with_overrides({key: value})
        except (ValueError, GateSyntaxError) as exc:
            text = str(exc).splitlines()
            reason = next(
                (t.strip() for t in text[1:] if t.strip() and "For further" not in t),
                text[0] if text else "invalid",
            )
            if "unknown setting" in str(exc):
                reason = text[0]
            issues.append(Issue(source, lines.get(("service", key)), f"service.{key}", reason))
    return issues


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ScenarioError([Issue(str(p), None, "", f"cannot read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(
            [
                Issue(
                    str(p),
                    line,
                    "",
                    f"not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                    "a scenario is YAML text",
                )
            ]
        ) from None
    return parse_scenario(text, str(p), path=p)


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Scenario files named by ``paths`` (directories give their ``*.yaml``/``*.yml``, sorted)."""
    found: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        else:
            found.append(p)
    return found


@dataclass(frozen=True, slots=True)
class FileCheck:
    """One scenario file checked: its scenario, or the problems that prevent it."""

    path: Path
    scenario: Scenario | None
    issues: list[Issue]


def check_files(paths: Iterable[str | Path]) -> list[FileCheck]:
    """Check every scenario file named by ``paths``, each on its own (a bad one stops none).

    A name used by an earlier file is a problem of the later one. Raises
    :class:`ScenarioError` only when ``paths`` name no file at all.
    """
    files = discover(paths)
    if not files:
        raise ScenarioError([Issue(", ".join(map(str, paths)), None, "", "no scenario files")])
    checks: list[FileCheck] = []
    names: dict[str, Path] = {}
    for file in files:
        try:
            scenario = load_scenario(file)
        except ScenarioError as exc:
            checks.append(FileCheck(file, None, exc.issues))
            continue
        if scenario.name in names:
            issue = Issue(
                str(file),
                1,
                "name",
                f"scenario name {scenario.name!r} is also used by {names[scenario.name]}",
            )
            checks.append(FileCheck(file, None, [issue]))
            continue
        names[scenario.name] = file
        checks.append(FileCheck(file, scenario, []))
    return checks


def load_suite(paths: Iterable[str | Path]) -> list[Scenario]:
    """Load every scenario named by ``paths``; report the problems of all files together."""
    checks = check_files(paths)
    issues = [issue for check in checks for issue in check.issues]
    if issues:
        raise ScenarioError(issues)
    return [check.scenario for check in checks if check.scenario is not None]
