"""Locust-side helpers around the scenario's fault timeline (pure; no Locust, no HTTP).

Fault entries are the scenario file's :class:`resilience.scenario.model.FaultSpec`
(``at``/``duration``/``every``/``times`` in seconds from the start of the
load) and are planned into start/stop events by the scenario's own
:func:`resilience.scenario.faults.plan`. :func:`parse_faults` validates a
profile's raw entries; :class:`TimelineCursor` hands out the planned events
that are due at a given elapsed time, each exactly once. A fault without
``duration`` stays until the end of the run, where the hook removes
everything it applied anyway.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from resilience.scenario.faults import FaultEvent
from resilience.scenario.model import FaultSpec
from resilience.scenario.target_spec import BUILTIN_DEPENDENCIES

__all__ = ["TimelineCursor", "parse_faults"]


def parse_faults(
    entries: Iterable[Mapping[str, Any]], declared: Sequence[str] | None = BUILTIN_DEPENDENCIES
) -> list[FaultSpec]:
    """Validate raw entries as scenario fault entries, naming unnamed ones as scenarios do.

    A fault's target must be one of ``declared`` (the profile's dependencies;
    ``None``: not checked here, the caller does once it knows them).
    """
    faults: list[FaultSpec] = []
    for i, entry in enumerate(entries):
        data = dict(entry)
        if not data.get("name"):
            kind = data.get("toxic") or data.get("action") or "fault"
            data["name"] = f"{data.get('target', 'x')}-{kind}-{i + 1}"
        fault = FaultSpec.model_validate(data)
        if declared is not None and fault.target not in declared:  # a load run's proxies
            hint = difflib.get_close_matches(fault.target, declared, n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(
                f"faults[{i}]: target {fault.target!r} is not a proxied dependency{did} "
                f"(choose from {', '.join(declared)})"
            )
        faults.append(fault)
    names = [f.name for f in faults]
    if len(set(names)) != len(names):
        raise ValueError(f"fault names must be unique, got {names}")
    return faults


class TimelineCursor:
    """Walks a planned timeline: :meth:`due` returns each event once, when its time has come."""

    __slots__ = ("_events", "_next")

    def __init__(self, events: Sequence[FaultEvent]) -> None:
        self._events = list(events)
        self._next = 0

    def due(self, elapsed_s: float) -> list[FaultEvent]:
        """Events with ``t_s <= elapsed_s`` not handed out before, in order."""
        start = self._next
        while self._next < len(self._events) and self._events[self._next].t_s <= elapsed_s:
            self._next += 1
        return self._events[start : self._next]

    @property
    def done(self) -> bool:
        return self._next >= len(self._events)

    def next_at_s(self) -> float | None:
        """When the next event is due (``None`` when none is left)."""
        return self._events[self._next].t_s if not self.done else None
