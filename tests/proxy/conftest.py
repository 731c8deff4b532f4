"""Fixtures: one proxy server child process per session, loopback upstreams.

The server runs as ``python -m resilience.proxy`` (the real entry point) with
a fixed seed; every test starts from an empty server (all proxies deleted).
Upstreams (echo, one-shot greeting, sink) run in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from resilience.proxy import ProxyServerProcess, ToxiproxyClient


class UpstreamServers:
    """Loopback servers on one background event loop: echo and silent."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.echo_port = self._run(self._start(self._echo))
        self.silent_port = self._run(self._start(self._silent))
        self.closer_port = self._run(self._start(self._greet_and_close))
        self.servers: list[asyncio.AbstractServer] = []

    def _run(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _start(self, handler) -> int:  # type: ignore[no-untyped-def]
        server = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=512)
        self.__dict__.setdefault("_servers", []).append(server)
        return int(server.sockets[0].getsockname()[1])

    @staticmethod
    async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    @staticmethod
    async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(1 << 16):
                pass
        except OSError:
            pass
        finally:
            writer.close()

    @staticmethod
    async def _greet_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    def close(self) -> None:
        async def _close() -> None:
            for server in self.__dict__.get("_servers", []):
                server.close()

        self._run(_close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="session")
def upstreams() -> Iterator[UpstreamServers]:
    servers = UpstreamServers()
    yield servers
    servers.close()


@pytest.fixture(scope="session")
def server() -> Iterator[ProxyServerProcess]:
    with ProxyServerProcess(seed=42) as proc:
        yield proc


@pytest.fixture
def client(server: ProxyServerProcess) -> Iterator[ToxiproxyClient]:
    with ToxiproxyClient(server.api_url) as api:
        for name in api.proxies():
            api.delete_proxy(name)
        yield api
        for name in api.proxies():
            api.delete_proxy(name)


def connect(port: int, timeout_s: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        if not chunk:
            raise EOFError(f"closed after {len(got)}/{n} bytes")
        got += chunk
    return bytes(got)


def recv_until_eof(sock: socket.socket) -> bytes:
    got = bytearray()
    while chunk := sock.recv(1 << 16):
        got += chunk
    return bytes(got)
