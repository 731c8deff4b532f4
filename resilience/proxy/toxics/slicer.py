"""``slicer``: cuts chunks into small pieces, waiting ``delay`` µs after each.

Attributes: ``average_size`` (bytes), ``size_variation`` (bytes), ``delay``
(**microseconds**). A chunk is halved again and again, at the midpoint ± a
random offset below ``size_variation``, until each piece is at most
``average_size + size_variation`` bytes (the real server's algorithm). Pauses
are scheduled on absolute times, so sub-millisecond delays keep their average
rate despite the event loop's 1 ms timers. ``average_size`` < 1 and a negative
``size_variation`` are refused with 400 (they crash the real server); a
variation ≥ ``average_size`` is used as ``average_size - 1``.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping
from typing import Any

from .base import Chunk, Item, LinkContext, Stage, ToxicSpec, monotonic_s

__all__ = ["SPEC", "SlicerStage"]


class SlicerStage(Stage):
    __slots__ = ("average", "delay_s", "held", "next_s", "variation")

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, int], state: Any = None) -> None:
        super().__init__(ctx, attrs, state)
        self.average = max(attrs["average_size"], 1)
        self.variation = min(max(attrs["size_variation"], 0), self.average - 1)
        self.delay_s = max(attrs["delay"], 0) / 1e6
        self.held: deque[Item] = deque()
        self.next_s = 0.0

    def cuts(self, start: int, end: int) -> list[int]:
        """Piece boundaries of data[start:end], both ends included."""
        if (end - start) - self.average <= self.variation:
            return [start, end]
        mid = start + (end - start) // 2
        if self.variation > 0:
            mid += self.ctx.rng.randrange(self.variation * 2) - self.variation
        return self.cuts(start, mid) + self.cuts(mid, end)[1:]

    def on_item(self, item: Item) -> None:
        if not self.held and self.timer is None:  # idle: the schedule starts now
            self.next_s = max(self.next_s, monotonic_s())
        if item is None:
            self.held.append(None)
        else:
            data, arrived = item.data, item.arrived_s
            bounds = self.cuts(0, len(data))
            self.held.extend(Chunk(data[a:b], arrived) for a, b in itertools.pairwise(bounds))
        if self.timer is None:
            self._pump()

    def _pump(self) -> None:
        self.timer = None
        held = self.held
        while held and not self.stopped:
            if self.delay_s > 0:
                now = monotonic_s()
                if self.next_s > now:
                    self.call_later(self.next_s - now, self._pump)
                    return
                self.next_s += self.delay_s  # catches up if the timer fired late
            self.emit(held.popleft())

    def take_held(self) -> list[Item]:
        items = list(self.held)
        self.held.clear()
        return items


def _check(attrs: Mapping[str, int]) -> str | None:
    if attrs["average_size"] < 1:
        return "slicer average_size must be >= 1 (bytes)"
    if attrs["size_variation"] < 0:
        return "slicer size_variation must be >= 0 (bytes)"
    return None


SPEC = ToxicSpec(
    "slicer",
    ("average_size", "size_variation", "delay"),
    SlicerStage,
    "slices data into pieces of about average_size bytes, delay µs apart",
    check=_check,
)
