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

from collections.abc import Mapping
from typing import Any

from resilience.proxy.wire.http1 import Head

from .base import Chunk, LinkContext, ToxicSpec, monotonic_s
from .http_stage import (
    FILTER_ATTRIBUTES,
    FILTER_DEFAULTS,
    FILTER_KINDS,
    RESET,
    HttpStage,
    HttpState,
    check_filters,
    inert_at_rate_0,
)

__all__ = ["MODES", "SPEC", "HttpAbortStage"]

MODES = ("close", "reset", "malformed")
_GARBAGE = b"\r\nzz-not-a-chunk-size\r\n\r\n"


class HttpAbortStage(HttpStage):
    __slots__ = ("left", "mode")
    type_name = "http_abort"

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, Any], state: Any = None) -> None:
        super().__init__(ctx, attrs, state)
        self.mode = str(attrs["mode"])
        self.left = 0

    def act(self, head: Head, arrived_s: float) -> None:
        st: HttpState = self.state
        if self.ctx.is_upstream:
            st.dropping = True
            self._abort(self.mode == "reset", b"")
            return
        self.left = int(self.attrs["after_bytes"])
        if self.left == 0:
            self._abort(self.mode == "reset", _GARBAGE if self.mode == "malformed" else b"")

    def on_bytes(self, data: bytes, arrived_s: float) -> None:
        st: HttpState = self.state
        if not st.acting or self.ctx.is_upstream or st.aborted:
            super().on_bytes(data, arrived_s)
            return
        passed, rest = data[: self.left], data[self.left :]
        self.left -= len(passed)
        if passed:
            self.send(Chunk(passed, arrived_s), st.due_s)
        if self.left == 0:
            self.ctx.discard(len(rest))
            self._abort(self.mode == "reset", _GARBAGE if self.mode == "malformed" else b"")

    def _abort(self, reset: bool, garbage: bytes) -> None:
        st: HttpState = self.state
        st.aborted = True
        st.dropping = True
        if garbage:
            self.send(Chunk(garbage, monotonic_s()), st.due_s)
        self.send(RESET if reset else None, st.due_s)


def _check(attrs: Mapping[str, Any]) -> str | None:
    if attrs["mode"] not in MODES:
        return f"http_abort mode must be one of {', '.join(MODES)} (got {attrs['mode']!r})"
    if attrs["after_bytes"] < 0:
        return f"http_abort after_bytes must be >= 0 (got {attrs['after_bytes']})"
    return check_filters("http_abort", attrs)


SPEC = ToxicSpec(
    "http_abort",
    (*FILTER_ATTRIBUTES, "mode", "after_bytes"),
    HttpAbortStage,
    "closes, resets or corrupts matching HTTP exchanges mid-response (extension)",
    check=_check,
    kinds={**FILTER_KINDS, "mode": "string", "after_bytes": "int64"},
    defaults={**FILTER_DEFAULTS, "mode": "close", "after_bytes": 0},
    strict=True,
    inert=inert_at_rate_0,
)
