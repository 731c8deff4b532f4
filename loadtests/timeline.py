"""When each fault of a load run starts and stops (pure; no Locust, no HTTP).

Fault entries are the scenario file's :class:`resilience.scenario.model.FaultSpec`
(``at``/``duration``/``every``/``times`` in seconds from the start of the
load). :func:`build_timeline` expands them into start/stop events in time
order; :class:`TimelineCursor` hands out the events that are due at a given
elapsed time, each exactly once. A fault without ``duration`` stays until the
end of the run, where the hook removes everything it applied anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from resilience.scenario.model import FaultSpec

__all__ = ["FaultEvent", "TimelineCursor", "build_timeline", "parse_faults"]


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """Start or stop one repeat of one fault at ``at_s`` seconds from the start."""

    at_s: float
    op: Literal["start", "stop"]
    fault: FaultSpec
    repeat: int = 0

    @property
    def key(self) -> str:
        """Unique per repeat: also the toxic's name on the proxy."""
        return f"{self.fault.name}-{self.repeat}" if self.fault.times > 1 else self.fault.name


def parse_faults(entries: Iterable[Mapping[str, Any]]) -> list[FaultSpec]:
    """Validate raw entries as scenario fault entries, naming unnamed ones as scenarios do."""
    faults: list[FaultSpec] = []
    for i, entry in enumerate(entries):
        data = dict(entry)
        if not data.get("name"):
            kind = data.get("toxic") or data.get("action") or "fault"
            data["name"] = f"{data.get('target', 'x')}-{kind}-{i + 1}"
        faults.append(FaultSpec.model_validate(data))
    names = [f.name for f in faults]
    if len(set(names)) != len(names):
        raise ValueError(f"fault names must be unique, got {names}")
    return faults


def build_timeline(faults: Sequence[FaultSpec]) -> list[FaultEvent]:
    """All start/stop events, ordered by time; at equal times stops come first."""
    events: list[FaultEvent] = []
    for fault in faults:
        for repeat in range(fault.times):
            start = fault.at + repeat * (fault.every or 0.0)
            events.append(FaultEvent(start, "start", fault, repeat))
            if fault.duration is not None and fault.action != "enable":
                events.append(FaultEvent(start + fault.duration, "stop", fault, repeat))
    return sorted(events, key=lambda e: (e.at_s, e.op != "stop"))


class TimelineCursor:
    """Walks a timeline: :meth:`due` returns each event once, when its time has come."""

    __slots__ = ("_events", "_next")

    def __init__(self, events: Sequence[FaultEvent]) -> None:
        self._events = list(events)
        self._next = 0

    def due(self, elapsed_s: float) -> list[FaultEvent]:
        """Events with ``at_s <= elapsed_s`` not handed out before, in order."""
        start = self._next
        while self._next < len(self._events) and self._events[self._next].at_s <= elapsed_s:
            self._next += 1
        return self._events[start : self._next]

    @property
    def done(self) -> bool:
        return self._next >= len(self._events)

    def next_at_s(self) -> float | None:
        """When the next event is due (``None`` when none is left)."""
        return self._events[self._next].at_s if not self.done else None
