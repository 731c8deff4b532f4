"""The base of the protocol toxics: stages that read the client's messages.

A protocol stage runs on the **upstream** stream (client → server). It holds
the bytes of a message (or, for PostgreSQL, of an extended-protocol batch)
until it is complete, then forwards it, or replaces it by another message, or
answers the client itself. What it holds is returned by :meth:`take_held`
from a message boundary, and its parsing state (:class:`ProtocolState`) lives
in the per-link state, so an update of the toxic re-reads the same bytes from
the same point. Bytes that are not the protocol (TLS after an SSLRequest, a
toxic added in the middle of a message, a batch over
:data:`MAX_HELD_BYTES`) switch the connection to pass-through for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Chunk, Item, LinkContext, Stage, monotonic_s

__all__ = ["MAX_HELD_BYTES", "ProtocolStage", "ProtocolState", "parse_share"]

MAX_HELD_BYTES = 1 << 20


class ProtocolState:
    """Parsing state of one connection's client stream (survives toxic updates)."""

    def __init__(self) -> None:
        self.phase = ""  # set by the first stage: "startup", "messages" or "opaque"


class ProtocolStage(Stage):
    """Holds ``buf`` (bytes not yet forwarded, starting at a message boundary)."""

    __slots__ = ("arrived_s", "buf")

    stateful = True
    state: ProtocolState

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, Any], state: Any = None) -> None:
        super().__init__(ctx, attrs, state)
        self.buf = bytearray()
        self.arrived_s = monotonic_s()
        if self.state.phase == "":
            self.state.phase = "startup" if ctx.received == 0 else "messages"

    @classmethod
    def new_state(cls) -> Any:
        return ProtocolState()

    def on_item(self, item: Item) -> None:
        if item is None:
            self.forward(len(self.buf))
            self.emit(None)
            return
        self.arrived_s = item.arrived_s
        if self.state.phase == "opaque" and not self.buf:
            self.emit(item)
            return
        self.buf += item.data
        if self.state.phase != "opaque":
            self.process()
        if self.state.phase == "opaque" or len(self.buf) > MAX_HELD_BYTES:
            self.state.phase = "opaque"
            self.forward(len(self.buf))

    def process(self) -> None:
        """Consume complete messages at the head of ``buf`` (subclasses)."""

    def forward(self, nbytes: int) -> None:
        """Pass the first nbytes of ``buf`` on unchanged."""
        if nbytes <= 0:
            return
        data = bytes(self.buf[:nbytes])
        del self.buf[:nbytes]
        self.emit(Chunk(data, self.arrived_s))

    def replace(self, nbytes: int, data: bytes) -> None:
        """Drop the first nbytes of ``buf`` and send data in their place."""
        del self.buf[:nbytes]
        self.ctx.discard(nbytes - len(data))  # the link counts bytes in flight
        if data:
            self.emit(Chunk(data, self.arrived_s))

    def answer_and_close(self, reply: bytes) -> None:
        """Drop everything held, write reply to the client, close the connection."""
        self.ctx.discard(len(self.buf))
        self.buf.clear()
        self.state.phase = "opaque"
        self.ctx.reply(reply)
        self.ctx.close_connection()

    def take_held(self) -> list[Item]:
        if not self.buf:
            return []
        held: list[Item] = [Chunk(bytes(self.buf), self.arrived_s)]
        self.buf.clear()
        return held


def parse_share(value: float) -> str | None:
    """Why value is not a share in [0, 1], or None."""
    if not 0.0 <= value <= 1.0:
        return f"rate must be a share between 0 and 1 (got {value:g})"
    return None
