"""A small HTTP/1.1 server protocol for the API (no framework on the hot path).

It parses requests (Content-Length or chunked bodies, ``Expect:
100-continue``, keep-alive and pipelining), hands each :class:`Request` to an
application callable and writes the :class:`Response` it returns (directly, or
once an awaitable resolves). Limits: headers 64 KiB (431), body
:data:`MAX_BODY_BYTES` (413, as a JSON error like the API's). A malformed
request gets 400 and the connection is closed, as does one idle for
:data:`IDLE_TIMEOUT_S`; nothing here can raise into the event loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import unquote

__all__ = ["MAX_BODY_BYTES", "HttpProtocol", "Request", "Response", "make_factory"]

MAX_BODY_BYTES = 8 << 20
MAX_HEADER_BYTES = 64 << 10
IDLE_TIMEOUT_S = 60.0  # a connection with no complete request for this long is closed

_log = logging.getLogger("resilience.proxy.http")

_REASONS = {
    100: "Continue",
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query string
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


App = Callable[[Request], "Response | Awaitable[Response]"]


class _RequestIds:
    """20-character ids in the alphabet of the xid ids the real server sends."""

    _ALPHABET = "0123456789abcdefghijklmnopqrstuv"

    def __init__(self) -> None:
        self._prefix = "".join(self._ALPHABET[b & 31] for b in os.urandom(12))
        self._counter = int.from_bytes(os.urandom(3), "big")

    def next(self) -> str:
        self._counter = (self._counter + 1) & 0xFFFFFFFF
        n, tail = self._counter, []
        for _ in range(8):
            tail.append(self._ALPHABET[n & 31])
            n >>= 5
        return self._prefix + "".join(reversed(tail))


_IDS = _RequestIds()
_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


class _BadRequest(Exception):
    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(status)
        self.response = Response(status, body, content_type)


def _plain(status: int) -> _BadRequest:
    return _BadRequest(
        status, f"{status} {_REASONS.get(status, '')}".encode(), "text/plain; charset=utf-8"
    )


class HttpProtocol(asyncio.Protocol):
    """One client connection of the API server."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False
        self.closing = False
        self.sent_continue = False
        self.peer_eof = False
        self.task: asyncio.Task[None] | None = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT_S, self._idle_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.idle is not None:
            self.idle.cancel()

    def _idle_out(self) -> None:
        self.idle = None
        if self.transport is not None and not self.busy:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._process()
        elif len(self.buf) > MAX_BODY_BYTES + MAX_HEADER_BYTES and self.transport is not None:
            self.transport.pause_reading()  # pipelined input piles up behind a slow handler

    def eof_received(self) -> bool:
        self.peer_eof = True
        return self.busy  # keep the socket open to answer the request in progress

    # -- parsing -------------------------------------------------------------
    def _process(self) -> None:
        while self.buf and not self.busy and not self.closing and self.transport is not None:
            try:
                parsed = self._parse()
            except _BadRequest as bad:
                self.closing = True
                self._write(bad.response, keep_alive=False)
                return
            if parsed is None:
                return
            request, keep_alive = parsed
            try:
                result = self.app(request)
            except Exception:
                _log.exception("API handler failed")
                result = Response(500, b"internal error\n", "text/plain; charset=utf-8")
            if isinstance(result, Response):
                self._write(result, keep_alive)
                continue
            self.busy = True
            self.task = asyncio.ensure_future(self._finish(result, keep_alive))

    async def _finish(self, pending: Awaitable[Response], keep_alive: bool) -> None:
        try:
            response = await pending
        except Exception:
            _log.exception("API handler failed")
            response = Response(500, b"internal error\n", "text/plain; charset=utf-8")
        self.busy = False
        self._write(response, keep_alive)
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()
        if self.buf:
            self._process()
        if self.peer_eof and not self.busy and self.transport is not None:
            self.transport.close()

    def _parse(self) -> tuple[Request, bool] | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER_BYTES:
                raise _plain(431)
            return None
        if end > MAX_HEADER_BYTES:
            raise _plain(431)
        head = bytes(buf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _plain(400)
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _plain(400)
            key = name.lower()
            headers[key] = (headers[key] + ", " if key in headers else "") + value.strip()
        body_start = end + 4
        body: bytes
        if "chunked" in headers.get("transfer-encoding", "").lower():
            decoded = self._chunked(body_start)
            if decoded is None:
                self._maybe_continue(headers)
                return None
            body, consumed = decoded
        else:
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit():
                raise _plain(400)
            length = int(length_text)
            if length > MAX_BODY_BYTES:
                raise _too_large()
            if len(buf) - body_start < length:
                self._maybe_continue(headers)
                return None
            body = bytes(buf[body_start : body_start + length])
            consumed = body_start + length
        del buf[:consumed]
        self.sent_continue = False
        if target.startswith(("http://", "https://")):  # absolute-form (proxies send it)
            slash = target.find("/", target.find("//") + 2)
            target = target[slash:] if slash >= 0 else "/"
        path, _, query = target.partition("?")
        connection = headers.get("connection", "").lower()
        keep_alive = (
            "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        )
        return Request(method, unquote(path), query, headers, body), keep_alive

    def _chunked(self, start: int) -> tuple[bytes, int] | None:
        buf, pos, out = self.buf, start, bytearray()
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _plain(400) from None
            if len(out) + size > MAX_BODY_BYTES:
                raise _too_large()
            pos = line_end + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", pos - 2)
                if trailer_end < 0:
                    return None
                return bytes(out), trailer_end + 4
            if len(buf) < pos + size + 2:
                return None
            out += buf[pos : pos + size]
            pos += size + 2

    def _maybe_continue(self, headers: dict[str, str]) -> None:
        if (
            not self.sent_continue
            and headers.get("expect", "").lower() == "100-continue"
            and self.transport is not None
        ):
            self.sent_continue = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    # -- writing -------------------------------------------------------------
    def _write(self, response: Response, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}"]
        if response.content_type is not None:
            lines.append(f"Content-Type: {response.content_type}")
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        lines.append(f"X-Toxiproxy-Request-Id: {_IDS.next()}")
        lines.append(f"Date: {_http_date()}")
        if response.status != 204:
            lines.append(f"Content-Length: {len(response.body)}")
        if not keep_alive:
            lines.append("Connection: close")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)
        if not keep_alive:
            self.closing = True
            transport.close()
        elif self.idle is not None:
            self.idle.cancel()
            self.idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT_S, self._idle_out)


def _too_large() -> _BadRequest:
    return _BadRequest(
        413,
        b'{"error":"request body too large","status":413}\n',
        "text/plain; charset=utf-8",
    )


def make_factory(app: App) -> Callable[[], HttpProtocol]:
    """Protocol factory for ``loop.create_server``."""
    return lambda: HttpProtocol(app)
