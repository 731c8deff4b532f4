"""All proxies of a server, and the operations of the proxies API.

Create, update, delete, populate and reset follow TOXIPROXY.md §4.1-§4.3 and
§4.6: name clashes before binding, the "differs" test on the *resolved* listen
address, connections closed on any restart, populate checking every entry
before applying them in order and stopping at the first failure.
Proxy-changing operations are serialised by one lock (binding awaits).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .addr import AddressError, format_addr, resolve_tcp
from .errors import (
    ApiError,
    ErrMissingName,
    ErrMissingUpstream,
    ErrProxyExists,
    ErrProxyNotFound,
    bad_request_body,
)
from .gojson import GoDecodeError, StructSpec, go_type_name
from .proxy import Proxy

__all__ = ["PopulateError", "ProxyCollection"]

_PROXY = StructSpec(
    "Proxy", {"name": "string", "listen": "string", "upstream": "string", "enabled": "bool"}
)
_POPULATE_ITEM = StructSpec(
    "", {"name": "string", "listen": "string", "upstream": "string", "enabled": "bool"}
)
_POPULATE_TYPE = '[]struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }'


class PopulateError(ApiError):
    """A populate failure; ``proxies`` are those handled before it (or None)."""

    def __init__(self, error: ApiError, proxies: list[Proxy] | None) -> None:
        super().__init__(error.message, error.status)
        self.proxies = proxies


def _decode_proxy_fields(body: Any, spec: StructSpec = _PROXY) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request_body(
            f"json: cannot unmarshal {go_type_name(body)} into Go value of type toxiproxy.Proxy"
        )
    try:
        return spec.decode(body)
    except GoDecodeError as exc:
        raise bad_request_body(str(exc)) from None


class ProxyCollection:
    """The proxies by name. ``seed`` feeds every proxy's random decisions."""

    def __init__(self, *, seed: int | None = None, default_listen: str = "127.0.0.1:0") -> None:
        self.seed = time.time_ns() if seed is None else seed
        self.default_listen = default_listen
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ErrProxyNotFound()
        return proxy

    def sorted(self) -> list[Proxy]:
        return [self.proxies[name] for name in sorted(self.proxies)]

    def _new(self, fields: dict[str, Any]) -> Proxy:
        listen = fields.get("listen") or self.default_listen
        return Proxy(fields["name"], listen, fields["upstream"], seed=self.seed)

    # -- create / update / delete -------------------------------------------
    async def create_json(self, body: Any) -> Proxy:
        fields = _decode_proxy_fields(body)
        if not fields.get("name"):
            raise ErrMissingName()
        if not fields.get("upstream"):
            raise ErrMissingUpstream()
        async with self.lock:
            if fields["name"] in self.proxies:
                raise ErrProxyExists()
            proxy = self._new(fields)
            if fields.get("enabled", True):
                await proxy.start()
            self.proxies[proxy.name] = proxy
            return proxy

    async def _differs(self, proxy: Proxy, listen: str, upstream: str) -> bool:
        try:
            host, port = await resolve_tcp(listen)
        except AddressError as exc:
            raise ApiError(str(exc), 500) from None
        return format_addr(host, port) != proxy.listen or upstream != proxy.upstream

    async def update_json(self, name: str, body: Any) -> Proxy:
        async with self.lock:
            proxy = self.get(name)
            fields = _decode_proxy_fields(body)
            listen = fields.get("listen", proxy.listen)
            upstream = fields.get("upstream", proxy.upstream)
            enabled = fields.get("enabled", proxy.enabled)
            if await self._differs(proxy, listen, upstream):
                proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
                if enabled:
                    await proxy.start()
            elif enabled and not proxy.enabled:
                await proxy.start()
            elif not enabled and proxy.enabled:
                proxy.stop()
            return proxy

    async def delete(self, name: str) -> None:
        async with self.lock:
            proxy = self.get(name)
            proxy.stop()
            del self.proxies[name]

    # -- populate / reset ----------------------------------------------------
    async def populate_json(self, body: Any) -> list[Proxy] | None:
        """Apply a populate body; raises :class:`PopulateError`."""
        if not isinstance(body, list):
            raise PopulateError(
                bad_request_body(
                    f"json: cannot unmarshal {go_type_name(body)} into Go value of type "
                    + _POPULATE_TYPE
                ),
                None,
            )
        entries: list[dict[str, Any]] = []
        for number, item in enumerate(body, start=1):
            try:
                fields = _decode_proxy_fields(item, _POPULATE_ITEM)
            except ApiError as exc:
                raise PopulateError(exc, None) from None
            if not fields.get("name"):
                raise PopulateError(ErrMissingName(f" at proxy {number}"), None)
            if not fields.get("upstream"):
                raise PopulateError(ErrMissingUpstream(f" at proxy {number}"), None)
            entries.append(fields)
        if not entries:
            return None
        done: list[Proxy] = []
        async with self.lock:
            for fields in entries:
                try:
                    done.append(await self._populate_one(fields))
                except ApiError as exc:
                    raise PopulateError(exc, done or None) from None
        return done

    async def _populate_one(self, fields: dict[str, Any]) -> Proxy:
        existing = self.proxies.get(fields["name"])
        listen = fields.get("listen") or self.default_listen
        if existing is not None:
            try:
                same = not await self._differs(existing, listen, fields["upstream"])
            except ApiError:
                same = False
            if same:
                return existing
            existing.stop()
        proxy = self._new(fields)
        if fields.get("enabled", True):
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def reset(self) -> None:
        """Start every disabled proxy, then remove all toxics (stops at a bind error)."""
        async with self.lock:
            for proxy in self.sorted():
                await proxy.start()
                proxy.toxics.reset()

    def close_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
