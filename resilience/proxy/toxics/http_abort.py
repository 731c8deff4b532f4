"""``http_abort`` (extension): breaks matching exchanges mid-flight.

Attributes: ``mode`` (``close``, ``reset`` or ``malformed``; default
``close``), ``after_bytes`` (bytes of the response passed first, default 0),
and the filters every HTTP toxic has (``methods``, ``paths``, ``exclude``,
``rate``; see :mod:`.http_stage`). Anchors: Chaos Mesh HTTPChaos ``abort``,
Envoy's fault filter ``abort``, and truncated bodies as a proxy sees them.

``stream: downstream`` (the usual one): the response passes for
``after_bytes`` bytes (its head included), then ``close`` ends the
connection normally (the client reads a truncated response, or none),
``reset`` ends it with a TCP RST, and ``malformed`` sends bytes that break
the response's framing (a bad chunk-size line or a body longer than
announced) and then closes. ``stream: upstream``: the matching request
never reaches the server and the connection is closed (``close``,
``malformed``) or reset (``reset``) at once: the client sent its request and
got no answer. Everything after an abort on the connection is dropped.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Chunk, ToxicSpec, monotonic_s
from .http_framing import Head
from .http_stage import RESET, HttpAttributes, HttpStage, HttpState, attribute_codec

__all__ = ["SPEC", "HttpAbortAttributes", "HttpAbortStage"]

_GARBAGE = b"\r\nzz-not-a-chunk-size\r\n\r\n"


class HttpAbortAttributes(HttpAttributes):
    mode: Literal["close", "reset", "malformed"] = "close"
    after_bytes: int = Field(0, ge=0)


class HttpAbortStage(HttpStage):
    __slots__ = ("left",)
    model = HttpAbortAttributes
    type_name = "http_abort"

    def act(self, head: Head, arrived_s: float) -> None:
        config = self.config
        assert isinstance(config, HttpAbortAttributes)
        st: HttpState = self.state
        if self.ctx.is_upstream:
            st.dropping = True
            self._abort(config.mode == "reset", b"")
            return
        self.left = config.after_bytes
        if self.left == 0:
            self._abort(config.mode == "reset", _GARBAGE if config.mode == "malformed" else b"")

    def on_bytes(self, data: bytes, arrived_s: float) -> None:
        st: HttpState = self.state
        if not st.acting or self.ctx.is_upstream or st.aborted:
            super().on_bytes(data, arrived_s)
            return
        config = self.config
        assert isinstance(config, HttpAbortAttributes)
        passed, rest = data[: self.left], data[self.left :]
        self.left -= len(passed)
        if passed:
            self.send(Chunk(passed, arrived_s), st.due_s)
        if self.left == 0:
            self.ctx.discard(len(rest))
            self._abort(config.mode == "reset", _GARBAGE if config.mode == "malformed" else b"")

    def _abort(self, reset: bool, garbage: bytes) -> None:
        st: HttpState = self.state
        st.aborted = True
        st.dropping = True
        if garbage:
            self.send(Chunk(garbage, monotonic_s()), st.due_s)
        self.send(RESET if reset else None, st.due_s)


_DECODE, _DEFAULTS = attribute_codec("http_abort", HttpAbortAttributes)

SPEC = ToxicSpec(
    "http_abort",
    tuple(_DEFAULTS),
    HttpAbortStage,
    "closes, resets or corrupts matching HTTP exchanges mid-response (extension)",
    decode=_DECODE,
    defaults=_DEFAULTS,
)
