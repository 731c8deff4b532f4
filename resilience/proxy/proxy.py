"""One proxy: a listener, its upstream address, its toxics and live connections.

``listen`` is the address as given until the proxy first starts, then the
address actually bound (``127.0.0.1:0`` becomes ``127.0.0.1:41859``), so a
restart reuses the same port. Stopping closes the listener (new clients get
ECONNREFUSED) and every live connection (both peers read EOF). The toxics
survive stop/start.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from typing import Any

from .addr import AddressError, format_addr, resolve_tcp, split_host_port
from .connection import Connection
from .errors import ApiError
from .toxic_collection import ToxicCollection

__all__ = ["Proxy", "ProxyStats"]

_LISTEN_BACKLOG = 1024
_log = logging.getLogger("resilience.proxy.toxics")


class ProxyStats:
    """Bytes moved by connections that have finished (live ones are added on read)."""

    __slots__ = ("received", "sent", "unparsed")

    def __init__(self) -> None:
        self.received = {"upstream": 0, "downstream": 0}
        self.sent = {"upstream": 0, "downstream": 0}
        self.unparsed: dict[str, int] = {}  # connections a protocol toxic passed through


def _bind_error(host: str, port: int, exc: OSError) -> ApiError:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    reason = reason[:1].lower() + reason[1:]
    return ApiError(f"listen tcp {format_addr(host, port)}: bind: {reason}", 500)


def _upstream_addr(upstream: str) -> tuple[str, int] | None:
    try:
        host, port = split_host_port(upstream)
        return host, int(port)
    except (AddressError, ValueError):
        return None


class Proxy:
    """A named TCP proxy from ``listen`` to ``upstream``."""

    def __init__(self, name: str, listen: str, upstream: str, *, seed: int) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.seed = seed
        self.toxics = ToxicCollection()
        self.connections: set[Connection] = set()
        self.stats = ProxyStats()
        self._server: asyncio.AbstractServer | None = None
        self._serial = 0
        self._upstream_addr: tuple[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [toxic.to_json() for toxic in self.toxics.all()],
        }

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        """Bind ``listen`` and accept; no-op when running. Raises ApiError 500."""
        if self._server is not None:
            return
        try:
            host, port = await resolve_tcp(self.listen)
        except AddressError as exc:
            raise ApiError(f"listen tcp: {exc}", 500) from None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(_LISTEN_BACKLOG)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                raise _bind_error(host, port, exc) from None
            raise ApiError(f"listen tcp {format_addr(host, port)}: {exc}", 500) from None
        loop = asyncio.get_running_loop()
        self._upstream_addr = _upstream_addr(self.upstream)
        self._server = await loop.create_server(self._accept, sock=sock)
        bound = sock.getsockname()
        self.listen = format_addr(str(bound[0]), int(bound[1]))
        self.enabled = True

    def _accept(self) -> asyncio.Protocol:
        self._serial += 1
        conn = Connection(self, self._serial, self._upstream_addr, asyncio.get_running_loop())
        self.connections.add(conn)
        return conn.client

    def stop(self) -> None:
        """Close the listener and every live connection; keeps the toxics."""
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.close()

    def connection_done(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for link in (conn.upstream, conn.downstream):
            if link is not None:
                key = link.direction.value
                self.stats.received[key] += link.received
                self.stats.sent[key] += link.sent

    def report_unparsed(self, toxic: str, reason: str) -> None:
        """Count and log a connection a protocol toxic (http_*) could not parse."""
        self.stats.unparsed[toxic] = self.stats.unparsed.get(toxic, 0) + 1
        _log.warning(
            "toxic could not parse the stream; connection passed through unchanged",
            extra={"proxy": self.name, "toxic": toxic, "reason": reason},
        )

    def byte_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(received, sent) bytes per direction, finished plus live connections."""
        received = dict(self.stats.received)
        sent = dict(self.stats.sent)
        for conn in self.connections:
            for link in (conn.upstream, conn.downstream):
                if link is not None:
                    received[link.direction.value] += link.received
                    sent[link.direction.value] += link.sent
        return received, sent
