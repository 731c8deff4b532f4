"""The seam between the scenario runner and the service under test.

A :class:`Target` has named *operations*. The runner turns each scheduled
arrival into a :class:`Call` (which operation, which key), awaits
:meth:`Target.call` and records the :class:`Observation` it returns — it
knows nothing else about the target. What an operation means (a lookup, a
job post, an HTTP request) is the target's business.

Optional capabilities are discovered by the runner with ``isinstance`` on the
runtime-checkable protocols below:

* :class:`BreakerTarget` — the target has a circuit breaker (``breaker``
  with ``state`` and ``add_listener``); its transitions go into the history.
* :class:`SteadyStateTarget` — the target can check its own steady state
  (the reference service looks up known slugs).
* :class:`LiveCounters` — which paths count as hits and which outcomes as
  degraded in the live display (of operation ``live_op``; ``None``: all).
* :class:`EndOfRunTarget` — the target checks itself once the run is over
  (the reference service reconciles acknowledged jobs with its database).
* :class:`WatchedTarget` — the target can tell when it is gone during a run
  (its process exited, it stopped answering): the run ends as a failure.

Times are microseconds (``latency_us``); ``status`` is the HTTP status code
of an HTTP target and 0 otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "BreakerTarget",
    "Call",
    "EndOfRunTarget",
    "LiveCounters",
    "Observation",
    "OpLike",
    "SteadyStateTarget",
    "Target",
    "TargetLoss",
    "WatchedTarget",
]


class Call(NamedTuple):
    """One operation the runner asks of the target.

    ``key_kind`` is ``known``, ``unknown`` or ``invalid`` (how the key was
    drawn); ``key`` the key itself (a slug for the reference service);
    ``idempotency_key`` is unique per run and operation.
    """

    seq: int
    op: str
    key_kind: str
    key: str
    idempotency_key: str


class Observation(NamedTuple):
    """What one call gave, as the history records it.

    ``latency_us`` ``None``: the runner measures it on its clock from the
    start of the call. ``attempts``: tries the target made (database
    attempts, retries); ``status``: HTTP status, 0 when not HTTP (or no
    answer).
    """

    outcome: str
    path: str
    reason: str | None
    latency_us: int | None
    attempts: int
    status: int = 0


class OpLike(Protocol):
    """An operation record as vocabularies read it (``OpRecord`` of the history)."""

    @property
    def t_us(self) -> int: ...
    @property
    def op(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def latency_us(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def late_us(self) -> int: ...
    @property
    def phase(self) -> str: ...
    @property
    def status(self) -> int: ...


@runtime_checkable
class Target(Protocol):
    """The service under test, as the runner sees it.

    ``kind`` names the target kind (``reference``, ``http``); it selects the
    metric vocabulary (:mod:`resilience.targets.vocabulary`). ``operations``
    are the operation names :meth:`call` accepts. :meth:`call` must not
    raise for a failure of the service (that is an observation); an
    exception counts as an ``error`` with the exception as the reason.
    :meth:`stats` is sampled into the history every ``sample_interval``.
    """

    @property
    def kind(self) -> str: ...
    @property
    def operations(self) -> tuple[str, ...]: ...
    async def call(self, call: Call) -> Observation: ...
    def stats(self) -> Mapping[str, Any]: ...


@runtime_checkable
class BreakerTarget(Protocol):
    """Capability: a circuit breaker whose state the runner follows."""

    @property
    def breaker(self) -> Any: ...


@runtime_checkable
class SteadyStateTarget(Protocol):
    """Capability: the target checks its own steady state.

    :meth:`probe` runs ``count`` probes (``attempt`` numbers the retries, so
    each may probe fresh keys; ``from_tail`` asks for rarely used keys) and
    returns the failures, one line each (empty: all held).
    """

    async def probe(self, count: int, *, attempt: int, from_tail: bool) -> list[str]: ...


@runtime_checkable
class LiveCounters(Protocol):
    """Capability: what the live display counts as a hit and as degraded."""

    @property
    def hit_paths(self) -> frozenset[str]: ...
    @property
    def degraded_outcomes(self) -> frozenset[str]: ...
    @property
    def live_op(self) -> str | None: ...


@runtime_checkable
class EndOfRunTarget(Protocol):
    """Capability: a check of the target once the run is over.

    Called after the faults are removed and the in-flight operations are
    done; returns ``check`` history records (``type: "check"``, ``name``,
    ``metrics``: whole-run gate metrics, ``gates``: gates every report then
    shows, ``detail``). It bounds its own time.
    """

    async def end_of_run(self) -> list[dict[str, Any]]: ...


class TargetLoss(NamedTuple):
    """How the target was lost during a run: ``event`` (``exited``: its process
    ended; ``unresponsive``: it stopped answering) and ``detail`` (what to tell
    the user: exit code or silence, when, the last lines of its log)."""

    event: str
    detail: str


@runtime_checkable
class WatchedTarget(Protocol):
    """Capability: :meth:`watch` returns (only) once the target is gone."""

    async def watch(self) -> TargetLoss: ...
