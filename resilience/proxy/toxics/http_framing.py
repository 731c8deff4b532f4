"""HTTP/1.1 message framing of one direction of a proxied stream, with h11.

Why h11: framing is the part of HTTP that is easy to get subtly wrong
(chunked bodies with extensions and trailers, ``Content-Length`` versus
``Transfer-Encoding``, bodies that HEAD, 1xx, 204 and 304 responses do not
have, read-until-close bodies, pipelined requests split anywhere across
reads). h11 is the well-kept sans-I/O parser httpx is built on: it takes
bytes as they come and returns events, which fits a stage that is pushed
arbitrary chunks. We use it only to find *where* messages start and end; the
bytes themselves are passed on exactly as read (never re-serialised), so an
untouched exchange is byte-for-byte what the peer sent.

A :class:`Framer` turns fed bytes into :data:`Piece` s in stream order:
``("start", head)`` when a message's head is complete, ``("bytes", raw)``
for raw bytes of the current message (head included) and ``("end", None)``
when it is complete. h11 parses one exchange per connection object; a
keep-alive or pipelined stream gets a fresh parser per message, fed the
previous one's unconsumed bytes. Response framing needs the request method
(a HEAD response has no body), so a response framer is given the method of
each request in order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import h11

__all__ = ["Framer", "FramingError", "Head", "Piece"]


class FramingError(Exception):
    """The stream is not HTTP/1.1 (or uses an upgrade we do not follow)."""


@dataclass(frozen=True, slots=True)
class Head:
    """What a toxic may match on: the request line (or the status of a response)."""

    method: str
    target: str
    status: int = 0
    closes: bool = False  # a request asking to close the connection after its answer

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.split("?", 1)[0]


Piece = tuple[Literal["start"], Head] | tuple[Literal["bytes"], bytes] | tuple[Literal["end"], None]

_DUMMY_HOST = [("Host", "proxy")]
_END = h11.EndOfMessage()
_REQUESTS: dict[str, h11.Request] = {}  # events are immutable: one per method, reused


def _request_event(method: str) -> h11.Request:
    event = _REQUESTS.get(method)
    if event is None:
        event = h11.Request(method=method, target="/", headers=_DUMMY_HOST)
        if len(_REQUESTS) < 64:
            _REQUESTS[method] = event
    return event


class Framer:
    """Finds message boundaries in one direction (requests or responses).

    Requests: ``Framer(requests=True)``. Responses: ``Framer(requests=False)``,
    then :meth:`expect` the method and target of every request, in order,
    before its response's bytes are fed. On bytes that are not HTTP/1.1,
    :attr:`failed` says why and the framer stops; :meth:`take_rest` hands back
    the raw bytes it had not handed out, so the caller can pass them on.
    """

    __slots__ = ("_conn", "_in_message", "_pending", "_queue", "_requests", "failed")

    def __init__(self, *, requests: bool) -> None:
        self._requests = requests
        self._queue: deque[Head] = deque()  # response framing: requests awaiting one
        self._conn: h11.Connection | None = None
        self._pending = bytearray()  # raw bytes fed and not yet handed out
        self._in_message = False
        self.failed: str | None = None

    def take_rest(self) -> bytes:
        """Raw bytes fed but not handed out (after a failure: to pass through)."""
        rest = bytes(self._pending)
        self._pending.clear()
        return rest

    def expect(self, head: Head) -> None:
        """Response framing: a request whose response will follow (in order)."""
        self._queue.append(head)

    @property
    def pending_bytes(self) -> int:
        """Bytes fed and not yet handed out (they come first in the next pieces)."""
        return len(self._pending)

    @property
    def awaiting(self) -> int:
        """Requests :meth:`expect`-ed whose response has not started."""
        return len(self._queue)

    def _new_conn(self) -> h11.Connection | None:
        if self._requests:
            return h11.Connection(h11.SERVER)
        if not self._queue:
            return None  # bytes before any request: cannot frame them (yet)
        head = self._queue[0]
        conn = h11.Connection(h11.CLIENT)
        try:
            conn.send(_request_event(head.method))
            conn.send(_END)
        except h11.LocalProtocolError as exc:
            raise FramingError(f"cannot frame a response to {head.method}: {exc}") from None
        return conn

    def feed(self, data: bytes) -> list[Piece]:
        """The pieces data completes, in order (up to a failure, see :attr:`failed`)."""
        out: list[Piece] = []
        if self.failed is not None:
            self._pending += data
            return out
        try:
            self._feed(data, out)
        except FramingError as exc:
            self.failed = str(exc) or "not HTTP/1.1"
        return out

    def close(self) -> list[Piece]:
        """End of stream: completes a read-until-close body."""
        out: list[Piece] = []
        if self.failed is not None:
            return out
        try:
            if self._conn is not None:
                self._conn.receive_data(b"")
                self._pump(out)
            if self._pending and self._in_message:
                raise FramingError("stream ended inside a message")
        except FramingError as exc:
            self.failed = str(exc)
        return out

    def _feed(self, data: bytes, out: list[Piece]) -> None:
        self._pending += data
        if self._conn is None:
            self._conn = self._new_conn()
            if self._conn is None:
                if self._pending:
                    raise FramingError("response bytes before any request")
                return
            self._conn.receive_data(bytes(self._pending))
        else:
            self._conn.receive_data(data)
        self._pump(out)

    def _consumed(self, conn: h11.Connection, out: list[Piece]) -> None:
        unconsumed = len(conn.trailing_data[0])
        n = len(self._pending) - unconsumed
        if n > 0 and self._in_message:
            out.append(("bytes", bytes(self._pending[:n])))
            del self._pending[:n]

    def _pump(self, out: list[Piece]) -> None:
        conn = self._conn
        while conn is not None:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise FramingError(str(exc)) from None
            if event is h11.NEED_DATA:
                self._consumed(conn, out)
                return
            if isinstance(event, h11.Request):
                method = event.method.decode("ascii", "replace")
                self._start(out, Head(method, _text(event), closes=_closes(event)))
            elif isinstance(event, h11.Response):
                request = self._queue.popleft()
                self._start(out, Head(request.method, request.target, event.status_code))
            elif isinstance(event, h11.EndOfMessage):
                self._consumed(conn, out)
                out.append(("end", None))
                self._in_message = False
                rest, _closed = conn.trailing_data
                self._pending = bytearray(rest)
                conn = self._conn = self._new_conn() if rest else None
                if conn is not None:
                    conn.receive_data(rest)
            elif event is h11.PAUSED:
                raise FramingError("protocol switch (Upgrade/CONNECT) is not followed")
            elif isinstance(event, h11.ConnectionClosed):
                self._conn = None
                return
            # Data and InformationalResponse: their bytes go out with _consumed

    def _start(self, out: list[Piece], head: Head) -> None:
        self._in_message = True
        out.append(("start", head))


def _closes(event: h11.Request) -> bool:
    tokens = {
        token.strip().lower()
        for name, value in event.headers
        if name == b"connection"
        for token in value.split(b",")
    }
    if event.http_version == b"1.0":
        return b"keep-alive" not in tokens
    return b"close" in tokens


def _text(event: h11.Request) -> str:
    return bytes(event.target).decode("ascii", "replace")
