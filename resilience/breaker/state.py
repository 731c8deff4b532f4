"""The breaker's vocabulary: states, transition records, shared records, listeners."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from resilience.breaker.breaker import CircuitBreaker

__all__ = ["BreakerListener", "BreakerRecord", "BreakerState", "Transition"]


class BreakerState(enum.StrEnum):
    """Where a breaker is: letting calls through, refusing them, or trying a few."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, as kept in the transition log and given to listeners.

    ``at`` is the breaker clock's monotonic time in seconds, ``at_wall`` its
    wall time (seconds since the epoch) for reports.
    """

    from_state: BreakerState
    to_state: BreakerState
    at: float
    at_wall: float
    reason: str


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    """The part of a breaker that a :class:`~resilience.breaker.store.BreakerStore` shares.

    Only transitions write it. ``version`` grows by one per transition (a
    store keeps the record with the highest version); ``writer`` names the
    breaker instance that wrote it, so two writers racing to the same version
    can tell who won. ``opened_at_wall`` is the wall time (seconds since the
    epoch, from the writer's clock) of the latest opening, so other processes
    can work out when the reset timeout ends. ``opens`` counts openings.
    """

    state: BreakerState
    version: int
    writer: str
    opened_at_wall: float | None
    opens: int
    reason: str


class BreakerListener(Protocol):
    """Hook called after every transition, outside the breaker's lock.

    A listener that raises is logged and otherwise ignored.
    """

    def on_transition(self, breaker: CircuitBreaker, transition: Transition) -> None: ...
