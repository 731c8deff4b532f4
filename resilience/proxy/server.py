"""The whole server: proxies + API listener + config file, on one event loop.

``ToxiproxyServer`` can be embedded (``await server.start()`` in a running
loop, ``await server.stop()``); :func:`run` is what ``python -m
resilience.proxy`` calls: uvloop when installed, SIGINT/SIGTERM stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from pathlib import Path

from .addr import format_addr
from .api import TOXIPROXY_VERSION, Api
from .collection import PopulateError, ProxyCollection
from .errors import ApiError
from .gojson import GoDecodeError, decode_first
from .http import make_factory
from .metrics import metrics_renderer

__all__ = ["ToxiproxyServer", "new_event_loop", "run"]

_log = logging.getLogger("resilience.proxy.server")

PARENT_POLL_S = 0.5


class ToxiproxyServer:
    """A Toxiproxy-compatible server: ``start()`` binds the API and loads the config."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8474,
        config: str | None = None,
        seed: int | None = None,
        proxy_metrics: bool = False,
        runtime_metrics: bool = False,
        version: str = TOXIPROXY_VERSION,
    ) -> None:
        self.host = host
        self.port = port
        self.config = config
        self.collection = ProxyCollection(seed=seed)
        metrics = metrics_renderer(
            self.collection, proxy_metrics=proxy_metrics, runtime_metrics=runtime_metrics
        )
        self.api = Api(self.collection, metrics=metrics, version=version)
        self._server: asyncio.AbstractServer | None = None

    @property
    def api_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Load the config file (errors are logged only), then listen for the API."""
        if self.config:
            await self.load_config(self.config)
        loop = asyncio.get_running_loop()
        api = make_factory(self.api)
        host = "127.0.0.1" if self.host == "localhost" else self.host
        self._server = await loop.create_server(api, host, self.port, backlog=1024)
        for listener in self._server.sockets:
            # wake up once per request (accept and read together), not twice
            with contextlib.suppress(OSError, AttributeError):
                listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
        sock = self._server.sockets[0]
        bound = sock.getsockname()
        self.host, self.port = str(bound[0]), int(bound[1])
        _log.info(
            "Starting Toxiproxy HTTP server",
            extra={"version": TOXIPROXY_VERSION, "addr": format_addr(self.host, self.port)},
        )

    async def load_config(self, path: str) -> None:
        """Populate from a JSON file, as the real server: failures are logged, not fatal."""
        try:
            body = decode_first(_read_file(path))
        except (OSError, GoDecodeError) as exc:
            _log.error("Error reading config file", extra={"config": path, "err": str(exc)})
            return
        try:
            proxies = await self.collection.populate_json(body)
        except PopulateError as exc:
            _log.error(
                "Failed to populate proxies from file",
                extra={"config": path, "err": exc.message},
            )
            return
        for proxy in proxies or []:
            _log.info("Populated proxy", extra={"proxy": proxy.name, "listen": proxy.listen})

    async def stop(self) -> None:
        """Stop the API listener and every proxy (closing their connections)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.collection.close_all()
        await asyncio.sleep(0)


def _read_file(path: str) -> bytes:
    return Path(path).read_bytes()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _watch_parent(loop: asyncio.AbstractEventLoop, parent_pid: int, stop: asyncio.Event) -> None:
    """Stop when the process that started us is gone (we were re-parented)."""
    if os.getppid() != parent_pid:
        _log.info("Parent process exited", extra={"parent_pid": parent_pid})
        stop.set()
    else:
        loop.call_later(PARENT_POLL_S, _watch_parent, loop, parent_pid, stop)


async def _serve(server: ToxiproxyServer, parent_pid: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if parent_pid is not None:
        _watch_parent(loop, parent_pid, stop)
    await server.start()
    try:
        await stop.wait()
    finally:
        _log.info("Shutting down")
        await server.stop()


def run(server: ToxiproxyServer, *, parent_pid: int | None = None) -> int:
    """Run server until SIGINT/SIGTERM (or until parent_pid exits).

    Returns 0 on a clean stop, 1 if the API cannot bind.
    """
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        try:
            runner.run(_serve(server, parent_pid))
        except OSError as exc:
            _log.error("Failed to start API server", extra={"err": str(exc)})
            return 1
        except ApiError as exc:
            _log.error("Failed to start", extra={"err": exc.message})
            return 1
    return 0
