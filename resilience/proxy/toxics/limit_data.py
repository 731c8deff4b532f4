"""``limit_data``: passes at most ``bytes`` bytes, then closes the connection.

The chunk that crosses the limit is cut short. The count belongs to the link
and survives updates of the toxic; removing and re-adding starts it again.
``bytes`` 0 (or negative) closes on the first chunk, passing nothing.
"""

from __future__ import annotations

from .base import Chunk, Item, Stage, ToxicSpec

__all__ = ["SPEC", "LimitDataStage", "LimitState"]


class LimitState:
    """Bytes this toxic has let through on one link."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = 0


class LimitDataStage(Stage):
    __slots__ = ()
    stateful = True

    @classmethod
    def new_state(cls) -> LimitState:
        return LimitState()

    def on_item(self, item: Item) -> None:
        if item is None:
            self.emit(None)
            return
        state: LimitState = self.state
        remaining = max(self.attrs["bytes"] - state.sent, 0)
        data = item.data
        if remaining < len(data):
            self.ctx.discard(len(data) - remaining)
            item = Chunk(data[:remaining], item.arrived_s)
        if item.data:
            state.sent += len(item.data)
            self.emit(item)
        if self.attrs["bytes"] - state.sent <= 0:
            self.emit(None)


SPEC = ToxicSpec(
    "limit_data", ("bytes",), LimitDataStage, "closes the connection after bytes bytes"
)
