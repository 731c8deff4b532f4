"""What every toxic shares: chunks, the stage protocol and the registry row.

A toxic runs on one *link* (one connection, one direction) as a **stage**: an
object that receives items with :meth:`Stage.push` and passes them on to
``stage.out`` (the next stage, or the link's sink that writes to the socket).
An item is a :class:`Chunk` or ``None`` for end-of-stream. Stages are
callback-driven (timers, no tasks, no queues between stages), so adding,
updating or removing a toxic on a live link is a synchronous splice:
:meth:`Stage.stop` hands back whatever the stage still holds, in order, and
the link pushes it onward. No byte is lost or reordered.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

__all__ = [
    "AttrKind",
    "Chunk",
    "Item",
    "LinkContext",
    "Outlet",
    "Stage",
    "ToxicSpec",
    "Watcher",
    "monotonic_s",
]

monotonic_s = time.monotonic


class Chunk:
    """Bytes read from a socket, stamped with their arrival (monotonic seconds)."""

    __slots__ = ("arrived_s", "data")

    def __init__(self, data: bytes, arrived_s: float) -> None:
        self.data = data
        self.arrived_s = arrived_s

    def __repr__(self) -> str:
        return f"Chunk({len(self.data)} B @ {self.arrived_s:.6f})"


Item = Chunk | None  # None: the source reached end-of-stream

Watcher = Callable[[Item], list[tuple[int, bytes]]]
"""Sees what a link reads (before its toxics); returns (offset, bytes) to insert into it."""


class Outlet(Protocol):
    """Where a stage sends its output."""

    def push(self, item: Item) -> None: ...


class LinkContext(Protocol):
    """What a stage may use from the link it runs on."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def rng(self) -> random.Random: ...

    def discard(self, nbytes: int) -> None:
        """Account for nbytes a stage dropped (they will never reach the sink)."""

    def reset_connection(self) -> None:
        """Close both sockets of the connection with a TCP RST."""

    @property
    def received(self) -> int:
        """Bytes read from this direction's source so far (0: a fresh connection)."""
        ...

    def reply(self, data: bytes) -> None:
        """Write data back to this direction's source (a protocol toxic answering itself)."""

    def close_connection(self) -> None:
        """Close both sockets of the connection normally (FIN after pending writes)."""

    @property
    def is_upstream(self) -> bool:
        """True on the client → server link."""
        ...

    def watch_opposite(self, watcher: Watcher) -> None:
        """Call watcher with what the opposite link reads, before its toxics."""

    def unwatch_opposite(self, watcher: Watcher) -> None:
        """Stop calling watcher."""

    def send_back(self, data: bytes) -> None:
        """Send data into the opposite link as if its source had (towards this
        link's source, through the opposite link's toxics; not watched)."""

    def report_error(self, stage: Stage, reason: str) -> None:
        """stage cannot work on this connection (passes it through): shown as its toxic's error."""


class Stage:
    """One toxic running on one link. Subclasses implement :meth:`on_item`.

    After the stage has emitted end-of-stream it is *closed*: anything pushed
    later is dropped. :meth:`stop` cancels timers and returns held items.
    """

    __slots__ = ("attrs", "closed", "ctx", "out", "state", "stopped", "timer")

    stateful: ClassVar[bool] = False

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, Any], state: Any = None) -> None:
        self.ctx = ctx
        self.attrs = attrs
        self.state = state
        self.out: Outlet = _NOWHERE
        self.closed = False
        self.stopped = False
        self.timer: asyncio.TimerHandle | None = None

    @classmethod
    def new_state(cls) -> Any:
        """Per-link state that survives updates of the toxic (limit_data's count)."""
        return None

    def push(self, item: Item) -> None:
        if self.closed or self.stopped:
            self.drop(item)
        else:
            self.on_item(item)

    def on_item(self, item: Item) -> None:
        self.emit(item)

    def emit(self, item: Item) -> None:
        if item is None:
            self.closed = True
        self.out.push(item)

    def drop(self, item: Item) -> None:
        if item is not None:
            self.ctx.discard(len(item.data))

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Arm this stage's single timer (replacing a pending one)."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.ctx.loop.call_later(max(delay_s, 0.0), callback)

    def stop(self) -> list[Item]:
        """Stop for good: cancel timers, return held items in order."""
        self.stopped = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        return self.take_held()

    def take_held(self) -> list[Item]:
        return []


class _Nowhere:
    def push(self, item: Item) -> None:
        del item


_NOWHERE = _Nowhere()


AttrKind = Literal["int64", "float32", "string", "[]string", "map[string]string"]
AttrValue = int | float | str | list[str] | dict[str, str]


def _no_check(attrs: Mapping[str, Any]) -> str | None:
    del attrs
    return None


@dataclass(frozen=True)
class ToxicSpec:
    """One row of the registry: a toxic type as the API sees it.

    ``attributes`` are the wire names in wire order (integers, as in
    Toxiproxy, unless ``kinds`` says otherwise: our protocol toxics take
    strings and float shares); ``defaults`` are used for attributes not sent
    (else 0 or ""); ``check`` returns an error message for values that would
    crash or hang the real server (we answer 400 instead);
    ``closes_on_remove`` copies the real timeout toxic, whose removal closes
    the connections it was attached to; ``only_stream`` names the one stream
    a protocol toxic works on (it parses one side's messages).
    """

    type_name: str
    attributes: tuple[str, ...]
    stage: type[Stage]
    summary: str
    check: Callable[[Mapping[str, Any]], str | None] = _no_check
    closes_on_remove: bool = False
    kinds: Mapping[str, AttrKind] | None = None
    defaults: Mapping[str, AttrValue] | None = None
    only_stream: str | None = None
    strict: bool = False
    inert: Callable[[Mapping[str, Any]], bool] | None = None

    def kind(self, attribute: str) -> AttrKind:
        """The JSON type of attribute (``int64`` unless ``kinds`` says otherwise)."""
        return (self.kinds or {}).get(attribute, "int64")

    def initial_attributes(self) -> dict[str, AttrValue]:
        """Every attribute at its default (0, 0.0, "", [] or {} unless ``defaults`` has one)."""
        values: dict[str, AttrValue] = {}
        for name in self.attributes:
            values[name] = _zero(self.kind(name))
        for name, value in (self.defaults or {}).items():
            values[name] = value.copy() if isinstance(value, list | dict) else value
        return values


def _zero(kind: AttrKind) -> AttrValue:
    if kind == "[]string":
        return []
    if kind == "map[string]string":
        return {}
    if kind == "float32":
        return 0.0
    return "" if kind == "string" else 0
