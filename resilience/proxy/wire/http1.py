"""HTTP/1.1 message framing of one direction of a proxied stream, with httptools.

httptools (llhttp, the parser uvicorn uses) does the parsing: request and
status lines, headers, ``Content-Length`` versus ``Transfer-Encoding``, chunk
sizes with extensions and trailers, 204/304 and 1xx responses, pipelined
requests split anywhere across reads. It reports events, not positions, so a
:class:`Framer` feeds it in pieces that end where a message *can* end: the
end of a ``CRLFCRLF`` (a head, or the last chunk and trailers of a chunked
body) or the last byte of a ``Content-Length`` body. A message completed by
a piece therefore ends exactly at that piece's end, and the raw bytes are cut
there. The bytes themselves are passed on exactly as read (never
re-serialised), so an untouched exchange is byte-for-byte what the peer sent.

A :class:`Framer` turns fed bytes into :data:`Piece` s in stream order:
``("start", head)`` when a message's head is complete, ``("bytes", raw)``
for raw bytes of the current message (head included) and ``("end", None)``
when it is complete. Response framing needs each request's method (a HEAD
response has no body, whatever its headers say), so a response framer is
given the requests in order with :meth:`Framer.expect`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import httptools

__all__ = ["Framer", "Head", "Piece"]

_CRLFCRLF = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Head:
    """What a toxic may match on: the request line (and the status of a response)."""

    method: str
    target: str
    status: int = 0
    closes: bool = False  # a request asking to close the connection after its answer

    @property
    def path(self) -> str:
        """The target's path: no query string, no ``http://host`` of an absolute form."""
        target = self.target
        if target.startswith(("http://", "https://")):
            slash = target.find("/", target.index("//") + 2)
            target = "/" if slash < 0 else target[slash:]
        return target.split("?", 1)[0]


Piece = tuple[Literal["start"], Head] | tuple[Literal["bytes"], bytes] | tuple[Literal["end"], None]

_NO_REQUEST = Head("", "")


class _Events:
    """httptools callbacks: what the piece just fed completed."""

    __slots__ = ("chunked", "complete", "headers_done", "keep_alive", "length", "parser", "url")

    def __init__(self) -> None:
        self.parser: httptools.HttpRequestParser | httptools.HttpResponseParser | None = None
        self.keep_alive = True
        self.url = b""
        self.length = -1
        self.chunked = False
        self.headers_done = False
        self.complete = False

    def on_message_begin(self) -> None:
        self.url = b""
        self.length = -1
        self.chunked = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length":
            self.length = int(value)
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            self.chunked = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.parser is not None:
            self.keep_alive = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self.complete = True


class Framer:
    """Finds message boundaries in one direction (requests or responses).

    Requests: ``Framer(requests=True)``. Responses: ``Framer(requests=False)``,
    then :meth:`expect` every request, in order. On bytes that are not
    HTTP/1.1 (or a protocol switch: ``Upgrade``, ``CONNECT``) :attr:`failed`
    says why and the framer stops; :meth:`take_rest` hands back the raw bytes
    it had not handed out, so the caller can pass them on.
    """

    __slots__ = (
        "_body_left",
        "_buf",
        "_events",
        "_fed",
        "_head",
        "_parser",
        "_queue",
        "_requests",
        "_tail",
        "failed",
    )

    def __init__(self, *, requests: bool) -> None:
        self._requests = requests
        self._queue: deque[Head] = deque()  # response framing: requests awaiting one
        self._buf = bytearray()  # raw bytes not handed out yet
        self._fed = 0  # of which the parser has seen this many
        self._tail = b""  # the last bytes handed out of the current message (up to 3)
        self._head: Head | None = None  # the current message's, once complete
        self._body_left = -1  # Content-Length bytes still to come (-1: other framing)
        self._events = _Events()
        self._parser = self._new_parser()
        self.failed: str | None = None

    def _new_parser(self) -> httptools.HttpRequestParser | httptools.HttpResponseParser:
        parser: httptools.HttpRequestParser | httptools.HttpResponseParser
        if self._requests:
            parser = httptools.HttpRequestParser(self._events)
        else:
            parser = httptools.HttpResponseParser(self._events)
        self._events.parser = parser
        return parser

    @property
    def pending_bytes(self) -> int:
        """Bytes fed and not yet handed out (they come first in the next pieces)."""
        return len(self._buf)

    def expect(self, head: Head) -> None:
        """Response framing: a request whose response will follow (in order)."""
        self._queue.append(head)

    def take_rest(self) -> bytes:
        """Raw bytes fed but not handed out (after a failure: to pass through)."""
        rest = bytes(self._buf)
        self._buf.clear()
        self._fed = 0
        return rest

    def feed(self, data: bytes) -> list[Piece]:
        """The pieces data completes, in order (up to a failure, see :attr:`failed`)."""
        out: list[Piece] = []
        self._buf += data
        if self.failed is not None:
            return out
        try:
            while self._fed < len(self._buf) and self.failed is None:
                self._step(out)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade, ValueError) as exc:
            self.failed = _reason(exc)
        if self._head is not None and self._buf and self.failed is None:
            handed = bytes(self._buf)
            out.append(("bytes", handed))
            self._tail = (self._tail + handed)[-3:]
            self._buf.clear()
            self._fed = 0
        return out

    def close(self) -> list[Piece]:
        """End of stream: completes a read-until-close response body."""
        out: list[Piece] = []
        if self.failed is not None:
            return out
        read_until_close = self._body_left < 0 and not self._events.chunked
        if self._head is not None and not self._requests and read_until_close:
            self._end(out)
            return out
        if self._head is not None or self._buf:
            self.failed = "stream ended inside an HTTP message"
        return out

    def _cut(self) -> int:
        """Where the next piece ends: the earliest point the message can end."""
        if self._head is not None and self._body_left >= 0:
            return min(self._fed + self._body_left, len(self._buf))
        if self._head is not None and not self._events.chunked:
            return len(self._buf)  # read-until-close body
        if self._fed < 3 and self._tail:  # a CRLFCRLF across the bytes handed out
            joined = self._tail + bytes(self._buf[:3])
            found = joined.find(_CRLFCRLF)
            if found >= 0 and found + 4 - len(self._tail) > self._fed:
                return found + 4 - len(self._tail)
        found = self._buf.find(_CRLFCRLF, max(self._fed - 3, 0))
        return len(self._buf) if found < 0 else found + 4

    def _step(self, out: list[Piece]) -> None:
        cut = self._cut()
        piece = bytes(self._buf[self._fed : cut])
        events = self._events
        events.headers_done = events.complete = False
        self._parser.feed_data(piece)
        self._fed = cut
        if self._head is not None and self._body_left > 0:
            self._body_left -= len(piece)
        if events.headers_done and not self._start(out):
            # informational (1xx): its bytes go out as part of the exchange
            out.append(("bytes", bytes(self._buf[: self._fed])))
            del self._buf[: self._fed]
            self._fed = 0
            return
        head = self._head
        if (
            events.headers_done
            and head is not None
            and head.method == "HEAD"
            and not self._requests
        ):
            # llhttp cannot be told this response has no body: end it here
            self._parser = self._new_parser()
            self._end(out)
            return
        if events.complete:
            self._end(out)

    def _start(self, out: list[Piece]) -> bool:
        """A head is complete: ("start", head); False for an informational response."""
        events = self._events
        parser = self._parser
        if isinstance(parser, httptools.HttpRequestParser):
            method = parser.get_method().decode("ascii", "replace")
            closes = not events.keep_alive
            head = Head(method, events.url.decode("ascii", "replace"), closes=closes)
        else:
            status = parser.get_status_code()
            if 100 <= status < 200:
                return False
            request = self._queue.popleft() if self._queue else _NO_REQUEST
            head = Head(request.method, request.target, status)
        self._head = head
        self._body_left = events.length if not events.chunked else -1
        out.append(("start", head))
        return True

    def _end(self, out: list[Piece]) -> None:
        out.append(("bytes", bytes(self._buf[: self._fed])))
        del self._buf[: self._fed]
        self._fed = 0
        out.append(("end", None))
        self._tail = b""
        self._head = None
        self._body_left = -1


def _reason(exc: Exception) -> str:
    if isinstance(exc, httptools.HttpParserUpgrade):
        return "protocol switch (Upgrade/CONNECT) is not followed"
    return f"not HTTP/1.1 ({exc or type(exc).__name__})"
