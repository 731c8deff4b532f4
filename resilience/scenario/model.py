"""The scenario schema: what a scenario YAML file may contain.

Every model forbids unknown keys (``extra="forbid"``) so a typo is an error,
not a silently ignored setting. Durations are float seconds; strings such as
``"250ms"``, ``"20s"`` or ``"1.5m"`` are accepted wherever a duration is.
Times in the fault timeline count from the start of the workload (t = 0 is
the first arrival, warm-up included).

See docs/scenarios.md for the file format with examples.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from resilience.scenario.durations import (
    PositiveSeconds,
    Seconds,
    Share,
    parse_duration_s,
)
from resilience.scenario.gates import ScopedGate, default_gates, parse_scoped_gate
from resilience.scenario.gates.grammar import BREAKER_STATES
from resilience.scenario.target_spec import (
    BUILTIN_DEPENDENCIES,
    DependencySpec,
    HttpTargetSpec,
    RequestSpec,
    StatusCheck,
    check_dependencies,
    placeholders,
)

__all__ = [
    "BOOKING_API",
    "EXTENSION_TOXICS",
    "HTTP_TOXICS",
    "INSTANT_ACTIONS",
    "PROCESS_ACTIONS",
    "PROTOCOL_TOXICS",
    "TOXIC_ATTRIBUTES",
    "EnvironmentSpec",
    "FaultSpec",
    "FaultTarget",
    "GateSpec",
    "KeysSpec",
    "MigrationSpec",
    "MixSpec",
    "Scenario",
    "SteadyStateSpec",
    "WorkloadSpec",
    "parse_duration_s",
]

FaultTarget = Annotated[str, Field(min_length=1)]
"""A declared dependency's name (``postgres``, ``redis`` or one of ``dependencies:``)."""
ToxicType = Literal[
    "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop",
    "postgres_error", "redis_error", "http_error", "http_delay", "http_abort",
]  # fmt: skip
PROCESS_ACTIONS = frozenset({"pause", "resume", "kill", "restart"})
"""Faults on the dependency's server process rather than its proxy (docs/scenarios.md)."""
INSTANT_ACTIONS = frozenset({"enable", "resume"})
"""Actions that end an earlier fault rather than start one (no duration, never 'active')."""
PROTOCOL_TOXICS = frozenset({"postgres_error", "redis_error"})
"""Our proxy's extensions that read the client's protocol (upstream stream only)."""
HTTP_TOXICS = frozenset({"http_error", "http_delay", "http_abort"})
"""Our proxy's HTTP/1.1 extensions (per request; docs/toxics.md)."""
EXTENSION_TOXICS = PROTOCOL_TOXICS | HTTP_TOXICS
"""Toxics the real Toxiproxy does not have: a scenario using one is refused there."""

TOXIC_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
    "noop": (),
    "postgres_error": ("sqlstate", "message", "rate", "prefix"),
    "redis_error": ("error", "rate", "commands"),
    "http_error": ("methods", "paths", "exclude", "rate", "status", "body", "headers"),
    "http_delay": ("methods", "paths", "exclude", "rate", "latency", "jitter"),
    "http_abort": ("methods", "paths", "exclude", "rate", "mode", "after_bytes"),
}
"""Wire attributes of each Toxiproxy toxic (ms, except bandwidth ``rate`` in KB/s,
slicer ``delay`` in µs and sizes in bytes). The ``http_*`` toxics are extensions
of our proxy (typed attributes, see docs/toxics.md); a scenario using them is
refused when the proxy server is the real Toxiproxy."""


BOOKING_API = "booking-api"
"""The reference target's HTTP dependency: the booking API stub behind this proxy."""


def needs_booking_api(scenario: Any) -> bool:
    """Whether ``scenario`` books (mix weight ``booking``) or faults the booking API."""
    return scenario.workload.mix.booking > 0 or any(
        fault.target == BOOKING_API for fault in scenario.faults
    )


def _check_http_toxic(toxic: str, attributes: dict[str, Any]) -> None:
    """An HTTP toxic's attributes (ValueError naming the problem): the scenario's reading
    (http_toxics), then the proxy's own API check, so nothing is refused mid-run."""
    from resilience.proxy.toxic import attributes_problem
    from resilience.scenario.http_toxics import http_toxic_attributes

    http_toxic_attributes(toxic, attributes)
    problem = attributes_problem(toxic, attributes)  # what our proxy's API would answer
    if problem is not None:
        raise ValueError(f"toxic {toxic!r}: {problem}")


def _number(value: int | float | str) -> float:
    """A numeric attribute's value (a string where a number belongs counts as 0)."""
    return float(value) if isinstance(value, int | float) else 0.0


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvironmentSpec(_Spec):
    """Where the dependencies run: ``local`` processes, ``docker`` containers or ``external``."""

    backend: Literal["local", "docker", "external"] = "local"
    options: dict[str, Any] = Field(default_factory=dict)


class KeysSpec(_Spec):
    """Which slugs the lookups ask for.

    Known slugs are drawn from the seeded catalogue (``catalogue_size`` entries)
    by ``distribution``: ``zipf`` (rank r with weight 1/r^exponent) or
    ``uniform``. ``unknown_share`` of lookups use well-formed slugs that are not
    in the database; ``invalid_share`` use malformed slugs.
    """

    distribution: Literal["zipf", "uniform"] = "zipf"
    exponent: float = Field(default=1.1, gt=0)
    catalogue_size: int = Field(default=200, ge=1, le=100_000)
    unknown_share: Share = 0.0
    invalid_share: Share = 0.0
    values: list[str] | None = Field(default=None, min_length=1)
    """The known keys, in rank order (instead of the seeded catalogue)."""
    file: Path | None = None
    """A file of known keys, one a line, in rank order (relative to the scenario file)."""

    @model_validator(mode="after")
    def _shares(self) -> KeysSpec:
        if self.values is not None and self.file is not None:
            raise ValueError("give the keys as 'values' or in a 'file', not both")
        if self.unknown_share + self.invalid_share > 1:
            raise ValueError("unknown_share + invalid_share must not exceed 1")
        return self


class MixSpec(_Spec):
    """Relative weights of the operations (normalised; at least one above 0)."""

    lookup: float = Field(default=1.0, ge=0)
    job: float = Field(default=0.0, ge=0)
    booking: float = Field(default=0.0, ge=0)
    """Bookings through the booking API (``POST /bookings`` flow; needs ``booking-api``)."""

    @model_validator(mode="after")
    def _some(self) -> MixSpec:
        if self.lookup + self.job + self.booking <= 0:
            raise ValueError("the operation mix needs at least one weight above 0")
        return self


class WorkloadSpec(_Spec):
    """An open-model workload: arrivals at ``rate`` per second for ``duration``.

    Requests start on schedule whether or not earlier ones finished; at most
    ``concurrency`` run at once, and a start delayed by that limit or by the
    event loop is recorded as lateness (no coordinated omission). The first
    ``warmup`` seconds fill the caches and are excluded from the gates.
    """

    duration: PositiveSeconds
    rate: float = Field(gt=0, le=1_000_000)
    warmup: Seconds = 0.0
    arrivals: Literal["poisson", "uniform"] = "poisson"
    concurrency: int = Field(default=512, ge=1)
    mix: MixSpec = MixSpec()
    keys: KeysSpec = KeysSpec()
    late_tolerance: PositiveSeconds = 0.005
    """A start later than this counts as late in ``late_rate``."""
    sample_interval: PositiveSeconds = 1.0
    """How often service statistics are sampled into the history."""
    requests: list[RequestSpec] | None = Field(default=None, min_length=1)
    """An HTTP target's operations, drawn by weight (instead of ``mix``)."""

    @model_validator(mode="after")
    def _warmup(self) -> WorkloadSpec:
        names = [r.name for r in self.requests or []]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two requests are named {name!r}; names must be unique")
        if self.warmup >= self.duration:
            raise ValueError(
                f"warmup ({self.warmup:g} s) must be shorter than duration ({self.duration:g} s)"
            )
        return self


def _check_crash(fault: FaultSpec) -> None:
    """``action: crash`` needs ``target: service`` and a known ``component``; nothing else does."""
    from resilience.service.components import BACKGROUND_COMPONENTS

    if fault.action != "crash":
        if fault.target == "service":
            raise ValueError("target 'service' takes only 'action: crash' (with 'component')")
        if fault.component is not None:
            raise ValueError("'component' belongs to 'action: crash'")
        return
    if fault.target != "service":
        raise ValueError("'action: crash' needs 'target: service'")
    if fault.component not in BACKGROUND_COMPONENTS:
        hint = difflib.get_close_matches(str(fault.component), BACKGROUND_COMPONENTS, n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(
            f"unknown component {fault.component!r} for 'action: crash'{did} "
            f"(background components: {', '.join(BACKGROUND_COMPONENTS)})"
        )


class FaultSpec(_Spec):
    """One entry of the fault timeline.

    Either a ``toxic`` (any Toxiproxy toxic, with ``stream``, ``toxicity`` and
    its wire ``attributes``) or an ``action`` on the proxy (``disable`` cuts
    the dependency off, ``enable`` restores it). It starts at ``at`` and is
    removed after ``duration`` (or at the end of the run when omitted).
    ``every`` and ``times`` repeat it (a storm).
    """

    name: str = ""
    at: Seconds
    duration: PositiveSeconds | None = None
    target: FaultTarget
    toxic: ToxicType | None = None
    action: Literal["disable", "enable", "pause", "resume", "kill", "restart", "crash"] | None = (
        None
    )
    keep_data: bool = False
    component: str | None = None
    """``action: crash`` only: the target's background component to crash."""
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: Share = 1.0
    attributes: dict[str, Any] = Field(default_factory=dict)
    every: PositiveSeconds | None = None
    times: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _shape(self) -> FaultSpec:
        if (self.toxic is None) == (self.action is None):
            raise ValueError("a fault needs exactly one of 'toxic' or 'action'")
        if self.action is not None and self.attributes:
            raise ValueError("'attributes' apply to a toxic, not to an action")
        if self.action in INSTANT_ACTIONS and self.duration is not None:
            raise ValueError(f"a {self.action!r} action is instantaneous; drop 'duration'")
        if self.keep_data and not (self.action in ("kill", "restart") and self.target == "redis"):
            raise ValueError("'keep_data' applies to a Redis 'kill' or 'restart' only")
        _check_crash(self)
        if self.toxic is not None:
            allowed = TOXIC_ATTRIBUTES[self.toxic]
            for key in self.attributes:
                if key not in allowed:
                    hint = difflib.get_close_matches(key, allowed, n=1)
                    did = f"; did you mean {hint[0]!r}?" if hint else ""
                    choices = ", ".join(allowed) or "none"
                    raise ValueError(
                        f"toxic {self.toxic!r} has no attribute {key!r}{did} (valid: {choices})"
                    )
            if self.toxic in HTTP_TOXICS:
                _check_http_toxic(self.toxic, self.attributes)
                return self._repeats()
            for key, value in self.attributes.items():
                if not isinstance(value, int | float | str) or isinstance(value, bool):
                    raise ValueError(
                        f"attribute {key!r} must be a number or a string (got {value!r})"
                    )
            if self.toxic == "bandwidth" and _number(self.attributes.get("rate", 0)) <= 0:
                raise ValueError("bandwidth 'rate' (KB/s) must be above 0; 0 stalls all traffic")
            if self.toxic == "slicer" and _number(self.attributes.get("average_size", 0)) <= 0:
                raise ValueError("slicer 'average_size' (bytes) must be above 0")
            if self.toxic in PROTOCOL_TOXICS and self.stream != "upstream":
                raise ValueError(
                    f"toxic {self.toxic!r} reads the client's requests: add 'stream: upstream'"
                )
            for key, value in self.attributes.items():
                if isinstance(value, int | float) and value < 0:
                    raise ValueError(f"attribute {key!r} must not be negative (got {value})")
        return self._repeats()

    def _repeats(self) -> FaultSpec:
        if self.times > 1 and self.every is None:
            raise ValueError("'times' above 1 needs 'every' (the repeat period)")
        if self.every is not None and self.duration is not None and self.every <= self.duration:
            raise ValueError("'every' must be longer than 'duration' so repeats do not overlap")
        return self

    @property
    def kind(self) -> str:
        """``toxic:<type>`` or ``action:<disable|enable|pause|resume|kill|restart>``."""
        return f"toxic:{self.toxic}" if self.toxic else f"action:{self.action}"

    @property
    def end(self) -> float | None:
        """When the last repeat ends (seconds since start), ``None`` if it never does."""
        if self.duration is None:
            return None
        return self.at + (self.times - 1) * (self.every or 0.0) + self.duration


_DEPENDENCY_FIELDS = {
    "postgres": ("url", "direct_url", "host", "port", "user", "password", "database"),
    "redis": ("url", "direct_url", "host", "port"),
}
_TCP_FIELDS = ("host", "port", "address", "direct_address")


def _check_environment_name(name: str, declared: list[str], field: str) -> None:
    """``{port}`` or ``{dependency.field}``; anything else is an error naming the choices."""
    if name == "port":
        return
    dep, _, attr = name.partition(".")
    if dep not in declared:
        hint = difflib.get_close_matches(dep, declared, n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(
            f"{field}: {{{name}}} names no declared dependency{did} "
            f"(dependencies: {', '.join(declared)}; and {{port}})"
        )
    fields = _DEPENDENCY_FIELDS.get(dep, _TCP_FIELDS)
    if attr not in fields:
        hint = difflib.get_close_matches(attr, fields, n=1)
        did = f"; did you mean {{{dep}.{hint[0]}}}?" if hint else ""
        raise ValueError(
            f"{field}: {{{name}}}: {dep} has no {attr!r}{did} (fields: {', '.join(fields)})"
        )


class GateSpec(_Spec):
    """A gate with an explicit phase (the string form ``expr @ phase`` is the same)."""

    expr: str
    phase: str = "all"
    allow_no_data: bool = False
    """The gate may see no data (as ``… if any``); otherwise NO DATA fails the run."""

    @model_validator(mode="after")
    def _parses(self) -> GateSpec:
        self.scoped  # noqa: B018  (a GateSyntaxError is a ValueError)
        return self

    @property
    def scoped(self) -> ScopedGate:
        return parse_scoped_gate(self.expr, self.phase, allow_no_data=self.allow_no_data)


def _normalise_gates(value: Any) -> Any:
    """Accept a list of strings / ``{expr, phase}`` items, or a mapping phase → list."""
    if isinstance(value, dict):
        items: list[Any] = []
        for phase, exprs in value.items():
            for expr in exprs if isinstance(exprs, list) else [exprs]:
                items.append({"expr": expr, "phase": phase} if isinstance(expr, str) else expr)
        return items
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, str):
                out.append({"expr": item})
            elif (
                isinstance(item, dict)
                and len(item) == 1
                and isinstance(next(iter(item)), str)
                and "@" in next(iter(item))
            ):
                # YAML read "x >= 1 @ during: pg-down" as {"x >= 1 @ during": "pg-down"}
                key, val = next(iter(item.items()))
                out.append({"expr": f"{key}: {val}"})
            else:
                out.append(item)
        return out
    return value


class MigrationSpec(_Spec):
    """The ``micro_uuid`` backfill run while the workload (and faults) go on.

    ``jobs`` historical jobs without a UUID are seeded first (``unknown_share``
    of them name retired services, to be *skipped*). At ``at`` the backfill
    runs in batches of ``batch_size``; a run that fails is started again after
    ``retry_interval`` (re-running is safe), at most ``max_runs`` times; with
    ``catch_up`` it runs once more after the faults are removed.
    """

    at: Seconds = 0.0
    jobs: int = Field(default=2000, ge=1, le=1_000_000)
    unknown_share: Share = 0.1
    batch_size: int = Field(default=100, ge=1)
    retry_interval: PositiveSeconds = 1.0
    max_runs: int = Field(default=30, ge=1)
    catch_up: bool = True
    """Run once more after the faults are removed, for jobs posted during the run."""


class SteadyStateSpec(_Spec):
    """The health probe before the workload and after the faults are removed.

    ``probes`` lookups of known slugs must all succeed and the breaker must be
    closed; after the faults, the check is retried for up to ``timeout``.
    ``probes: 0`` or ``required: false`` skip the check before the workload (a
    cold start: nothing has warmed the service's caches or pool at t = 0).
    """

    probes: int = Field(default=20, ge=0, le=10_000)
    """0: a cold start (below); after the faults only the breaker is checked."""
    timeout: PositiveSeconds = 30.0
    http: list[StatusCheck] = Field(default_factory=list)
    """An HTTP target's checks: ``{get: /health, status: 200, within: 100ms}``."""
    required: bool = True
    """When true, a failed check after the faults fails the run (exit 1); false also
    makes the run a cold start."""

    @property
    def cold_start(self) -> bool:
        """No probe before the workload: cache, Redis and pool are cold at t = 0
        (``probes: 0`` or ``required: false``)."""
        return self.probes == 0 or not self.required


class Scenario(_Spec):
    """A complete scenario file."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    description: str = ""
    seed: int = 0
    environment: EnvironmentSpec = EnvironmentSpec()
    target: Literal["reference"] | HttpTargetSpec = "reference"
    """The service under test: the in-process reference service, or an HTTP service."""
    dependencies: dict[str, DependencySpec] | None = None
    """What sits behind fault proxies (default: postgres and redis)."""
    service: dict[str, Any] = Field(default_factory=dict)
    """Dotted service settings, e.g. ``breaker.reset_timeout_s: 5s``."""
    workload: WorkloadSpec
    faults: list[FaultSpec] = Field(default_factory=list)
    gates: Annotated[list[GateSpec] | None, BeforeValidator(_normalise_gates)] = None
    """``None``: the default gates of TARGETS.md apply."""
    steady_state: SteadyStateSpec = SteadyStateSpec()
    migration: MigrationSpec | None = None
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _name_faults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("faults"), list):
            faults = []
            for i, fault in enumerate(data["faults"]):
                if isinstance(fault, dict) and not fault.get("name"):
                    kind = fault.get("toxic") or fault.get("action") or "fault"
                    fault = {**fault, "name": f"{fault.get('target', 'x')}-{kind}-{i + 1}"}
                faults.append(fault)
            data = {**data, "faults": faults}
        return data

    @model_validator(mode="after")
    def _timeline(self) -> Scenario:
        """Fault names unique, faults inside the workload, gates naming real faults.

        Every problem is reported, each at its own field: the error carries
        ``ctx["problems"]``, a list of ``(location, message)`` that the loader
        maps to lines.
        """
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen: set[str] = set()
        duration = self.workload.duration
        for i, fault in enumerate(self.faults):
            if fault.name in seen:
                problems.append(
                    (
                        ("faults", i, "name"),
                        f"two faults are named {fault.name!r}; names must be unique",
                    )
                )
            seen.add(fault.name)
            if fault.at > duration + 1e-9:
                problems.append(
                    (
                        ("faults", i, "at"),
                        f"fault {fault.name!r} starts at {fault.at:g} s, after the workload "
                        f"(duration {duration:g} s)",
                    )
                )
            elif fault.end is not None and fault.end > duration + 1e-9:
                field = "times" if fault.times > 1 else "duration"
                problems.append(
                    (
                        ("faults", i, field),
                        f"fault {fault.name!r} ends at {fault.end:g} s, after the workload "
                        f"(duration {duration:g} s)",
                    )
                )
        times = {fault.name: fault.times for fault in self.faults}
        for j, spec in enumerate(self.gates or []):
            named = spec.scoped.phase.fault
            nth = spec.scoped.phase.occurrence
            if named in times and nth is not None and nth > times[named]:
                problems.append(
                    (
                        ("gates", j),
                        f"gate {spec.expr!r} names occurrence #{nth} of fault {named!r}, "
                        f"which occurs {times[named]} time(s)",
                    )
                )
            if named is not None and named not in seen and named not in BREAKER_STATES:
                hint = difflib.get_close_matches(named, sorted(seen), n=1)
                did = f"; did you mean {hint[0]!r}?" if hint else ""
                problems.append(
                    (
                        ("gates", j),
                        f"gate {spec.expr!r} names fault {named!r}, which is not in the "
                        f"timeline{did} (faults: {', '.join(sorted(seen)) or 'none'})",
                    )
                )
        if problems:
            raise PydanticCustomError(
                "scenario_timeline",
                "{summary}",
                {"summary": "; ".join(message for _, message in problems), "problems": problems},
            )
        return self

    @model_validator(mode="after")
    def _target_sections(self) -> Scenario:
        deps = self.dependencies or {}
        check_dependencies(deps)
        # None: the built-ins; a mapping (even empty): exactly what it names
        declared = sorted(deps) if self.dependencies is not None else list(BUILTIN_DEPENDENCIES)
        if self.target == "reference" and self.dependencies is None:
            declared.append(BOOKING_API)  # the reference service's booking flow (docs/upstream.md)
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for i, fault in enumerate(self.faults):
            if fault.action == "crash":  # the service itself, not a dependency (_check_crash)
                continue
            if fault.target == BOOKING_API and fault.action in PROCESS_ACTIONS:
                problems.append(
                    (
                        ("faults", i, "action"),
                        f"action {fault.action!r}: the booking API stub takes proxy faults "
                        "only (action: disable, or a toxic such as http_error)",
                    )
                )
                continue
            process = fault.action in PROCESS_ACTIONS
            if process and fault.target in deps and fault.target not in BUILTIN_DEPENDENCIES:
                problems.append(
                    (
                        ("faults", i, "action"),
                        f"action {fault.action!r} acts on a server the environment starts "
                        f"({', '.join(BUILTIN_DEPENDENCIES)}); {fault.target!r} is reached "
                        "by its upstream address, so only its proxy can be faulted "
                        "(action: disable, or a toxic)",
                    )
                )
                continue
            if fault.target not in declared:
                hint = difflib.get_close_matches(fault.target, declared, n=1)
                did = f"; did you mean {hint[0]!r}?" if hint else ""
                problems.append(
                    (
                        ("faults", i, "target"),
                        f"target {fault.target!r} is not a declared dependency{did} "
                        f"(dependencies: {', '.join(declared)})",
                    )
                )
        if isinstance(self.target, HttpTargetSpec):
            if not self.workload.requests:
                problems.append(
                    (
                        ("workload", "requests"),
                        "an HTTP target needs workload.requests (what to send: name, method, path)",
                    )
                )
            for field, text in self.target.templates():
                for name in placeholders(text):
                    try:
                        _check_environment_name(name, declared, field)
                    except ValueError as exc:
                        where = tuple(field.split(".", 2))  # target.env.NAME: a key may have dots
                        problems.append((where, str(exc).removeprefix(f"{field}: ")))
        if problems:  # located at each one's line by the loader (see _timeline)
            raise PydanticCustomError(
                "scenario_timeline",
                "{summary}",
                {"summary": "; ".join(message for _, message in problems), "problems": problems},
            )
        if not isinstance(self.target, HttpTargetSpec):
            if self.workload.requests:
                raise ValueError(
                    "workload.requests are for an HTTP target; the reference target uses "
                    "workload.mix (or set target: {command: ..., url: ...})"
                )
            if self.steady_state.http:
                raise ValueError("steady_state.http is for an HTTP target")
        return self

    @property
    def target_kind(self) -> str:
        """``reference`` or ``http``."""
        return "reference" if self.target == "reference" else "http"

    def scoped_gates(self) -> list[ScopedGate]:
        """The gates to evaluate: the scenario's own, or the TARGETS.md defaults."""
        if self.gates is None:
            return default_gates()
        return [spec.scoped for spec in self.gates]

    @property
    def measured_window(self) -> tuple[float, float]:
        """``(warm-up end, workload end)`` in seconds since the start."""
        return (self.workload.warmup, self.workload.duration)
