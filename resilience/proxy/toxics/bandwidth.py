"""``bandwidth``: limits a direction to ``rate`` KB/s (KB = 1000 bytes).

Each chunk occupies ``len / rate`` ms of the link and is released at the end
of that slot; chunks worth more than 100 ms are cut into ``rate × 100``-byte
pieces released every 100 ms. Slots are scheduled on absolute times, so timer
error does not accumulate. ``rate`` 0 passes nothing (the link stalls, as in
the real server); a negative rate is refused with 400 (it crashes the real
server).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from .base import Chunk, Item, LinkContext, Stage, ToxicSpec, monotonic_s

__all__ = ["SPEC", "BandwidthStage"]


class BandwidthStage(Stage):
    __slots__ = ("due_s", "held", "next_free_s", "piece", "rate")

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, int], state: Any = None) -> None:
        super().__init__(ctx, attrs, state)
        self.rate = attrs["rate"]  # KB/s == bytes per ms
        self.held: deque[Item] = deque()
        self.next_free_s = 0.0
        self.due_s: float | None = None
        self.piece = 0

    def on_item(self, item: Item) -> None:
        self.held.append(item)
        if self.timer is None:
            self._pump()

    def _pump(self) -> None:
        self.timer = None
        held = self.held
        while held and not self.stopped:
            head = held[0]
            if head is None:
                held.popleft()
                self.emit(None)
                return
            if self.rate <= 0:
                return  # stalls until the toxic is removed or updated
            now = monotonic_s()
            if self.due_s is None:
                self.piece = min(len(head.data), self.rate * 100)
                self.due_s = max(self.next_free_s, now) + self.piece / (self.rate * 1000.0)
            if self.due_s > now:
                self.call_later(self.due_s - now, self._pump)
                return
            self.next_free_s, self.due_s = self.due_s, None
            if self.piece >= len(head.data):
                held.popleft()
                self.emit(head)
            else:
                held[0] = Chunk(head.data[self.piece :], head.arrived_s)
                self.emit(Chunk(head.data[: self.piece], head.arrived_s))

    def take_held(self) -> list[Item]:
        items = list(self.held)
        self.held.clear()
        self.due_s = None
        return items


def _check(attrs: Mapping[str, int]) -> str | None:
    if attrs["rate"] < 0:
        return "bandwidth rate must be >= 0 (KB/s)"
    return None


SPEC = ToxicSpec(
    "bandwidth", ("rate",), BandwidthStage, "limits throughput to rate KB/s", check=_check
)
