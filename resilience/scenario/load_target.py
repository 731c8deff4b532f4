"""The service-under-test sections of a load profile, as a scenario has them.

A profile (``loadtests/profiles/*.yaml``, read by ``resilience load``) may
carry the scenario's ``target:``, ``dependencies:``, ``requests:`` (a
scenario's ``workload.requests``) and ``keys:`` (a list, or
``{values: [...]}`` / ``{catalogue_size: N}`` as in a scenario), or take them
from a scenario with ``include: path/to/scenario.yaml`` (relative to the
profile). With ``include``, ``requests`` may instead pick the included
requests by name, optionally changing fields::

    include: ../../scenarios/http/01-steady-state.yaml
    requests: [lookup, {name: health, weight: 0.1}]

Validation is the scenario's own: :meth:`LoadTarget.scenario` builds a
:class:`~resilience.scenario.model.Scenario` from these sections, so an HTTP
target without requests, a template naming an undeclared dependency or a
fault on an undeclared dependency fails exactly as in a scenario file.
Command-line overrides (``resilience load --command/--url``) are applied by
:func:`read_load_target`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from resilience.scenario.durations import parse_duration_s
from resilience.scenario.model import EnvironmentSpec, FaultSpec, Scenario
from resilience.scenario.target_spec import DependencySpec, HttpTargetSpec, RequestSpec

__all__ = ["TARGET_SECTIONS", "LoadTarget", "read_load_target"]

TARGET_SECTIONS = ("include", "target", "dependencies", "requests", "keys")
"""The profile keys this module reads (the rest is the locustfile's)."""

_URL_READY_S = 5.0
"""How long a service at ``--url`` (already running) has to answer ``ready``."""

_RUN_FOREVER_S = 10 * 365 * 86_400.0
"""The synthetic scenario's duration: a load run's length is its shape's business."""


@dataclass(frozen=True, slots=True)
class LoadTarget:
    """A profile's service under test: ``reference`` (today's wizard) or an HTTP target."""

    target: str | HttpTargetSpec
    dependencies: dict[str, DependencySpec] | None
    requests: tuple[RequestSpec, ...]
    keys: tuple[str, ...] | None
    """Listed keys, or ``None``: the catalogue seeded with ``seed``/``catalogue_size``."""
    catalogue_size: int
    seed: int
    source: Path

    @property
    def is_http(self) -> bool:
        return isinstance(self.target, HttpTargetSpec)

    @property
    def declared(self) -> tuple[str, ...]:
        """The dependencies a fault may name (the built-ins when none are declared)."""
        if self.dependencies is None:
            return ("postgres", "redis")
        return tuple(sorted(self.dependencies))

    def scenario(
        self,
        name: str,
        *,
        faults: Sequence[FaultSpec] = (),
        backend: str | None = None,
    ) -> Scenario:
        """The equivalent scenario (validated as one): what the target launcher takes."""
        keys: dict[str, Any] = {"catalogue_size": self.catalogue_size}
        if self.keys is not None:
            keys["values"] = list(self.keys)
        data: dict[str, Any] = {
            "name": name,
            "seed": self.seed,
            "target": self.target,
            "workload": {
                "duration": _RUN_FOREVER_S,
                "rate": 1,
                "keys": keys,
                "requests": list(self.requests) or None,
            },
            "faults": list(faults),
            "gates": [],
            "source": self.source,
        }
        if self.dependencies is not None:
            data["dependencies"] = self.dependencies
        if backend is not None:
            data["environment"] = EnvironmentSpec(backend=backend)  # type: ignore[arg-type]
        try:
            return Scenario.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"{self.source}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"] if p not in ("workload",))
        problems = (err.get("ctx") or {}).get("problems")
        message = "; ".join(m for _, m in problems) if problems else err["msg"]
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _included(path: Path) -> Scenario:
    from resilience.scenario.loader import load_scenario

    return load_scenario(path)


def _pick_requests(
    entries: Sequence[Any], included: Sequence[RequestSpec], source: Path
) -> list[RequestSpec]:
    """Full entries as given; names (or ``{name: …}`` without ``path``) pick included ones."""
    by_name = {r.name: r for r in included}
    out: list[RequestSpec] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, Mapping) and "path" in entry:
            out.append(_request(entry, source, i))
            continue
        name = entry if isinstance(entry, str) else (entry or {}).get("name")
        if not isinstance(name, str):
            raise ValueError(f"{source}: requests[{i}]: a request name or a full request entry")
        if name not in by_name:
            hint = difflib.get_close_matches(name, list(by_name), n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            known = ", ".join(by_name) or "none: include a scenario with workload.requests"
            raise ValueError(
                f"{source}: requests[{i}]: no request named {name!r}{did}; requests: {known}"
            )
        base = by_name[name]
        if isinstance(entry, Mapping):
            changes = {k: v for k, v in entry.items() if k != "name"}
            merged = {**base.model_dump(by_alias=True, exclude_unset=True), **changes}
            out.append(_request(merged, source, i))
        else:
            out.append(base)
    return out


def _request(entry: Mapping[str, Any], source: Path, i: int) -> RequestSpec:
    try:
        return RequestSpec.model_validate(dict(entry))
    except ValidationError as exc:
        raise ValueError(f"{source}: requests[{i}]: {_first_error(exc)}") from None


def read_load_target(
    data: Mapping[str, Any],
    source: Path,
    *,
    command: str | None = None,
    url: str | None = None,
) -> LoadTarget:
    """The target sections of a profile mapping read from ``source``, overrides applied.

    ``command`` replaces ``target.command`` (and makes the target an HTTP one);
    ``url`` replaces ``target.url``; with ``url`` and no ``command`` nothing is
    started (the service is already running there). Raises :class:`ValueError`
    naming the file and the field.
    """
    included: Scenario | None = None
    if data.get("include") is not None:
        path = Path(str(data["include"]))
        path = path if path.is_absolute() else source.parent / path
        included = _included(path)  # ScenarioError (a ValueError) names file:line:field
    target: Any = data.get("target", included.target if included else "reference")
    dependencies: Any = data.get("dependencies", included.dependencies if included else None)
    if dependencies is not None:
        try:
            dependencies = {
                str(k): DependencySpec.model_validate(v or {}) for k, v in dependencies.items()
            }
        except (ValidationError, AttributeError) as exc:
            raise ValueError(f"{source}: dependencies: {exc}") from None
    included_requests = list(included.workload.requests or []) if included else []
    raw_requests = data.get("requests")
    if raw_requests is None:
        requests = included_requests
    elif not isinstance(raw_requests, list):
        raise ValueError(f"{source}: requests: a list of request entries")
    elif included is not None:
        requests = _pick_requests(raw_requests, included_requests, source)
    else:
        requests = [_request(entry, source, i) for i, entry in enumerate(raw_requests)]
    names = [r.name for r in requests]
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: requests: names must be unique, got {names}")
    keys, size = _keys(data.get("keys"), included, source)
    if command is not None or url is not None:
        spec: dict[str, Any] = {}
        if isinstance(target, HttpTargetSpec):
            spec = target.model_dump(by_alias=True, exclude_unset=True)
        elif isinstance(target, Mapping):
            spec = dict(target)
        if command is not None:
            spec["command"] = command
        elif url is not None:
            spec.pop("command", None)
            given = spec.get("startup_timeout", _URL_READY_S)
            seconds = float(parse_duration_s(given))  # type: ignore[arg-type]
            spec["startup_timeout"] = min(seconds, _URL_READY_S)  # it runs already: answer now
        if url is not None:
            spec["url"] = url
        target = spec
    if isinstance(target, Mapping):
        try:
            target = HttpTargetSpec.model_validate(dict(target))
        except ValidationError as exc:
            raise ValueError(f"{source}: target: {_first_error(exc)}") from None
    elif target != "reference" and not isinstance(target, HttpTargetSpec):
        raise ValueError(f"{source}: target: 'reference' or {{command: ..., url: ...}}")
    seed = included.seed if included else 0
    return LoadTarget(
        target=target,
        dependencies=dependencies,
        requests=tuple(requests),
        keys=keys,
        catalogue_size=size,
        seed=seed,
        source=source,
    )


def _keys(raw: Any, included: Scenario | None, source: Path) -> tuple[tuple[str, ...] | None, int]:
    size = included.workload.keys.catalogue_size if included else 200
    listed = included.workload.keys.values if included else None
    if isinstance(raw, list):
        listed = [str(k) for k in raw]
    elif isinstance(raw, Mapping):
        if "values" in raw:
            listed = [str(k) for k in raw["values"] or []]
        size = int(raw.get("catalogue_size", size))
    elif raw is not None:
        raise ValueError(f"{source}: keys: a list of keys or {{values: [...]}}")
    if listed is not None and not listed:
        raise ValueError(f"{source}: keys: at least one key")
    return (tuple(listed) if listed is not None else None), size
