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

from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from .base import Chunk, Item, LinkContext, Stage, ToxicSpec, monotonic_s

__all__ = ["SPEC", "SlicerStage"]


class SlicerStage(Stage):
    """Slices lazily: only the chunk at the head is being cut, piece by piece, so a
    tiny ``average_size`` costs no memory for the chunks queued behind it."""

    __slots__ = (
        "average",
        "delay_s",
        "has_peeked",
        "head",
        "held",
        "next_s",
        "offset",
        "peeked",
        "pieces",
        "variation",
    )

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, int], state: Any = None) -> None:
        super().__init__(ctx, attrs, state)
        self.average = max(attrs["average_size"], 1)
        self.variation = min(max(attrs["size_variation"], 0), self.average - 1)
        self.delay_s = max(attrs["delay"], 0) / 1e6
        self.held: deque[Item] = deque()
        self.next_s = 0.0
        self.head: Chunk | None = None  # the chunk being cut
        self.offset = 0  # bytes of head already emitted
        self.pieces: Iterator[Chunk] | None = None
        self.peeked: Item = None  # the next item to emit, once taken
        self.has_peeked = False

    def cut(self, chunk: Chunk) -> Iterator[Chunk]:
        """The pieces of chunk, in order (Toxiproxy's recursive halving, iteratively).

        Nodes are visited in the recursion's order, so the random draws are too.
        """
        data, arrived = chunk.data, chunk.arrived_s
        stack = [(0, len(data))]
        while stack:
            start, end = stack.pop()
            if (end - start) - self.average <= self.variation:
                if end > start:
                    yield Chunk(data[start:end], arrived)
                continue
            mid = start + (end - start) // 2
            if self.variation > 0:
                mid += self.ctx.rng.randrange(self.variation * 2) - self.variation
            stack.append((mid, end))
            stack.append((start, mid))

    def on_item(self, item: Item) -> None:
        idle = not self.held and self.pieces is None and not self.has_peeked
        if idle and self.timer is None:  # the schedule starts now
            self.next_s = max(self.next_s, monotonic_s())
        self.held.append(item)
        if self.timer is None:
            self._pump()

    def _peek(self) -> bool:
        """Make ``peeked`` the next item to emit; False when there is none."""
        while not self.has_peeked:
            if self.pieces is not None:
                piece = next(self.pieces, None)
                if piece is not None:
                    self.peeked, self.has_peeked = piece, True
                    break
                self.pieces, self.head = None, None
            if not self.held:
                return False
            item = self.held.popleft()
            if item is None:
                self.peeked, self.has_peeked = None, True
            else:
                self.head, self.offset, self.pieces = item, 0, self.cut(item)
        return True

    def _pump(self) -> None:
        self.timer = None
        while not self.stopped and self._peek():
            if self.delay_s > 0:
                now = monotonic_s()
                if self.next_s > now:
                    self.call_later(self.next_s - now, self._pump)
                    return
            item, self.peeked, self.has_peeked = self.peeked, None, False
            if item is None:
                self.emit(None)
                return
            self.next_s += self.delay_s  # catches up if the timer fired late
            self.offset += len(item.data)
            self.emit(item)

    def take_held(self) -> list[Item]:
        items: list[Item] = []
        if self.head is not None and self.offset < len(self.head.data):
            items.append(Chunk(self.head.data[self.offset :], self.head.arrived_s))
        elif self.has_peeked and self.peeked is None:
            items.append(None)
        items.extend(self.held)
        self.held.clear()
        self.head, self.pieces, self.peeked, self.has_peeked = None, None, None, False
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
