"""The seams between the run loop and what it runs against.

The runner sees a :class:`Stack`: the system under test (a
:class:`~resilience.targets.base.Target`, or a bare reference service the
runner wraps in a :class:`~resilience.targets.reference.ReferenceTarget`),
a :class:`~resilience.scenario.faults.FaultController`, a
:class:`~resilience.clock.Clock` and the catalogue of known slugs. The real
stack (:mod:`resilience.scenario.real_stack`) is PostgreSQL + Redis behind
Toxiproxy with the service in process; the simulator supplies a modelled
stack on a virtual-time event loop and runs the very same runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from resilience.clock import Clock
from resilience.scenario.faults import FaultController
from resilience.targets.base import Target
from resilience.targets.reference import ReferenceService

ServiceUnderTest = Target | ReferenceService
"""What a stack's ``target`` may be: a target, or a reference service to wrap."""

__all__ = [
    "JobLike",
    "LookupLike",
    "MigrationTarget",
    "ServiceUnderTest",
    "Stack",
    "StaticStack",
    "Target",
]


class LookupLike(Protocol):
    """What the runner reads from a lookup result (see ``resilience.service.LookupResult``)."""

    @property
    def path(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def duration_us(self) -> int: ...
    @property
    def attempts(self) -> int: ...


class JobLike(Protocol):
    """What the runner reads from a stored job."""

    @property
    def micro_uuid(self) -> Any: ...


@runtime_checkable
class MigrationTarget(Protocol):
    """Optional stack capability: the ``micro_uuid`` backfill (``stack.migration``).

    ``prepare`` seeds historical jobs; ``run`` performs one whole backfill run
    and returns its counts (raises when the run is cut short); ``stats``
    returns ``get_uuid_migration_stats()`` as a mapping.
    """

    async def prepare(self, *, jobs: int, unknown_share: float, seed: int) -> None: ...

    async def run(self, *, batch_size: int) -> Mapping[str, Any]: ...

    async def stats(self) -> Mapping[str, Any]: ...


@runtime_checkable
class Stack(Protocol):
    """Everything one scenario run needs, already started.

    ``mode`` is ``"real"`` or ``"simulated"`` (written to the history);
    ``slugs`` are the catalogue's slugs in rank order (rank 1 first).
    """

    @property
    def target(self) -> ServiceUnderTest: ...
    @property
    def faults(self) -> FaultController: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def slugs(self) -> Sequence[str]: ...
    @property
    def mode(self) -> str: ...


class StaticStack:
    """A :class:`Stack` made of given parts (tests, the simulator, custom targets)."""

    def __init__(
        self,
        *,
        target: ServiceUnderTest,
        faults: FaultController,
        clock: Clock,
        slugs: Sequence[str],
        mode: str = "real",
        migration: MigrationTarget | None = None,
    ) -> None:
        self.migration = migration
        """The backfill capability, when this stack has one."""
        self._target = target
        self._faults = faults
        self._clock = clock
        self._slugs = list(slugs)
        self._mode = mode

    @property
    def target(self) -> ServiceUnderTest:
        return self._target

    @property
    def faults(self) -> FaultController:
        return self._faults

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def slugs(self) -> Sequence[str]:
        return self._slugs

    @property
    def mode(self) -> str:
        return self._mode

    def __repr__(self) -> str:
        return f"StaticStack(mode={self._mode!r}, slugs={len(self._slugs)})"
