"""``reset_peer``: on the first item, waits ``timeout`` ms, then resets (TCP RST).

The first chunk after the toxic starts is dropped, and ``timeout`` ms later
both sockets of the connection are closed with SO_LINGER 0, so the peers see
ECONNRESET. With no data the connection is never reset. (The real server sends
RST only on connections opened after the toxic was added; we always do.)
"""

from __future__ import annotations

from .base import Item, Stage, ToxicSpec

__all__ = ["SPEC", "ResetPeerStage"]


class ResetPeerStage(Stage):
    __slots__ = ()

    def on_item(self, item: Item) -> None:
        self.drop(item)
        if not self.closed:
            self.closed = True  # everything after the trigger is dropped
            self.call_later(self.attrs["timeout"] / 1000.0, self._reset)

    def _reset(self) -> None:
        self.timer = None
        if not self.stopped:
            self.ctx.reset_connection()


SPEC = ToxicSpec(
    "reset_peer",
    ("timeout",),
    ResetPeerStage,
    "resets the connection (RST) timeout ms after the first data",
)
