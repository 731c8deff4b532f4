"""What the HTTP toxics share: request matching, the filter attributes, the stage.

The HTTP toxics are extensions (the real Toxiproxy has none). They parse
HTTP/1.1 on the proxied stream (:mod:`resilience.proxy.wire.http1`) and act
on whole *exchanges* (a request and its response), one at a time on
keep-alive and pipelined connections. ``stream`` keeps its Toxiproxy meaning,
the direction the toxic acts on: ``upstream`` acts on requests before they
reach the server, ``downstream`` on responses before they reach the client.
Either way the toxic sees both directions: its own by parsing the bytes it is
pushed, the other by watching what the opposite link reads (requests give a
response its method and path; responses tell a request-side toxic when the
server has answered, so a reply it makes up is not sent before the answers
to the requests pipelined ahead of it). ``toxicity`` is rolled per
connection as for every toxic; ``rate`` is then rolled per matching request.

A stream that is not HTTP/1.1 (or switches protocol) passes through
unchanged from the point where parsing failed; the reason becomes the
toxic's ``error`` in the API's JSON and is logged as a warning.

The parsing state lives in a per-link state object, so updating the toxic
(or adding one after it, which restarts it as in Toxiproxy) keeps framing a
live keep-alive connection correctly. A toxic added to a live connection
starts parsing at once: between two exchanges (an idle keep-alive
connection) that works; in the middle of one, what cannot be parsed passes
on unchanged and the framing starts afresh at the next read, up to
``RESYNC_READS`` times, until a first message is framed (only then is the
stream judged not HTTP). A toxic on a fresh connection judges its first bytes.
Limitation: a request-side toxic that answers requests itself
(``http_error`` upstream) should be the last HTTP toxic of the upstream
chain; one after it never sees the requests it answered.

This file is over 300 lines: it is the one engine the three HTTP toxics share.
"""

from __future__ import annotations

import fnmatch
import logging
from collections import deque
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from resilience.proxy.wire.http1 import Framer, Head, Piece

from .base import AttrKind, AttrValue, Chunk, Item, LinkContext, Stage, monotonic_s
from .protocol import parse_share

__all__ = [
    "FILTER_ATTRIBUTES",
    "FILTER_DEFAULTS",
    "FILTER_KINDS",
    "RESET",
    "Filters",
    "HttpStage",
    "HttpState",
    "build_response",
    "check_filters",
    "inert_at_rate_0",
]

_log = logging.getLogger("resilience.proxy.toxics")

RESYNC_READS = 8
"""Reads that may fail to parse after a toxic joined a live connection mid-exchange
(each passes on unchanged, the framing starting afresh at the next one)."""

FILTER_ATTRIBUTES = ("methods", "paths", "exclude", "rate")
FILTER_KINDS: dict[str, AttrKind] = {
    "methods": "[]string",
    "paths": "[]string",
    "exclude": "[]string",
    "rate": "float32",
}
FILTER_DEFAULTS: dict[str, AttrValue] = {"methods": [], "paths": [], "exclude": [], "rate": 1.0}


class Filters:
    """Which requests an HTTP toxic acts on (every HTTP toxic has these).

    ``methods``: HTTP methods (any case; empty: all). ``paths``: path
    patterns, a glob when it has ``*``, ``?`` or ``[`` (``/bookings/*``),
    else a prefix (``/bookings``); empty: all. ``exclude``: patterns of paths
    never acted on (wins over ``paths``). ``rate``: the share 0–1 of matching
    requests acted on, rolled per request.
    """

    __slots__ = ("exclude", "methods", "paths", "rate")

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        self.methods = frozenset(str(m).upper() for m in attrs["methods"])
        self.paths = tuple(attrs["paths"])
        self.exclude = tuple(attrs["exclude"])
        self.rate = float(attrs["rate"])

    def matches(self, head: Head) -> bool:
        """True when head's method and path pass the filters (rate aside)."""
        if head.method == "" and (self.methods or self.paths):
            return False  # a response to a request this toxic never saw
        if self.methods and head.method.upper() not in self.methods:
            return False
        path = head.path
        if any(_path_matches(pattern, path) for pattern in self.exclude):
            return False
        return not self.paths or any(_path_matches(pattern, path) for pattern in self.paths)


def _path_matches(pattern: str, path: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(path, pattern)
    return path.startswith(pattern)


def check_filters(type_name: str, attrs: Mapping[str, Any]) -> str | None:
    """Why the filter attributes are wrong (a 400), or None."""
    problem = parse_share(attrs["rate"])
    if problem is not None:
        return f"{type_name} {problem}"
    for name in ("paths", "exclude"):
        for pattern in attrs[name]:
            if not pattern.startswith(("/", "*")):
                return f"{type_name} {name} must be paths starting with / or * (got {pattern!r})"
    for method in attrs["methods"]:
        if not method.isalpha():
            return f"{type_name} methods must be HTTP method names (got {method!r})"
    return None


def inert_at_rate_0(attrs: Mapping[str, Any]) -> bool:
    """A rate of 0 acts on nothing: the stage is dropped from the chain."""
    return float(attrs["rate"]) <= 0.0


def build_response(
    status: int, body: bytes, headers: Mapping[str, str], *, head_only: bool, toxic: str
) -> bytes:
    """A complete HTTP/1.1 response made up by a toxic (framed by Content-Length)."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}"]
    names = {name.lower() for name in headers}
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body and "content-type" not in names:
        lines.append("Content-Type: text/plain; charset=utf-8")
    lines.append(f"Content-Length: {len(body)}")
    lines.append(f"X-Resilience-Toxic: {toxic}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return raw if head_only else raw + body


class _Reset:
    """Held marker: reset the connection when it is due."""


RESET = _Reset()
_CLOSE = b""  # in pending_replies: close the connection here (identity-compared)
_Held = Item | _Reset


class HttpState:
    """Framing state of one link, kept across restarts of its HTTP stage.

    While a pass-through takes the stage's place (toxicity not rolled, or the
    toxic is inert at ``rate`` 0), bytes flow unparsed: :meth:`resync` then
    forgets the framing, and the next HTTP stage starts afresh (as a toxic
    added to a live connection does).
    """

    __slots__ = (
        "aborted",
        "acting",
        "dropping",
        "due_s",
        "head",
        "other",
        "own",
        "passthrough",
        "pending_replies",
        "replay",
        "resyncs_left",
        "stage",
    )

    def __init__(self) -> None:
        self.resync()

    def resync(self) -> None:
        """Bytes will pass unparsed: start the framing afresh next time."""
        self.own: Framer | None = None  # built by the first stage (knows the direction)
        self.other: Framer | None = None
        self.passthrough = False
        self.replay = 0  # bytes handed back by a stopped stage: pass them unparsed
        self.head: Head | None = None  # the current message's
        self.acting = False  # the current message is acted on
        self.dropping = False  # its bytes are dropped (answered or replaced by the toxic)
        self.due_s = 0.0  # when its bytes may leave (monotonic s)
        self.aborted = False  # the connection is being closed: drop everything
        # request side: per forwarded request None, per answered one its reply
        self.pending_replies: deque[bytes | None] = deque()
        self.stage: HttpStage | None = None
        # joined a live connection: reads that may still fail to parse (see RESYNC_READS)
        self.resyncs_left = 0


class HttpStage(Stage):
    """One HTTP toxic on one link. Subclasses decide per message.

    When a message's head is complete (a request on the upstream link, a
    response on the downstream one), :meth:`on_head` says whether the toxic
    acts on it (filters, then ``rate``); if so :meth:`act` runs, which may set
    ``state.due_s`` (delay its bytes), ``state.dropping`` (drop them; on the
    request side the server never sees the request) or send something with
    :meth:`send`. :meth:`act_end` runs when an acted-on message is complete.
    """

    __slots__ = ("filters", "held", "watcher")

    stateful = True
    type_name: ClassVar[str] = "http"

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, Any], state: Any = None) -> None:
        super().__init__(ctx, attrs, state)
        self.filters = Filters(attrs)
        self.held: deque[tuple[float, _Held]] = deque()
        st: HttpState = self.state
        if st.own is None:
            st.own = Framer(requests=ctx.is_upstream)
            st.other = Framer(requests=not ctx.is_upstream)
            st.resyncs_left = RESYNC_READS if ctx.received else 0  # mid-exchange, maybe
        st.stage = self
        self.watcher = self._watch
        ctx.watch_opposite(self.watcher)

    @classmethod
    def new_state(cls) -> HttpState:
        return HttpState()

    # -- decisions (subclasses) ------------------------------------------------
    def on_head(self, head: Head) -> bool:
        """Whether to act on the message whose head this is (filters, then rate)."""
        if not self.filters.matches(head):
            return False
        rate = self.filters.rate
        return rate >= 1.0 or self.ctx.rng.random() < rate

    def act(self, head: Head, arrived_s: float) -> None:
        """Act on the message that starts with head (arrived at arrived_s)."""

    def act_end(self, head: Head) -> None:
        """The acted-on message is complete."""

    def on_bytes(self, data: bytes, arrived_s: float) -> None:
        """Bytes of the current message: passed on unless dropped."""
        st: HttpState = self.state
        if st.dropping:
            self.ctx.discard(len(data))
        else:
            self.send(Chunk(data, arrived_s), st.due_s)

    def _start_message(self, head: Head, arrived_s: float) -> None:
        st: HttpState = self.state
        st.resyncs_left = 0  # a message framed: in step with the stream from here
        st.head = head
        st.due_s = 0.0
        st.dropping = False
        st.acting = self.on_head(head)
        if st.acting:
            self.act(head, arrived_s)
        if self.ctx.is_upstream and not st.dropping:
            self.forwarded(head)

    def _end_message(self) -> None:
        st: HttpState = self.state
        if st.acting and st.head is not None:
            self.act_end(st.head)
        st.acting = st.dropping = False

    # -- the request side's view of responses ------------------------------------
    def forwarded(self, head: Head) -> None:
        """A request went on to the server: its response will come (request side)."""
        st: HttpState = self.state
        assert st.other is not None
        st.other.expect(head)
        st.pending_replies.append(None)

    def reply(self, response: bytes, *, close: bool) -> None:
        """Answer the client with response once earlier requests are answered;
        close: then end the connection (the request asked for it)."""
        st: HttpState = self.state
        if close:
            response = response.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
        if any(item is None for item in st.pending_replies):
            st.pending_replies.append(response)
            if close:
                st.pending_replies.append(_CLOSE)
        else:
            self.ctx.send_back(response)
            if close:
                self.send(None, 0.0)

    def _response_done(self) -> list[bytes]:
        """A response to a forwarded request ended: the replies now due."""
        st: HttpState = self.state
        if st.pending_replies and st.pending_replies[0] is None:
            st.pending_replies.popleft()
        due: list[bytes] = []
        while st.pending_replies and st.pending_replies[0] is not None:
            reply = st.pending_replies.popleft()
            assert reply is not None
            if reply is _CLOSE:  # after the reply is written: end the connection
                self.ctx.loop.call_soon(self.send, None, 0.0)
            else:
                due.append(reply)
        return due

    # -- input -----------------------------------------------------------------
    def on_item(self, item: Item) -> None:
        st: HttpState = self.state
        if item is None:
            if not st.passthrough and st.own is not None:
                self._pieces(st.own.close(), monotonic_s())
            self.send(None, st.due_s)
            return
        data, arrived = item.data, item.arrived_s
        if st.replay:
            n = min(st.replay, len(data))
            st.replay -= n
            self.send(Chunk(data[:n], arrived), 0.0)
            data = data[n:]
            if not data:
                return
        if st.passthrough or st.own is None:
            self.send(Chunk(data, arrived), 0.0)
            return
        self._pieces(st.own.feed(data), arrived)
        failed = st.own.failed
        if failed is not None:
            if st.resyncs_left > 0:  # joined mid-exchange: pass it on, frame afresh
                st.resyncs_left -= 1
                rest = st.own.take_rest()
                if rest:
                    self.send(Chunk(rest, arrived), 0.0)
                st.own = Framer(requests=self.ctx.is_upstream)
                st.head, st.acting, st.dropping = None, False, False
            else:
                self._fail(failed, arrived)

    def _pieces(self, pieces: list[Piece], arrived_s: float) -> None:
        st: HttpState = self.state
        for kind, value in pieces:
            if kind == "start":
                assert isinstance(value, Head)
                self._start_message(value, arrived_s)
            elif kind == "bytes":
                assert isinstance(value, bytes)
                if st.aborted:
                    self.ctx.discard(len(value))
                else:
                    self.on_bytes(value, arrived_s)
            else:
                self._end_message()

    def _watch(self, item: Item) -> list[tuple[int, bytes]]:
        """What the opposite link read; returns replies to insert into it, by offset."""
        st: HttpState = self.state
        other = st.other
        if st.passthrough or other is None:
            return []
        carried = other.pending_bytes
        pieces = other.close() if item is None else other.feed(item.data)
        injections: list[tuple[int, bytes]] = []
        offset = -carried  # of the next byte handed out, within item
        for kind, value in pieces:
            if kind == "bytes":
                assert isinstance(value, bytes)
                offset += len(value)
            elif kind == "start" and isinstance(value, Head) and not self.ctx.is_upstream:
                assert st.own is not None
                st.own.expect(value)  # a request: its response will follow
            elif kind == "end" and self.ctx.is_upstream:
                injections += [(max(offset, 0), reply) for reply in self._response_done()]
        if other.failed is not None and item is not None:
            if st.resyncs_left > 0:  # joined mid-exchange: frame afresh from the next read
                st.resyncs_left -= 1
                st.other = Framer(requests=not self.ctx.is_upstream)
            else:
                self._fail(other.failed, monotonic_s())
        return injections

    def _fail(self, reason: str, arrived_s: float) -> None:
        """Not HTTP: pass everything on unchanged from here, and say so."""
        st: HttpState = self.state
        st.passthrough = True
        st.acting = False
        if st.own is not None:
            rest = st.own.take_rest()
            if rest:
                self.send(Chunk(rest, arrived_s), 0.0)
        while st.pending_replies:
            reply = st.pending_replies.popleft()
            if reply:
                self.ctx.send_back(reply)
        message = (
            f"{self.type_name}: the stream is not HTTP/1.1 ({reason}); "
            "this connection is passed through unchanged"
        )
        self.ctx.report_error(self, message)
        _log.warning(message, extra={"toxic": self.type_name, "reason": reason})

    # -- output in order, not before due ------------------------------------------
    def send(self, item: _Held, due_s: float) -> None:
        """Send item on at due_s (monotonic) or later, after everything before it."""
        if not self.held and due_s <= monotonic_s():
            self._emit_held(item)
            return
        self.held.append((due_s, item))
        if self.timer is None:
            self.call_later(self.held[0][0] - monotonic_s(), self._release)

    def _emit_held(self, item: _Held) -> None:
        if isinstance(item, _Reset):
            self.ctx.reset_connection()
        else:
            self.emit(item)

    def _release(self) -> None:
        self.timer = None
        now = monotonic_s()
        while self.held and self.held[0][0] <= now and not self.stopped:
            self._emit_held(self.held.popleft()[1])
        if self.held and not self.stopped:
            self.call_later(self.held[0][0] - now, self._release)

    def stop(self) -> list[Item]:
        self.ctx.unwatch_opposite(self.watcher)
        st: HttpState = self.state
        if st.stage is self:
            st.stage = None
        return super().stop()

    def take_held(self) -> list[Item]:
        items: list[Item] = [None if isinstance(item, _Reset) else item for _due, item in self.held]
        self.held.clear()
        st: HttpState = self.state
        st.replay += sum(len(item.data) for item in items if item is not None)
        return items
