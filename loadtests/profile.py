"""Load profile files: one YAML document per profile, found by name or path.

::

    name: smoke
    description: a few seconds of wizard traffic
    catalogue: {seed: 42, size: 300}          # what the database is seeded with
    shape: {kind: steady, users: 10, duration: 5s}
    workload: {zipf_s: 1.1, unknown_ratio: 0.03, invalid_ratio: 0.01,
               job_ratio: 0.2, wait_s: [0.0, 0.05]}
    faults:                                   # scenario fault entries, seconds from start
      - {at: 2s, duration: 3s, target: postgres, toxic: timeout, attributes: {timeout: 0}}
    gates:                                    # the scenario gate grammar (docs/gates.md)
      - "p95(/services/[slug]) < 50ms"
      - "failure_ratio < 0.01"
    service: {workers: 1, overrides: {cache.max_size: 100}}   # read by `resilience load`
    run: {processes: 0}                       # Locust worker processes (0: none)

Any service instead of the reference one: a scenario's ``target``,
``dependencies``, ``requests`` and ``keys`` (or ``include: scenario.yaml``
to take them from a scenario), read by
:mod:`resilience.scenario.load_target`; the users are then
:class:`loadtests.http_user.TargetUser`, built from ``requests``::

    target: {command: "python app.py {port}", url: "http://127.0.0.1:{port}", ready: /health}
    dependencies: {redis: {}}
    requests:
      - {name: item, path: "/items/{key}", degraded_when: [{header: X-Fallback}]}
    keys: [a, b, c]

Gates may be phase-scoped as in a scenario (``@ during: redis-down``,
``@ after: …``, ``@ before: …``): they are judged on per-second buckets of
the requests that started in the phase's windows (to 0.1 s).

Everything but ``shape`` is optional. A command-line option given to Locust
(``--shape``, ``--shape-params``, ``--zipf-s`` …) wins over the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from loadtests.stages import Shape, build_shape, parse_duration_s
from loadtests.timeline import parse_faults
from resilience.scenario.gates import ScopedGate, parse_scoped_gate
from resilience.scenario.load_target import LoadTarget, read_load_target
from resilience.scenario.model import FaultSpec

__all__ = ["PROFILES_DIR", "LoadProfile", "load_profile", "parse_gates", "resolve_profile_path"]

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
"""Where profiles named without a path are looked up (``NAME.yaml``)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogueSpec(_Model):
    """The seeded catalogue: deterministic from ``seed`` and ``size``."""

    seed: int = 42
    size: int = Field(default=300, ge=1)


class WorkloadSpec(_Model):
    """What the users ask for and how long they think between steps (seconds)."""

    zipf_s: float = Field(default=1.1, ge=0)
    unknown_ratio: float = Field(default=0.03, ge=0, le=1)
    invalid_ratio: float = Field(default=0.01, ge=0, le=1)
    job_ratio: float = Field(default=0.2, ge=0, le=1)
    wait_s: tuple[float, float] = (0.0, 0.0)
    seed: int = 0

    @field_validator("wait_s", mode="before")
    @classmethod
    def _wait(cls, value: object) -> object:
        if isinstance(value, int | float | str):
            value = (value, value)
        if isinstance(value, list | tuple) and len(value) == 2:
            low, high = (parse_duration_s(v) for v in value)
            if low > high:
                raise ValueError("wait_s: minimum above maximum")
            return (low, high)
        return value


class ServiceSpec(_Model):
    """How ``resilience load`` starts the service."""

    workers: int = Field(default=1, ge=1)
    overrides: dict[str, Any] = Field(default_factory=dict)


class RunSpec(_Model):
    """How ``resilience load`` starts Locust."""

    processes: int = Field(default=0, ge=-1)
    """Local Locust worker processes (Locust's ``--processes``; -1: one per core; 0: none)."""


class LoadProfile(_Model):
    """A parsed profile file."""

    name: str
    description: str = ""
    catalogue: CatalogueSpec = CatalogueSpec()
    shape: dict[str, Any]
    workload: WorkloadSpec = WorkloadSpec()
    faults: tuple[FaultSpec, ...] = ()
    gates: tuple[str, ...] = ()
    service: ServiceSpec = ServiceSpec()
    run: RunSpec = RunSpec()
    include: str | None = None
    """A scenario file whose target, dependencies, requests and keys this profile takes."""
    target: Any = "reference"
    dependencies: Any = None
    requests: Any = None
    keys: Any = None

    @model_validator(mode="after")
    def _faults_on_declared(self) -> LoadProfile:
        declared = ("postgres", "redis")
        if isinstance(self.dependencies, dict):
            declared = tuple(sorted(self.dependencies))
        elif self.include is not None:
            return self  # checked against the included scenario by :meth:`target_for`
        _check_fault_targets(self.faults, declared)
        return self

    def target_for(
        self, source: Path, *, command: str | None = None, url: str | None = None
    ) -> LoadTarget:
        """The service under test (``--command``/``--url`` applied), validated as a scenario."""
        raw = self.model_dump(include={"include", "target", "dependencies", "requests", "keys"})
        raw = {k: v for k, v in raw.items() if k in self.model_fields_set}
        target = read_load_target(raw, source, command=command, url=url)
        _check_fault_targets(self.faults, target.declared)
        if target.is_http:
            target.scenario(self.name, faults=self.faults)  # the scenario's own checks
        return target

    @field_validator("shape")
    @classmethod
    def _shape_is_buildable(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "kind" not in value:
            raise ValueError("shape needs a kind (steady, spike, ramp or soak)")
        params = {k: v for k, v in value.items() if k != "kind"}
        build_shape(str(value["kind"]), params)
        return value

    @field_validator("faults", mode="before")
    @classmethod
    def _faults(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return tuple(parse_faults(value, declared=None))
        return value

    @field_validator("gates", mode="before")
    @classmethod
    def _gates(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            value = (value,)
        if isinstance(value, list | tuple):
            parse_gates(tuple(value), faults=info.data.get("faults", ()))
        return value

    def build_shape(
        self, *, kind: str | None = None, params: Mapping[str, Any] | None = None
    ) -> Shape:
        """The profile's shape, with ``kind`` and ``params`` from the command line winning."""
        file_kind = str(self.shape["kind"])
        file_params = {k: v for k, v in self.shape.items() if k != "kind"}
        if kind is not None and kind != file_kind:
            file_params = {}  # another shape's parameters mean nothing to this one
        return build_shape(kind or file_kind, {**file_params, **(params or {})})


def _check_fault_targets(faults: Sequence[FaultSpec], declared: Sequence[str]) -> None:
    for i, fault in enumerate(faults):
        if fault.target not in declared:
            hint = difflib.get_close_matches(fault.target, declared, n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(
                f"faults[{i}]: target {fault.target!r} is not a proxied dependency{did} "
                f"(choose from {', '.join(declared)})"
            )


def parse_gates(
    gates: Sequence[str], faults: Sequence[FaultSpec] | None = None
) -> list[ScopedGate]:
    """Parse ``gates`` with the scenario grammar (phases included).

    With ``faults``, a phase naming a fault that is not in the profile's
    timeline is refused. Raises :class:`ValueError` (``GateSyntaxError`` is
    one) naming the gate.
    """
    scoped = [parse_scoped_gate(text) for text in gates]
    if faults is not None:
        names = [f.name for f in faults]
        for gate in scoped:
            named = gate.phase.fault
            if named is not None and named not in names:
                hint = difflib.get_close_matches(named, names, n=1)
                did = f"; did you mean {hint[0]!r}?" if hint else ""
                raise ValueError(
                    f"gate {gate.source!r} names fault {named!r}, which is not in the "
                    f"profile's timeline{did} (faults: {', '.join(names) or 'none'})"
                )
    return scoped


def resolve_profile_path(name_or_path: str | Path) -> Path:
    """A path as given if it exists, else ``profiles/NAME.yaml`` beside this module."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (PROFILES_DIR / f"{name_or_path}.yaml", PROFILES_DIR / f"{name_or_path}.yml"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
    raise FileNotFoundError(f"no profile {str(name_or_path)!r}: not a file, not one of {known}")


def load_profile(name_or_path: str | Path) -> LoadProfile:
    """Read and validate a profile; :class:`ValueError` names what is wrong."""
    path = resolve_profile_path(name_or_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a profile is a mapping, got {type(data).__name__}")
    data.setdefault("name", path.stem)
    return LoadProfile.model_validate(data)
