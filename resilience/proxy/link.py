"""One direction of one proxied connection: source socket → toxics → dest socket.

Fast path: with no toxic on the direction, :class:`Endpoint` writes each read
straight to the other socket (the event loop's large reads, no chunk objects,
no queues); flow control is the transports' own pause/resume. Toxic path: each
read becomes a :class:`~.toxics.Chunk` pushed through the stages, the last of
which pushes into the link itself (the *sink*), which writes to the socket.
Bytes held inside the stages are counted; past :data:`HIGH_WATER_BYTES` the
source stops being read until they drain below :data:`LOW_WATER_BYTES`.

Stages are spliced in and out synchronously (:meth:`Link.add_stage`,
:meth:`Link.replace_stage`, :meth:`Link.remove_stage`), so live connections see
toxics change without losing or reordering a byte.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, ClassVar, Protocol

from .toxics import REGISTRY, Chunk, Item, NoopStage, Outlet, Stage
from .toxics.base import Watcher, monotonic_s
from .toxics.http_stage import HttpState

if TYPE_CHECKING:
    from .toxic import Toxic

__all__ = ["HIGH_WATER_BYTES", "LOW_WATER_BYTES", "Direction", "Link"]

HIGH_WATER_BYTES = 4 << 20
LOW_WATER_BYTES = 1 << 20


class Direction:
    """``upstream``: client → server (requests); ``downstream``: server → client.

    Two fixed instances (not an Enum: they are dict keys on the per-connection
    path, and identity hashing is much cheaper than Enum's).
    """

    __slots__ = ("value",)

    UPSTREAM: ClassVar[Direction]
    DOWNSTREAM: ClassVar[Direction]
    ALL: ClassVar[tuple[Direction, Direction]]

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Direction.{self.value.upper()}"

    @classmethod
    def parse(cls, text: str) -> Direction:
        """The direction named text (case-insensitive); ValueError otherwise."""
        lowered = text.lower()
        for direction in cls.ALL:
            if direction.value == lowered:
                return direction
        raise ValueError(text)


Direction.UPSTREAM = Direction("upstream")
Direction.DOWNSTREAM = Direction("downstream")
Direction.ALL = (Direction.UPSTREAM, Direction.DOWNSTREAM)


class Side(Protocol):
    """One socket of a connection, as a link sees it."""

    transport: asyncio.Transport | None


class Owner(Protocol):
    """The connection a link belongs to."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def rng_for(self, direction: Direction) -> random.Random: ...

    def link_finished(self, link: Link) -> None: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...

    def opposite(self, link: Link) -> Link | None: ...


class Link:
    """Moves bytes from ``source`` to ``dest`` through the stages of one direction.

    ``head`` is ``None`` on the fast path; otherwise it is the first stage (or
    the link itself when the destination is gone and everything is dropped).
    """

    __slots__ = (
        "_rng",
        "dest",
        "dest_open",
        "dest_paused",
        "direction",
        "head",
        "inflight",
        "over_high",
        "owner",
        "reading_paused",
        "received",
        "sent",
        "sink_done",
        "source",
        "source_ended",
        "stages",
        "toxics",
        "watchers",
    )

    def __init__(self, owner: Owner, direction: Direction, source: Side, dest: Side) -> None:
        self.owner = owner
        self.direction = direction
        self.source = source
        self.dest = dest
        self.stages: list[Stage] = []
        self.toxics: list[Toxic] = []  # the toxic of each stage
        self.head: Outlet | None = None
        self.inflight = 0
        self.received = 0
        self.sent = 0
        self.over_high = False
        self.dest_paused = False
        self.reading_paused = False
        self.dest_open = True
        self.sink_done = False
        self.source_ended = False
        self._rng: random.Random | None = None
        # HTTP toxics of the opposite link watching what this one reads
        self.watchers: list[Watcher] = []

    # -- LinkContext (what stages use) -------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.owner.loop

    @property
    def rng(self) -> random.Random:
        if self._rng is None:
            self._rng = self.owner.rng_for(self.direction)
        return self._rng

    def discard(self, nbytes: int) -> None:
        self.inflight -= nbytes
        if self.over_high and self.inflight < LOW_WATER_BYTES:
            self.over_high = False
            self.update_reading()

    def reset_connection(self) -> None:
        self.owner.reset()

    def reply(self, data: bytes) -> None:
        transport = self.source.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def close_connection(self) -> None:
        self.owner.close()

    @property
    def is_upstream(self) -> bool:
        return self.direction is Direction.UPSTREAM

    def watch_opposite(self, watcher: Watcher) -> None:
        other = self.owner.opposite(self)
        if other is not None:
            other.watchers.append(watcher)

    def unwatch_opposite(self, watcher: Watcher) -> None:
        other = self.owner.opposite(self)
        if other is not None and watcher in other.watchers:
            other.watchers.remove(watcher)

    def send_back(self, data: bytes) -> None:
        other = self.owner.opposite(self)
        if other is not None and not other.source_ended:
            other.forward(data)

    def report_error(self, stage: Stage, reason: str) -> None:
        for index, candidate in enumerate(self.stages):
            if candidate is stage:
                self.toxics[index].error = reason

    # -- data in -------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Bytes read from the source (the fast path is inlined in the endpoint).

        Watchers (HTTP toxics of the opposite link) see them first and may
        answer with injections: (offset, bytes) to insert at that offset of
        data, e.g. an error response made up by the toxic right after the end
        of the real responses pipelined ahead of it.
        """
        self.received += len(data)
        if self.watchers:
            chunk = Chunk(data, monotonic_s())
            injections: list[tuple[int, bytes]] = []
            for watcher in list(self.watchers):
                injections += watcher(chunk)
            if injections:
                at = 0
                for offset, extra in sorted(injections, key=lambda pair: pair[0]):
                    offset = min(max(offset, at), len(data))
                    if offset > at:
                        self.forward(data[at:offset])
                    self.forward(extra)
                    at = offset
                if at < len(data):
                    self.forward(data[at:])
                return
        self.forward(data)

    def forward(self, data: bytes) -> None:
        """data on into the chain (or straight to the destination without toxics)."""
        head = self.head
        if head is None:
            self.sent += len(data)
            transport = self.dest.transport
            if transport is not None:
                transport.write(data)
            return
        self.inflight += len(data)
        head.push(Chunk(data, monotonic_s()))
        if self.inflight > HIGH_WATER_BYTES and not self.over_high:
            self.over_high = True
            self.update_reading()

    def feed_eof(self) -> None:
        """The source reached end-of-stream (or went away)."""
        if self.source_ended:
            return
        self.source_ended = True
        for watcher in list(self.watchers):
            watcher(None)
        head = self.head
        if head is None:
            self.push(None)
        else:
            head.push(None)

    # -- the sink: the last stage pushes here ------------------------------
    def push(self, item: Item) -> None:
        if item is None:
            if not self.sink_done:
                self.sink_done = True
                self.owner.link_finished(self)
            return
        nbytes = len(item.data)
        self.inflight -= nbytes
        if nbytes and self.dest_open and not self.sink_done:
            self.sent += nbytes
            transport = self.dest.transport
            if transport is not None:
                transport.write(item.data)
        if self.over_high and self.inflight < LOW_WATER_BYTES:
            self.over_high = False
            self.update_reading()

    def dest_lost(self) -> None:
        """The destination socket is gone: drop everything from now on."""
        self.dest_open = False
        self._set_head()

    # -- flow control ------------------------------------------------------
    def set_dest_paused(self, paused: bool) -> None:
        self.dest_paused = paused
        self.update_reading()

    def update_reading(self) -> None:
        want = self.dest_paused or self.over_high
        if want == self.reading_paused:
            return
        self.reading_paused = want
        transport = self.source.transport
        if transport is None or transport.is_closing():
            return
        if want:
            transport.pause_reading()
        else:
            transport.resume_reading()

    # -- toxics on a live link ------------------------------------------------
    def _make_stage(self, toxic: Toxic, state: object) -> Stage:
        spec = REGISTRY[toxic.type]
        if self.rng.random() < toxic.toxicity and not (
            spec.inert is not None and spec.inert(toxic.attributes)
        ):
            return spec.stage(self, toxic.attributes, state)
        if isinstance(state, HttpState):
            state.resync()  # bytes will pass unparsed
        return NoopStage(self, toxic.attributes, state)

    def _set_head(self) -> None:
        # pass-through stages only (noop, toxicity not rolled, an inert toxic):
        # the fast path, as if there were no toxic
        if any(type(stage) is not NoopStage for stage in self.stages):
            self.head = self.stages[0]
        elif self.dest_open and not self.sink_done:
            self.head = None
            self.inflight = 0
            if self.over_high:
                self.over_high = False
                self.update_reading()
        else:
            self.head = self

    def add_stage(self, toxic: Toxic) -> None:
        """Append toxic at the end of this link's chain.

        As in Toxiproxy, the stage before it is restarted (its output moves),
        which rolls its toxicity again; what it held is kept, in order.
        """
        spec = REGISTRY[toxic.type]
        stage = self._make_stage(toxic, spec.stage.new_state())
        stage.out = self
        self.stages.append(stage)
        self.toxics.append(toxic)
        if len(self.stages) > 1:
            self.stages[-2].out = stage
            self._restart(len(self.stages) - 2)
        self._set_head()

    def replace_stage(self, index: int, toxic: Toxic) -> None:
        """Restart the stage at index with toxic's (new) settings; re-rolls toxicity."""
        old = self.stages[index]
        held = old.stop()
        stage = self._make_stage(toxic, old.state)
        stage.out = old.out
        self.stages[index] = stage
        self.toxics[index] = toxic
        if index > 0:
            self.stages[index - 1].out = stage
        for item in held:
            stage.push(item)
        self._set_head()

    def _restart(self, index: int) -> None:
        # a stage that has finished (passed end-of-stream, or reset_peer that fired)
        # stays as it is
        if not self.stages[index].closed:
            self.replace_stage(index, self.toxics[index])

    def remove_stage(self, index: int, close: bool) -> None:
        """Splice out the stage at index; what it held flows on. close: then send EOF.

        The stage before it is restarted, as in Toxiproxy (toxicity rolled again).
        """
        old = self.stages.pop(index)
        del self.toxics[index]
        held = old.stop()
        nxt = old.out
        if index > 0:
            self.stages[index - 1].out = nxt
        for item in held:
            nxt.push(item)
        if close:
            nxt.push(None)
        if index > 0 and index <= len(self.stages):
            self._restart(index - 1)
        self._set_head()

    def stop(self) -> None:
        """Stop every stage (connection teardown)."""
        for stage in self.stages:
            stage.stop()
        self.stages = []
        self.toxics = []
        self.watchers = []
        self.sink_done = True
        self.dest_open = False
        self.head = self
