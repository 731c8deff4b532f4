"""The HTTP target's client: keep-alive HTTP/1.1 on asyncio protocols, framed by httptools.

The open-model generator must never be what limits a run, and a general
client spends most of a loopback request's CPU on its own layers: with
aiohttp's ``ClientSession`` the generator held 10 000 requests/s on one core
where Locust's ``FastHttpUser`` (a C parser under gevent) held 8 000
(``benchmarks/http_workload_bench.py``), and aiohttp was ~60 % of the
generator's CPU. This client does only what the workload needs — one request
at a time per pooled keep-alive connection, the answer parsed by httptools
(llhttp, the parser of Node.js; chunked and content-length bodies) — and so
costs one write and one parser feed a request.

What it does: ``http`` and ``https`` (certificates verified), a pool of at
most ``limit`` connections, a deadline per request covering the wait for a
connection, the connect, the send and the whole answer; a reused keep-alive
connection the server closed meanwhile is retried once on a new connection
for an idempotent method when nothing of the answer had arrived (what
browsers and urllib3 do); a ``gzip``/``deflate`` body is decoded (none is
asked for unless a request's headers do). What it does not: redirects (an answer is measured as
it is), cookies, proxies from the environment, HTTP/2, ``Expect: 100-continue``.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple, cast
from urllib.parse import quote, urlsplit

import httptools

__all__ = ["Answer", "Headers", "HttpClient", "HttpClientError"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_UNSAFE_IN_HEAD = ("\r", "\n", "\0")
_PATH_SAFE = "!#$%&'()*+,/:;=?@[]~"
_GZIP = 16 + zlib.MAX_WBITS
_DECODERS = {b"gzip": _GZIP, b"x-gzip": _GZIP, b"deflate": zlib.MAX_WBITS}


class HttpClientError(Exception):
    """No HTTP answer: refused, reset, closed early, or a malformed answer."""


class Headers(Mapping[str, str]):
    """An answer's headers by case-insensitive name (a repeated one: its first value).

    Decoded on first use only: most answers are never asked for a header.
    """

    __slots__ = ("_by_name", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._by_name: dict[str, str] | None = None

    def _mapping(self) -> dict[str, str]:
        if self._by_name is None:
            by_name: dict[str, str] = {}
            for name, value in self._raw:
                by_name.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
            self._by_name = by_name
        return self._by_name

    def __getitem__(self, name: str) -> str:
        return self._mapping()[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())


class Answer(NamedTuple):
    status: int
    headers: Headers
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.reusable = True
        self.received = False  # a byte of the current answer has arrived
        self.head = False  # the current request is HEAD: its answer has no body
        self._next_answer()

    def _next_answer(self) -> None:
        """Forget what was parsed of the last answer (the parser itself goes on)."""
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.headers_done = False
        self.framed = False  # the answer's length is given (Content-Length or chunked)
        self.encoding = b""  # its Content-Encoding

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(HttpClientError("the server switched protocols (101): not HTTP/1.1 any more"))
        except httptools.HttpParserError as exc:
            self.fail(HttpClientError(f"malformed answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and not self.framed and exc is None:
            self.on_message_complete()  # a body delimited by the end of the connection
            return
        self.waiter = None
        detail = f": {exc}" if exc is not None else ""
        when = "in the middle of its answer" if self.received else "before answering"
        waiter.set_exception(HttpClientError(f"the server closed the connection {when}{detail}"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        size = len(name)
        if size in (14, 16, 17):
            lowered = name.lower()
            if lowered in (b"content-length", b"transfer-encoding"):
                self.framed = True
            elif lowered == b"content-encoding":
                self.encoding = value.strip().lower()

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.head:  # the parser would wait for the body a HEAD answer announces
            self.reusable = False
            self.on_message_complete()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # 100 Continue, 103 Early Hints: not the answer
            self._next_answer()
            return
        waiter, self.waiter = self.waiter, None
        if not self.parser.should_keep_alive():
            self.reusable = False
        body = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        if self.encoding:
            body = _decoded(body, self.encoding)
        answer = Answer(status, Headers(self.raw_headers), body)
        self._next_answer()
        if waiter is None:
            self.fail(HttpClientError("an answer to no request"))
        elif not waiter.done():
            waiter.set_result(answer)

    # the client's side

    def fail(self, error: Exception) -> None:
        """End the connection; the request in flight, if any, fails with ``error``."""
        self.reusable = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.transport is not None:
            self.transport.abort()
        self.closed = True

    def send(self, data: bytes, head: bool, waiter: asyncio.Future[Answer]) -> None:
        assert self.transport is not None
        self.received = False
        self.head = head
        self.waiter = waiter
        self.transport.write(data)


def _expire(connection: _Connection, waiter: asyncio.Future[Answer]) -> None:
    if not waiter.done():
        connection.fail(TimeoutError())


class HttpClient:
    """Requests to one origin (``base_url``, whose path is a prefix of every target)."""

    def __init__(self, base_url: str, *, limit: int = 512) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._host_line = f"Host: {parts.netloc.rpartition('@')[2]}\r\n"
        self._limit = max(1, limit)
        self._idle: list[_Connection] = []
        self._open = 0  # connections alive or being opened
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        timeout_s: float = 30.0,
    ) -> Answer:
        """``method target`` → the answer; raises :class:`TimeoutError` past
        ``timeout_s`` and :class:`HttpClientError` when there is no answer.

        ``target`` is the path (with its query), already percent-encoded
        where it must be; characters HTTP does not allow in it are encoded
        here. A header value with a line break is refused (``ValueError``).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        head = self._head(method, target, headers, body)
        data = head + body if body else head
        is_head = method == "HEAD"
        connection, reused = await self._acquire(loop, deadline)
        try:
            return await self._exchange(loop, connection, data, is_head, deadline)
        except HttpClientError:
            if not (reused and not connection.received and method in _IDEMPOTENT):
                raise
        finally:
            self._release(connection)
        # a keep-alive connection the server had closed: once more, on a new one
        connection = await self._connect(loop, deadline)
        try:
            return await self._exchange(loop, connection, data, is_head, deadline)
        finally:
            self._release(connection)

    def _head(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Sequence[tuple[str, str]],
        body: bytes | None,
    ) -> bytes:
        path = self._prefix + target
        if not path.isascii() or " " in path or not path.isprintable():
            path = quote(path, safe=_PATH_SAFE)
        if not headers and body is None and method not in _WITH_BODY:
            return f"{method} {path} HTTP/1.1\r\n{self._host_line}\r\n".encode("latin-1")
        host_line = self._host_line
        lines = [f"{method} {path} HTTP/1.1\r\n"]
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            if any(c in name or c in value for c in _UNSAFE_IN_HEAD) or ":" in name:
                raise ValueError(f"header {name!r}: a line break or ':' is not allowed")
            lowered = name.lower()
            if lowered == "host":
                host_line = ""
            elif lowered == "content-length":
                continue  # the body's own length is sent
            lines.append(f"{name}: {value}\r\n")
        lines.append(host_line)
        if body is not None or method in _WITH_BODY:
            lines.append(f"Content-Length: {len(body) if body else 0}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        connection: _Connection,
        data: bytes,
        is_head: bool,
        deadline: float,
    ) -> Answer:
        waiter: asyncio.Future[Answer] = loop.create_future()
        timer = loop.call_at(deadline, _expire, connection, waiter)
        connection.send(data, is_head, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            connection.fail(HttpClientError("cancelled"))
            raise
        finally:
            timer.cancel()

    async def _acquire(
        self, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> tuple[_Connection, bool]:
        """A connection: an idle one (``reused``) or a new one, waiting for one within the limit."""
        while True:
            if self._closed:
                raise HttpClientError("the client is closed")
            idle = self._idle
            while idle:
                connection = idle.pop()
                if not connection.closed:
                    return connection, True
                self._open -= 1
            if self._open < self._limit:
                return await self._connect(loop, deadline), False
            freed: asyncio.Future[None] = loop.create_future()
            self._waiting.append(freed)
            timer = loop.call_at(deadline, _timeout_wait, freed)
            try:
                await freed
            except BaseException:
                if freed.done() and not freed.cancelled() and freed.exception() is None:
                    self._wake_one()  # the turn given to this request goes to the next
                raise
            finally:
                timer.cancel()

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        self._open += 1
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except BaseException as exc:
            self._open -= 1
            self._wake_one()
            if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
                reason = exc.strerror or str(exc) or type(exc).__name__
                raise HttpClientError(
                    f"cannot connect to {self._host}:{self._port}: {reason}"
                ) from None
            raise
        return connection

    def _release(self, connection: _Connection) -> None:
        if connection.reusable and not connection.closed and not self._closed:
            self._idle.append(connection)
        else:
            if not connection.closed:
                connection.fail(HttpClientError("not reusable"))
            self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        waiting = self._waiting
        while waiting:
            freed = waiting.popleft()
            if not freed.done():
                freed.set_result(None)
                return

    async def aclose(self) -> None:
        """Close every idle connection; requests still in flight fail."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            if connection.transport is not None:
                connection.transport.close()
        for freed in self._waiting:
            if not freed.done():
                freed.set_exception(HttpClientError("the client is closed"))
        self._waiting.clear()


def _timeout_wait(freed: asyncio.Future[None]) -> None:
    if not freed.done():
        freed.set_exception(TimeoutError())


def _decoded(body: bytes, encoding: bytes) -> bytes:
    """``body`` with its ``gzip``/``deflate`` content-encoding undone (as is when it cannot be)."""
    wbits = _DECODERS.get(encoding)
    if wbits is None or not body:
        return body
    try:
        return zlib.decompress(body, wbits)
    except zlib.error:
        return body
