"""The HTTP target's client against real loopback servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from resilience.targets.http.client import HttpClient, HttpClientError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A raw TCP server on 127.0.0.1 running ``handler`` per connection; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()


def answer(body: bytes, *, status: str = "200 OK", headers: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


async def test_keep_alive_reuses_one_connection_and_sends_a_plain_request(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(answer(b"ok", headers="X-Path: cache\r\n"))

    server = await serve(handler)
    client = HttpClient(server.url + "/base/")
    for _ in range(5):
        got = await client.request("GET", "/items/a?x=1", timeout_s=5)
        assert (got.status, got.body, got.headers.get("x-path")) == (200, b"ok", "cache")
    await client.aclose()
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /base/items/a?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_a_body_is_sent_with_its_length_and_headers(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"{}", status="201 Created"))

    server = await serve(handler)
    client = HttpClient(server.url)
    got = await client.request(
        "POST", "/b", headers={"Content-Type": "application/json"}, body=b'{"a":1}', timeout_s=5
    )
    await client.aclose()
    assert got.status == 201
    sent = server.requests[0]
    assert b"Content-Type: application/json\r\n" in sent
    assert b"Content-Length: 7\r\n" in sent
    assert sent.endswith(b'\r\n\r\n{"a":1}')


async def test_chunked_close_delimited_and_gzip_bodies_are_read_whole(serve) -> None:
    packed = gzip.compress(b"unpacked")
    answers = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        answer(packed, headers="Content-Encoding: gzip\r\n"),
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            await server.read_request(reader)
            writer.write(answers.pop(0))
            await writer.drain()
        writer.close()

    server = await serve(handler)
    client = HttpClient(server.url)
    bodies = [(await client.request("GET", "/", timeout_s=5)).body for _ in range(3)]
    await client.aclose()
    assert bodies == [b"abcde", b"unpacked", b"until the end"]


async def test_an_interim_answer_is_not_taken_for_the_answer(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
            writer.write(answer(b"final", headers="X-Final: 1\r\n"))

    server = await serve(handler)
    client = HttpClient(server.url)
    got = [await client.request("GET", "/", timeout_s=5) for _ in range(2)]
    await client.aclose()
    assert [(a.status, a.body, dict(a.headers)) for a in got] == [
        (200, b"final", {"content-length": "5", "x-final": "1"})
    ] * 2
    assert server.connections == 1


async def test_a_head_answer_announcing_a_body_does_not_wait_for_it(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")

    server = await serve(handler)
    client = HttpClient(server.url)
    first = await client.request("HEAD", "/", timeout_s=5)
    second = await client.request("HEAD", "/", timeout_s=5)
    await client.aclose()
    assert (first.status, first.body, second.status) == (200, b"", 200)


async def test_a_keep_alive_connection_closed_by_the_server_is_retried_for_get_only(
    serve,
) -> None:
    """The race of a server closing an idle keep-alive connection as a request
    goes out on it: here each connection answers one request and closes on the next."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"ok"))  # keep-alive announced ...
        await writer.drain()
        await server.read_request(reader)  # ... then closed instead of answering

    server = await serve(handler)
    client = HttpClient(server.url)
    assert (await client.request("GET", "/", timeout_s=5)).status == 200
    assert (await client.request("GET", "/", timeout_s=5)).status == 200  # retried
    assert server.connections == 2
    # a POST is never sent twice: the stale connection's failure is the answer
    with pytest.raises(HttpClientError, match="closed the connection before answering"):
        await client.request("POST", "/", body=b"x", timeout_s=5)
    await client.aclose()
    assert [r.split(b" ", 1)[0] for r in server.requests] == [b"GET", b"GET", b"GET", b"POST"]


async def test_timeout_refused_and_garbage_are_errors_not_hangs(serve) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await asyncio.sleep(30)

    slow = await serve(silent)
    client = HttpClient(slow.url)
    with pytest.raises(TimeoutError):
        await client.request("GET", "/", timeout_s=0.2)
    await client.aclose()

    server = await serve(garbage)
    client = HttpClient(server.url)
    with pytest.raises(HttpClientError, match="malformed answer"):
        await client.request("GET", "/", timeout_s=5)
    await client.aclose()

    port = server.url.rsplit(":", 1)[1]
    assert server.server is not None
    server.server.close()
    await server.server.wait_closed()
    client = HttpClient(f"http://127.0.0.1:{port}")
    with pytest.raises(HttpClientError, match=r"cannot connect to 127\.0\.0\.1"):
        await client.request("GET", "/", timeout_s=5)
    await client.aclose()


async def test_the_pool_never_opens_more_than_its_limit(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            await asyncio.sleep(0.01)
            writer.write(answer(b"ok"))

    server = await serve(handler)
    client = HttpClient(server.url, limit=4)
    got = await asyncio.gather(*(client.request("GET", "/", timeout_s=10) for _ in range(40)))
    await client.aclose()
    assert [a.status for a in got] == [200] * 40
    assert server.most_open <= 4
    assert server.connections == 4


async def test_a_cancelled_request_leaves_the_pool_usable(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await server.read_request(reader)
            if b"/slow" in request:
                await asyncio.sleep(30)
            writer.write(answer(b"ok"))

    server = await serve(handler)
    client = HttpClient(server.url, limit=1)
    slow = asyncio.ensure_future(client.request("GET", "/slow", timeout_s=10))
    waiting = asyncio.ensure_future(client.request("GET", "/fast", timeout_s=10))
    await asyncio.sleep(0.1)
    slow.cancel()
    assert (await waiting).status == 200  # got the freed slot
    await client.aclose()


def test_a_header_with_a_line_break_is_refused_before_sending() -> None:
    client = HttpClient("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="line break"):
        asyncio.run(client.request("GET", "/", headers={"X-Key": "a\r\nInjected: 1"}))


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="not an http"):
        HttpClient("ftp://127.0.0.1/")
