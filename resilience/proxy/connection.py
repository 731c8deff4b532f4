"""One proxied TCP connection: two sockets (endpoints) and two links.

Accept path (as the real server): the client is accepted, its reading is
paused, the upstream is dialled at once; a failed dial closes the client (it
sees connect-then-EOF). Once both sockets are up, ``upstream`` link (client →
server) and ``downstream`` link (server → client) are built from the proxy's
current toxics.

Teardown: when end-of-stream reaches a link's sink, that link's destination is
closed and the other link gets end-of-stream too, as in Toxiproxy (no TCP
half-close is forwarded). When both links are finished the connection is
removed from its proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from typing import TYPE_CHECKING, Protocol, cast

from .link import Direction, Link

if TYPE_CHECKING:
    from .toxic_collection import ToxicCollection

__all__ = ["Connection", "ConnectionOwner", "Endpoint"]

_LINGER_RST = struct.pack("ii", 1, 0)
EARLY_LIMIT_BYTES = 1 << 20  # client bytes buffered while the upstream dial is pending


class ConnectionOwner(Protocol):
    """What a connection needs from its proxy."""

    name: str
    toxics: ToxicCollection
    seed: int

    def connection_done(self, conn: Connection) -> None: ...


class Endpoint(asyncio.Protocol):
    """One socket. ``out_link`` carries what it reads; ``in_link`` writes to it."""

    __slots__ = (
        "conn",
        "early",
        "early_bytes",
        "early_eof",
        "in_link",
        "is_client",
        "out_link",
        "transport",
    )

    def __init__(self, conn: Connection, is_client: bool) -> None:
        self.conn = conn
        self.is_client = is_client
        self.transport: asyncio.Transport | None = None
        self.out_link: Link | None = None
        self.in_link: Link | None = None
        self.early: list[bytes] = []  # read before the upstream is connected,
        self.early_bytes = 0  # replayed once the links exist
        self.early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        if self.is_client:
            self.conn.client_accepted()
        else:
            self.conn.upstream_connected()

    def data_received(self, data: bytes) -> None:
        link = self.out_link
        if link is None:
            self.early.append(data)
            self.early_bytes += len(data)
            if self.early_bytes > EARLY_LIMIT_BYTES and self.transport is not None:
                self.transport.pause_reading()
            return
        if link.head is None and not link.watchers:  # fast path: no toxic on this direction
            n = len(data)
            link.received += n
            link.sent += n
            link.dest.transport.write(data)  # type: ignore[union-attr]
        else:
            link.feed(data)

    def eof_received(self) -> bool:
        if self.out_link is not None:
            self.out_link.feed_eof()
        else:
            self.early_eof = True
        return True  # keep the socket open: the other direction may still deliver

    def replay_early(self) -> None:
        """Feed what arrived before the links existed."""
        if not self.early and not self.early_eof:
            return
        early, self.early = self.early, []
        paused = self.early_bytes > EARLY_LIMIT_BYTES
        for data in early:
            self.data_received(data)
        link = self.out_link
        if link is None:
            return
        if self.early_eof:
            link.feed_eof()
        elif paused and not link.reading_paused and self.transport is not None:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.in_link is not None:
            self.in_link.dest_lost()
        if self.out_link is not None:
            self.out_link.feed_eof()
        self.conn.endpoint_lost(self)

    def pause_writing(self) -> None:
        if self.in_link is not None:
            self.in_link.set_dest_paused(True)

    def resume_writing(self) -> None:
        if self.in_link is not None:
            self.in_link.set_dest_paused(False)


class Connection:
    """A client socket, its upstream socket and the two links between them."""

    __slots__ = (
        "client",
        "closed",
        "dial_task",
        "downstream",
        "loop",
        "owner",
        "serial",
        "upstream",
        "upstream_end",
        "upstream_side",
    )

    def __init__(
        self,
        owner: ConnectionOwner,
        serial: int,
        upstream_addr: tuple[str, int] | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.owner = owner
        self.serial = serial
        self.loop = loop
        self.upstream_end = upstream_addr
        self.client = Endpoint(self, is_client=True)
        self.upstream_side = Endpoint(self, is_client=False)
        self.upstream: Link | None = None
        self.downstream: Link | None = None
        self.dial_task: asyncio.Task[object] | None = None
        self.closed = False

    # -- set-up --------------------------------------------------------------
    def client_accepted(self) -> None:
        if self.upstream_end is None:
            self.close()
            return
        host, port = self.upstream_end
        dial = self.loop.create_connection(self._upstream_protocol, host, port)
        self.dial_task = self.loop.create_task(dial)
        self.dial_task.add_done_callback(self._dialled)

    def _upstream_protocol(self) -> Endpoint:
        return self.upstream_side

    def _dialled(self, task: asyncio.Task[object]) -> None:
        if task.cancelled() or task.exception() is not None:
            self.close()  # any dial failure: the client sees connect-then-EOF

    def upstream_connected(self) -> None:
        client, server = self.client, self.upstream_side
        if self.closed or client.transport is None:
            self.close()
            return
        up = Link(self, Direction.UPSTREAM, client, server)
        down = Link(self, Direction.DOWNSTREAM, server, client)
        self.upstream, self.downstream = up, down
        client.out_link = server.in_link = up
        server.out_link = client.in_link = down
        self.owner.toxics.attach(up)
        self.owner.toxics.attach(down)
        server.replay_early()
        client.replay_early()

    # -- what links need -----------------------------------------------------
    def rng_for(self, direction: Direction) -> random.Random:
        """The link's own RNG: a pure function of seed, proxy, connection, direction."""
        return random.Random(f"{self.owner.seed}/{self.owner.name}/{self.serial}/{direction.value}")

    def opposite(self, link: Link) -> Link | None:
        """The other link of this connection."""
        return self.downstream if link is self.upstream else self.upstream

    def link_finished(self, link: Link) -> None:
        """End-of-stream reached link's sink: close its destination, end the other way."""
        transport = link.dest.transport
        if transport is not None:
            transport.close()
        other = self.downstream if link is self.upstream else self.upstream
        if other is not None:
            other.feed_eof()
            if other.sink_done:
                self._done()

    def endpoint_lost(self, endpoint: Endpoint) -> None:
        if self.upstream is None:  # still dialling
            self.close()
        elif self.client.transport is None and self.upstream_side.transport is None:
            self._done()

    # -- teardown ------------------------------------------------------------
    def close(self) -> None:
        """Close both sockets normally (FIN after pending writes)."""
        if self.dial_task is not None and not self.dial_task.done():
            self.dial_task.cancel()
        for endpoint in (self.client, self.upstream_side):
            if endpoint.transport is not None:
                endpoint.transport.close()
        self._done()

    def reset(self) -> None:
        """Close both sockets with a TCP RST (SO_LINGER 0)."""
        for endpoint in (self.client, self.upstream_side):
            transport = endpoint.transport
            if transport is None:
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            transport.abort()
        self._done()

    def _done(self) -> None:
        if self.closed:
            return
        self.closed = True
        for link in (self.upstream, self.downstream):
            if link is not None:
                link.stop()
                self.owner.toxics.detach(link)
        self.owner.connection_done(self)
