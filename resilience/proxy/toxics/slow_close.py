"""``slow_close``: holds end-of-stream for ``delay`` ms; data passes untouched."""

from __future__ import annotations

from .base import Item, Stage, ToxicSpec

__all__ = ["SPEC", "SlowCloseStage"]


class SlowCloseStage(Stage):
    __slots__ = ()

    def on_item(self, item: Item) -> None:
        if item is not None:
            self.emit(item)
        elif self.timer is None:
            self.call_later(self.attrs["delay"] / 1000.0, self._close)

    def _close(self) -> None:
        self.timer = None
        self.emit(None)

    def take_held(self) -> list[Item]:
        return [None] if self.timer is not None else []


SPEC = ToxicSpec("slow_close", ("delay",), SlowCloseStage, "delays the close by delay ms")
