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
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from resilience.scenario.gates import ScopedGate, default_gates, parse_scoped_gate
from resilience.scenario.gates.grammar import BREAKER_STATES

__all__ = [
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

FaultTarget = Literal["postgres", "redis", "booking-api"]
ToxicType = Literal[
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "noop",
    "http_error",
    "http_delay",
    "http_abort",
]

TOXIC_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
    "noop": (),
    "http_error": ("methods", "paths", "exclude", "rate", "status", "body", "headers"),
    "http_delay": ("methods", "paths", "exclude", "rate", "latency", "jitter"),
    "http_abort": ("methods", "paths", "exclude", "rate", "mode", "after_bytes"),
}
"""Wire attributes of each Toxiproxy toxic (ms, except bandwidth ``rate`` in KB/s,
slicer ``delay`` in µs and sizes in bytes). The ``http_*`` toxics are extensions
of our proxy (typed attributes, see docs/toxics.md); a scenario using them is
refused when the proxy server is the real Toxiproxy."""

EXTENSION_TOXICS = frozenset({"http_error", "http_delay", "http_abort"})


def needs_booking_api(scenario: Any) -> bool:
    """Whether ``scenario`` books (mix weight ``booking``) or faults the booking API."""
    return scenario.workload.mix.booking > 0 or any(
        fault.target == "booking-api" for fault in scenario.faults
    )


def _check_http_toxic(toxic: str, attributes: dict[str, Any]) -> None:
    """The proxy's own rules for an HTTP toxic's typed attributes (ValueError naming them)."""
    from resilience.proxy.toxics import REGISTRY

    spec = REGISTRY[toxic]
    assert spec.decode is not None
    spec.decode(spec.default_attributes(), attributes)


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

    @model_validator(mode="after")
    def _shares(self) -> KeysSpec:
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

    @model_validator(mode="after")
    def _warmup(self) -> WorkloadSpec:
        if self.warmup >= self.duration:
            raise ValueError(
                f"warmup ({self.warmup:g} s) must be shorter than duration ({self.duration:g} s)"
            )
        return self


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
    action: Literal["disable", "enable"] | None = None
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
        if self.action == "enable" and self.duration is not None:
            raise ValueError("an 'enable' action is instantaneous; drop 'duration'")
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
            if self.toxic in EXTENSION_TOXICS:
                _check_http_toxic(self.toxic, self.attributes)
                return self._repeats()
            for key, value in self.attributes.items():
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"attribute {key!r} must be an integer (got {value!r})")
            if self.toxic == "bandwidth" and self.attributes.get("rate", 0) <= 0:
                raise ValueError("bandwidth 'rate' (KB/s) must be above 0; 0 stalls all traffic")
            if self.toxic == "slicer" and self.attributes.get("average_size", 0) <= 0:
                raise ValueError("slicer 'average_size' (bytes) must be above 0")
            for key, value in self.attributes.items():
                if value < 0:
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
        """``toxic:<type>`` or ``action:<disable|enable>``."""
        return f"toxic:{self.toxic}" if self.toxic else f"action:{self.action}"

    @property
    def end(self) -> float | None:
        """When the last repeat ends (seconds since start), ``None`` if it never does."""
        if self.duration is None:
            return None
        return self.at + (self.times - 1) * (self.every or 0.0) + self.duration


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

    def scoped_gates(self) -> list[ScopedGate]:
        """The gates to evaluate: the scenario's own, or the TARGETS.md defaults."""
        if self.gates is None:
            return default_gates()
        return [spec.scoped for spec in self.gates]

    @property
    def measured_window(self) -> tuple[float, float]:
        """``(warm-up end, workload end)`` in seconds since the start."""
        return (self.workload.warmup, self.workload.duration)
