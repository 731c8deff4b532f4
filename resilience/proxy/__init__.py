"""A Toxiproxy-compatible fault proxy: server, typed client, process helper.

Stands alone: imports nothing else from ``resilience``. The server lives in
:mod:`.server` (run it with ``python -m resilience.proxy``); clients use
:class:`ToxiproxyClient` / :class:`AsyncToxiproxyClient` (they work against the
real Toxiproxy too); tests and backends start a server with
:class:`ProxyServerProcess`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import (
        AsyncToxiproxyClient,
        ProxyInfo,
        ToxicInfo,
        ToxiproxyAPIError,
        ToxiproxyClient,
    )
    from .process import ProxyServerProcess
    from .server import ToxiproxyServer

__all__ = [
    "AsyncToxiproxyClient",
    "ProxyInfo",
    "ProxyServerProcess",
    "ToxicInfo",
    "ToxiproxyAPIError",
    "ToxiproxyClient",
    "ToxiproxyServer",
]

_WHERE = {
    "AsyncToxiproxyClient": "client",
    "ProxyInfo": "client",
    "ToxicInfo": "client",
    "ToxiproxyAPIError": "client",
    "ToxiproxyClient": "client",
    "ProxyServerProcess": "process",
    "ToxiproxyServer": "server",
}


def __getattr__(name: str) -> Any:
    """Import the public names lazily, so the server does not load httpx."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
