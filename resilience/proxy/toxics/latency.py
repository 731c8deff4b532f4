"""``latency``: each chunk leaves ``latency ± jitter`` ms after it arrived.

Attributes: ``latency`` (ms), ``jitter`` (ms). The delay is drawn per chunk,
uniformly in ``[latency - jitter, latency + jitter)`` whole milliseconds, and
counted from the chunk's arrival, so a burst is pipelined, not serialised.
Chunks keep their order (a chunk never overtakes an earlier one).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from .base import Item, LinkContext, Stage, ToxicSpec, monotonic_s

__all__ = ["SPEC", "LatencyStage"]


class LatencyStage(Stage):
    __slots__ = ("held", "jitter_ms", "latency_ms")

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, int], state: Any = None) -> None:
        super().__init__(ctx, attrs, state)
        self.latency_ms = attrs["latency"]
        self.jitter_ms = attrs["jitter"]
        self.held: deque[tuple[float, Item]] = deque()

    def _delay_s(self) -> float:
        delay_ms = self.latency_ms
        if self.jitter_ms > 0:
            delay_ms += self.ctx.rng.randrange(-self.jitter_ms, self.jitter_ms)
        return delay_ms / 1000.0

    def on_item(self, item: Item) -> None:
        now = monotonic_s()
        due = now if item is None else item.arrived_s + self._delay_s()
        if not self.held and due <= now:
            self.emit(item)
            return
        self.held.append((due, item))
        if self.timer is None:
            self.call_later(self.held[0][0] - now, self._release)

    def _release(self) -> None:
        self.timer = None
        held = self.held
        now = monotonic_s()
        while held and held[0][0] <= now and not self.stopped:
            self.emit(held.popleft()[1])
        if held and not self.stopped:
            self.call_later(held[0][0] - now, self._release)

    def take_held(self) -> list[Item]:
        items = [item for _due, item in self.held]
        self.held.clear()
        return items


SPEC = ToxicSpec(
    "latency",
    ("latency", "jitter"),
    LatencyStage,
    "delays each chunk by latency ± jitter ms from its arrival",
)
