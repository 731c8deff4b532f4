"""A modelled Toxiproxy proxy: connections, toxics and per-connection toxicity.

:class:`ModelProxy` keeps Toxiproxy's semantics (TOXIPROXY.md §5–§6) where
they decide what a client sees:

* a disabled proxy refuses new connections and closes live ones;
* each toxic is rolled **per connection and direction** (``r < toxicity``)
  when its stage starts on that link: at connect, when it is added to live
  connections, when it is updated, and — for the toxic before it in the same
  direction — when a toxic is appended after it or the one after it removed;
* removing a ``timeout`` toxic closes every live connection;
* ``reset_peer`` closes with an RST only on connections made after it existed.

An exchange (one request, one reply) takes the upstream chain's effect, the
server's service time, then the downstream chain's effect; a stalled chunk
waits until the connection closes, or forever (the caller's timeout cancels
it). The exception a client sees comes from the proxy's :class:`ErrorSet`, so
each dependency model raises what its real driver raises.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from resilience.sim.protocol_errors import PROTOCOL_TYPES, ProtocolToxic
from resilience.sim.toxics import Effect, LinkState, ModelToxic, apply_chain

__all__ = ["ErrorSet", "ModelConnection", "ModelProxy"]

_STREAMS = ("upstream", "downstream")
_NO_EFFECT = Effect()


@dataclass(frozen=True, slots=True)
class ErrorSet:
    """Factories of the exceptions a client library raises for each failure."""

    refused: Callable[[], BaseException]
    """Connecting to a disabled proxy (ECONNREFUSED)."""
    closed: Callable[[], BaseException]
    """The connection was closed (EOF) during or before an operation."""
    reset: Callable[[], BaseException]
    """The connection was reset (ECONNRESET)."""


class ModelConnection:
    """One client connection through a :class:`ModelProxy`."""

    __slots__ = ("closed", "id", "links", "prepared", "rst", "waiters")

    def __init__(self, conn_id: int, *, rst: bool) -> None:
        self.id = conn_id
        self.rst = rst
        self.closed = False
        self.links = {"upstream": LinkState(), "downstream": LinkState()}
        self.prepared: set[str] = set()
        """Statements the client has prepared on this connection (asyncpg's cache)."""
        self.waiters: dict[asyncio.Future[None], None] = {}
        """Operations waiting on this connection, in arrival order (a dict: deterministic)."""


class ModelProxy:
    """A proxy named ``name`` in front of one modelled dependency."""

    def __init__(
        self,
        name: str,
        *,
        errors: ErrorSet,
        rng: random.Random,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.name = name
        self.loop = loop
        """The loop the proxy lives on (``None``: the running loop, looked up per call)."""
        self.errors = errors
        self.rng = rng
        self.enabled = True
        self.toxics: dict[str, ModelToxic] = {}
        self._chains: dict[str, list[ModelToxic]] = {"upstream": [], "downstream": []}
        self.connections: dict[int, ModelConnection] = {}
        self._ids = itertools.count(1)
        self.connects = 0
        self.refusals = 0
        self.protocol_toxics: dict[str, ProtocolToxic] = {}
        """postgres_error / redis_error: consulted by the modelled clients (protocol_error)."""
        self.paused: asyncio.Future[None] | None = None
        """Set while the server behind is paused (SIGSTOP): every exchange waits on it."""
        self.restart_hooks: list[Callable[[bool], None]] = []
        """Called with keep_data when the server behind restarts (the Redis model forgets)."""

    # -- control (the Toxiproxy API, as calls) ---------------------------------

    def add_toxic(
        self,
        name: str,
        type: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, int] | None = None,
    ) -> ModelToxic:
        """Append a toxic to its direction's chain, on live connections too."""
        from resilience.sim.toxics import TOXIC_MODELS

        if type in PROTOCOL_TYPES:
            if name in self.toxics or name in self.protocol_toxics:
                raise ValueError(f"toxic {name!r} already exists on proxy {self.name!r}")
            self.protocol_toxics[name] = ProtocolToxic.new(name, type, attributes)
            return ModelToxic(name, type, stream.lower(), float(toxicity), dict(attributes or {}))
        stream = stream.lower()
        if stream not in _STREAMS:
            raise ValueError("stream was invalid, can be either upstream or downstream")
        if type not in TOXIC_MODELS:
            raise ValueError(f"invalid toxic type {type!r}")
        if name in self.toxics:
            raise ValueError(f"toxic {name!r} already exists on proxy {self.name!r}")
        toxic = ModelToxic(name, type, stream, float(toxicity), dict(attributes or {}))
        chain = self._chains[stream]
        before = chain[-1] if chain else None
        chain.append(toxic)
        self.toxics[name] = toxic
        for conn in self.connections.values():
            self._roll(conn, toxic)
            if before is not None:
                self._roll(conn, before)
        return toxic

    def update_toxic(
        self,
        name: str,
        *,
        attributes: Mapping[str, int] | None = None,
        toxicity: float | None = None,
    ) -> ModelToxic:
        """Merge attributes / replace toxicity; the toxic restarts (re-rolls) everywhere."""
        protocol = self.protocol_toxics.get(name)
        if protocol is not None:
            protocol.attributes.update(attributes or {})
            return ModelToxic(name, protocol.type, "upstream", 1.0, dict(protocol.attributes))
        toxic = self._get(name)
        if attributes:
            toxic.attributes.update(attributes)
        if toxicity is not None:
            toxic.toxicity = float(toxicity)
        for conn in self.connections.values():
            self._roll(conn, toxic)
        return toxic

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic; removing a ``timeout`` closes every live connection."""
        if self.protocol_toxics.pop(name, None) is not None:
            return
        toxic = self._get(name)
        chain = self._chains[toxic.stream]
        index = chain.index(toxic)
        chain.pop(index)
        del self.toxics[name]
        before = chain[index - 1] if index > 0 else None
        for conn in list(self.connections.values()):
            link = conn.links[toxic.stream]
            link.active.pop(name, None)
            link.limit_sent.pop(name, None)
            if before is not None:
                self._roll(conn, before)
        if toxic.type == "timeout":
            self.close_all()

    def disable(self) -> None:
        """Stop listening: new connects are refused, live connections closed."""
        self.enabled = False
        self.close_all()

    def enable(self) -> None:
        self.enabled = True

    def reset(self) -> None:
        """``POST /reset``: enable, and remove every toxic."""
        self.enable()
        for name in [*self.toxics, *self.protocol_toxics]:
            self.remove_toxic(name)

    def protocol_error(self, text: str) -> ProtocolToxic | None:
        """The protocol toxic that answers this query (SQL) or command (name), if any hits."""
        for toxic in self.protocol_toxics.values():
            if toxic.hits(text, self.rng):
                return toxic
        return None

    # -- the server behind (process faults) ------------------------------------------

    def pause_server(self) -> None:
        """SIGSTOP: connects and exchanges wait (until :meth:`resume_server`)."""
        if self.paused is None:
            loop = self.loop or asyncio.get_running_loop()
            self.paused = loop.create_future()

    def resume_server(self) -> None:
        paused, self.paused = self.paused, None
        if paused is not None and not paused.done():
            paused.set_result(None)

    def kill_server(self) -> None:
        """The server is gone: connections close, connects are refused."""
        self.resume_server()
        self.disable()

    def start_server(self, *, keep_data: bool = True) -> None:
        """The server answers again (its data kept, or lost: the restart hooks say)."""
        self.enable()
        for hook in self.restart_hooks:
            hook(keep_data)

    def close_all(self) -> None:
        for conn in list(self.connections.values()):
            self.close(conn)

    # -- data path ---------------------------------------------------------------

    def connect(self) -> ModelConnection:
        """A new connection, toxics rolled; raises the *refused* error when disabled."""
        if not self.enabled:
            self.refusals += 1
            raise self.errors.refused()
        self.connects += 1
        rst = any(t.type == "reset_peer" for t in self.toxics.values())
        conn = ModelConnection(next(self._ids), rst=rst)
        for toxic in self.toxics.values():
            self._roll(conn, toxic)
        self.connections[conn.id] = conn
        return conn

    def close(self, conn: ModelConnection, *, reset: bool = False) -> None:
        """Close ``conn``; operations waiting on it fail (EOF, or RST)."""
        if conn.closed:
            return
        conn.closed = True
        self.connections.pop(conn.id, None)
        for waiter in list(conn.waiters):
            if not waiter.done():
                waiter.set_exception(self.errors.reset() if reset else self.errors.closed())

    async def exchange(
        self, conn: ModelConnection, request_bytes: int, reply_bytes: int, service_s: float
    ) -> None:
        """Send a request, let the server work ``service_s``, read the reply.

        Raises the proxy's *closed* / *reset* error when the connection ends
        first; a stalled chunk with no close waits until cancelled.
        """
        if conn.closed:
            raise self.errors.closed()
        if self.paused is not None:
            await asyncio.shield(self.paused)  # a frozen server: the request waits
            if conn.closed:
                raise self.errors.closed()
        seconds: float | None = service_s
        closing: Effect | None = None
        if self.toxics:
            seconds, closing = self._through_toxics(conn, request_bytes, reply_bytes, service_s)
        if seconds is not None and seconds <= 0 and closing is None:
            return
        # Wait ``seconds`` (forever when ``None``), inline: this runs once per command.
        loop = self.loop or asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = (
            None
            if seconds is None
            else loop.call_at(loop.time() + max(0.0, seconds), _wake, waiter)
        )
        waiters = conn.waiters
        waiters[waiter] = None
        try:
            await waiter
        except BaseException:
            if timer is not None:
                timer.cancel()  # otherwise it has fired: that is what woke us
            raise
        finally:
            del waiters[waiter]
        if closing is not None:
            self.close(conn, reset=closing.reset)
            raise self.errors.reset() if closing.reset else self.errors.closed()

    def _through_toxics(
        self, conn: ModelConnection, request_bytes: int, reply_bytes: int, service_s: float
    ) -> tuple[float | None, Effect | None]:
        """How long the exchange takes (``None``: forever), and the close it ends with."""
        chains = self._chains
        up = (
            apply_chain(
                chains["upstream"], conn.links["upstream"], request_bytes, self.rng, rst=conn.rst
            )
            if request_bytes > 0
            else _NO_EFFECT
        )
        if up.stalled:
            return up.close_after_s, up
        down = (
            apply_chain(
                chains["downstream"], conn.links["downstream"], reply_bytes, self.rng, rst=conn.rst
            )
            if reply_bytes > 0
            else _NO_EFFECT
        )
        start = up.delay_s + service_s
        if down.stalled:
            return (None if down.close_after_s is None else start + down.close_after_s), down
        return start + down.delay_s, None

    # -- internals -----------------------------------------------------------------

    def _get(self, name: str) -> ModelToxic:
        try:
            return self.toxics[name]
        except KeyError:
            raise KeyError(f"toxic {name!r} not found on proxy {self.name!r}") from None

    def _roll(self, conn: ModelConnection, toxic: ModelToxic) -> None:
        conn.links[toxic.stream].active[toxic.name] = self.rng.random() < toxic.toxicity


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
