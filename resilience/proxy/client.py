"""Typed clients for the Toxiproxy HTTP API (ours or the real server).

:class:`ToxiproxyClient` (sync) and :class:`AsyncToxiproxyClient` share one
request table, so both have the same methods and errors. Every non-2xx answer
raises :class:`ToxiproxyAPIError` with the server's status and ``error``
message; a server that cannot be reached raises it with status 0.
Durations in our own helpers are seconds; toxic attributes stay in
Toxiproxy's units (ms, KB/s, slicer delay in µs).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "AsyncToxiproxyClient",
    "ProxyInfo",
    "ToxicInfo",
    "ToxiproxyAPIError",
    "ToxiproxyClient",
]

DEFAULT_API_URL = "http://127.0.0.1:8474"
_HEADERS = {"User-Agent": "resilience-toxiproxy-client/1", "Content-Type": "application/json"}


class ToxiproxyAPIError(Exception):
    """The API refused a call: HTTP ``status`` (0: unreachable) and its ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Toxiproxy API error {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ToxicInfo:
    """A toxic as the API reports it (attributes in Toxiproxy's units)."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    """Extension (our server's ``http_*`` toxics): why a connection was passed
    through unchanged (not HTTP/1.1), else None."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToxicInfo:
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            stream=str(data.get("stream", "downstream")),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
            error=data.get("error"),
        )


@dataclass(frozen=True)
class ProxyInfo:
    """A proxy as the API reports it; ``listen`` is the bound address once started."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[ToxicInfo, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyInfo:
        return cls(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data.get("enabled", True)),
            toxics=tuple(ToxicInfo.from_json(t) for t in data.get("toxics") or ()),
        )

    @property
    def listen_host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    body: Any = None


def _check(response: httpx.Response) -> Any:
    """The decoded JSON body of a 2xx response (None when empty), else raise."""
    if response.status_code >= 400:
        message = response.text.strip()
        with contextlib.suppress(ValueError, AttributeError):
            message = str(json.loads(response.content)["error"])
        raise ToxiproxyAPIError(response.status_code, message)
    if not response.content:
        return None
    return response.json()


def _toxic_body(
    type: str,
    name: str | None,
    stream: str,
    toxicity: float,
    attributes: Mapping[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type,
        "stream": stream,
        "toxicity": toxicity,
        "attributes": dict(attributes or {}),
    }
    if name is not None:
        body["name"] = name
    return body


def _proxy_update_body(
    enabled: bool | None, listen: str | None, upstream: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if enabled is not None:
        body["enabled"] = enabled
    if listen is not None:
        body["listen"] = listen
    if upstream is not None:
        body["upstream"] = upstream
    return body


def _populate_body(proxies: Sequence[ProxyInfo | Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for proxy in proxies:
        if isinstance(proxy, ProxyInfo):
            out.append(
                {
                    "name": proxy.name,
                    "listen": proxy.listen,
                    "upstream": proxy.upstream,
                    "enabled": proxy.enabled,
                }
            )
        else:
            out.append(dict(proxy))
    return out


def _populated(data: Any) -> list[ProxyInfo]:
    return [ProxyInfo.from_json(p) for p in (data or {}).get("proxies") or []]


def _version(response: httpx.Response) -> str:
    _check(response)
    text = response.text.strip()
    with contextlib.suppress(ValueError, AttributeError, KeyError, TypeError):
        return str(json.loads(text)["version"])
    return text  # Toxiproxy < 2.7 answers plain text


def _toxic_types(response: httpx.Response) -> frozenset[str] | None:
    if response.status_code == 404:
        return None  # the real Toxiproxy: no such list, only its built-in toxics
    return frozenset(_check(response)["types"])


class ToxiproxyClient:
    """Synchronous client. Also a context manager that closes its HTTP connections."""

    def __init__(self, api_url: str = DEFAULT_API_URL, *, timeout_s: float = 5.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout_s, headers=_HEADERS)

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call) -> httpx.Response:
        try:
            return self._http.request(
                call.method,
                call.path,
                content=None if call.body is None else json.dumps(call.body),
            )
        except httpx.HTTPError as exc:
            raise ToxiproxyAPIError(0, f"{type(exc).__name__}: {exc}") from exc

    def _json(self, call: _Call) -> Any:
        return _check(self._send(call))

    def version(self) -> str:
        return _version(self._send(_Call("GET", "/version")))

    def toxic_types(self) -> frozenset[str] | None:
        """The toxic types of our server (``GET /toxic_types``); None on the real Toxiproxy."""
        return _toxic_types(self._send(_Call("GET", "/toxic_types")))

    def proxies(self) -> dict[str, ProxyInfo]:
        data = self._json(_Call("GET", "/proxies"))
        return {name: ProxyInfo.from_json(p) for name, p in data.items()}

    def get_proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(self._json(_Call("GET", f"/proxies/{name}")))

    def create_proxy(
        self, name: str, *, listen: str, upstream: str, enabled: bool = True
    ) -> ProxyInfo:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return ProxyInfo.from_json(self._json(_Call("POST", "/proxies", body)))

    def update_proxy(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        listen: str | None = None,
        upstream: str | None = None,
    ) -> ProxyInfo:
        body = _proxy_update_body(enabled, listen, upstream)
        return ProxyInfo.from_json(self._json(_Call("POST", f"/proxies/{name}", body)))

    def delete_proxy(self, name: str) -> None:
        self._json(_Call("DELETE", f"/proxies/{name}"))

    @contextlib.contextmanager
    def down(self, name: str) -> Iterator[ProxyInfo]:
        """Disable the proxy inside the block (Toxiproxy's ``down``), then re-enable it."""
        info = self.update_proxy(name, enabled=False)
        try:
            yield info
        finally:
            self.update_proxy(name, enabled=True)

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, Any] | None = None,
    ) -> ToxicInfo:
        body = _toxic_body(type, name, stream, toxicity, attributes)
        return ToxicInfo.from_json(self._json(_Call("POST", f"/proxies/{proxy}/toxics", body)))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        toxicity: float | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> ToxicInfo:
        body: dict[str, Any] = {}
        if toxicity is not None:
            body["toxicity"] = toxicity
        if attributes is not None:
            body["attributes"] = dict(attributes)
        path = f"/proxies/{proxy}/toxics/{name}"
        return ToxicInfo.from_json(self._json(_Call("POST", path, body)))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._json(_Call("DELETE", f"/proxies/{proxy}/toxics/{name}"))

    def toxics(self, proxy: str) -> list[ToxicInfo]:
        return [
            ToxicInfo.from_json(t) for t in self._json(_Call("GET", f"/proxies/{proxy}/toxics"))
        ]

    def reset(self) -> None:
        self._json(_Call("POST", "/reset"))

    def populate(self, proxies: Sequence[ProxyInfo | Mapping[str, Any]]) -> list[ProxyInfo]:
        return _populated(self._json(_Call("POST", "/populate", _populate_body(proxies))))


class AsyncToxiproxyClient:
    """Asynchronous client with the same methods as :class:`ToxiproxyClient`."""

    def __init__(self, api_url: str = DEFAULT_API_URL, *, timeout_s: float = 5.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.api_url, timeout=timeout_s, headers=_HEADERS)

    async def __aenter__(self) -> AsyncToxiproxyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call) -> httpx.Response:
        try:
            return await self._http.request(
                call.method,
                call.path,
                content=None if call.body is None else json.dumps(call.body),
            )
        except httpx.HTTPError as exc:
            raise ToxiproxyAPIError(0, f"{type(exc).__name__}: {exc}") from exc

    async def _json(self, call: _Call) -> Any:
        return _check(await self._send(call))

    async def version(self) -> str:
        return _version(await self._send(_Call("GET", "/version")))

    async def toxic_types(self) -> frozenset[str] | None:
        """The toxic types of our server (``GET /toxic_types``); None on the real Toxiproxy."""
        return _toxic_types(await self._send(_Call("GET", "/toxic_types")))

    async def proxies(self) -> dict[str, ProxyInfo]:
        data = await self._json(_Call("GET", "/proxies"))
        return {name: ProxyInfo.from_json(p) for name, p in data.items()}

    async def get_proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(await self._json(_Call("GET", f"/proxies/{name}")))

    async def create_proxy(
        self, name: str, *, listen: str, upstream: str, enabled: bool = True
    ) -> ProxyInfo:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return ProxyInfo.from_json(await self._json(_Call("POST", "/proxies", body)))

    async def update_proxy(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        listen: str | None = None,
        upstream: str | None = None,
    ) -> ProxyInfo:
        body = _proxy_update_body(enabled, listen, upstream)
        return ProxyInfo.from_json(await self._json(_Call("POST", f"/proxies/{name}", body)))

    async def delete_proxy(self, name: str) -> None:
        await self._json(_Call("DELETE", f"/proxies/{name}"))

    @contextlib.asynccontextmanager
    async def down(self, name: str) -> AsyncIterator[ProxyInfo]:
        """Disable the proxy inside the block, then re-enable it."""
        info = await self.update_proxy(name, enabled=False)
        try:
            yield info
        finally:
            await self.update_proxy(name, enabled=True)

    async def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, Any] | None = None,
    ) -> ToxicInfo:
        body = _toxic_body(type, name, stream, toxicity, attributes)
        data = await self._json(_Call("POST", f"/proxies/{proxy}/toxics", body))
        return ToxicInfo.from_json(data)

    async def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        toxicity: float | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> ToxicInfo:
        body: dict[str, Any] = {}
        if toxicity is not None:
            body["toxicity"] = toxicity
        if attributes is not None:
            body["attributes"] = dict(attributes)
        path = f"/proxies/{proxy}/toxics/{name}"
        return ToxicInfo.from_json(await self._json(_Call("POST", path, body)))

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._json(_Call("DELETE", f"/proxies/{proxy}/toxics/{name}"))

    async def toxics(self, proxy: str) -> list[ToxicInfo]:
        data = await self._json(_Call("GET", f"/proxies/{proxy}/toxics"))
        return [ToxicInfo.from_json(t) for t in data]

    async def reset(self) -> None:
        await self._json(_Call("POST", "/reset"))

    async def populate(self, proxies: Sequence[ProxyInfo | Mapping[str, Any]]) -> list[ProxyInfo]:
        data = await self._json(_Call("POST", "/populate", _populate_body(proxies)))
        return _populated(data)
