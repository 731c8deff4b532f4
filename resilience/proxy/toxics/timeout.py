"""``timeout``: drops all data; closes after ``timeout`` ms without incoming data.

Every chunk that arrives re-arms the timer (an idle timeout). ``timeout`` 0 (or
negative) never closes: data is dropped until the toxic is removed, and, as in
the real server, removing the toxic closes the connections it was on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Item, LinkContext, Stage, ToxicSpec

__all__ = ["SPEC", "TimeoutStage"]


class TimeoutStage(Stage):
    __slots__ = ("timeout_s",)

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, int], state: Any = None) -> None:
        super().__init__(ctx, attrs, state)
        self.timeout_s = attrs["timeout"] / 1000.0
        self._arm()

    def _arm(self) -> None:
        if self.timeout_s > 0:
            self.call_later(self.timeout_s, self._expire)

    def on_item(self, item: Item) -> None:
        if item is None:
            self.emit(None)
            return
        self.drop(item)
        self._arm()

    def _expire(self) -> None:
        self.timer = None
        if not self.closed and not self.stopped:
            self.emit(None)


SPEC = ToxicSpec(
    "timeout",
    ("timeout",),
    TimeoutStage,
    "drops data; closes after timeout ms of silence (0: never)",
    closes_on_remove=True,
)
