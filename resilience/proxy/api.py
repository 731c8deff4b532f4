"""The Toxiproxy HTTP API: routes → collection calls → Toxiproxy's exact replies.

This layer only translates (TOXIPROXY.md §2-§4): paths match exactly (a
trailing slash is a 404), a known path with the wrong method is a 405 with an
empty body, a browser ``User-Agent`` gets 403, errors are
``{"error": ..., "status": N}\\n`` as text/plain, successes are compact JSON,
and ``/version`` has its own historic format.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .collection import PopulateError, ProxyCollection
from .errors import ApiError, bad_request_body
from .gojson import GoDecodeError, decode_first, dumps
from .http import Request, Response
from .toxics import EXTENSION_TOXICS, REGISTRY

__all__ = ["TOXIPROXY_VERSION", "Api"]

TOXIPROXY_VERSION = "2.12.0"

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_NOSNIFF = [("X-Content-Type-Options", "nosniff")]
_log = logging.getLogger("resilience.proxy.api")

Result = Response | Awaitable[Response]
Handler = Callable[[Request, list[str]], Result]


def _json(status: int, value: object) -> Response:
    return Response(status, dumps(value), _JSON)


def _error(exc: ApiError) -> Response:
    body = dumps({"error": exc.message, "status": exc.status}) + b"\n"
    return Response(exc.status, body, _TEXT, list(_NOSNIFF))


def _decode(request: Request) -> Any:
    try:
        return decode_first(request.body)
    except GoDecodeError as exc:
        raise bad_request_body(str(exc)) from None


NOT_FOUND = Response(404, b"404 page not found\n", _TEXT, list(_NOSNIFF))
NOT_ALLOWED = Response(405)
FORBIDDEN = Response(403, b"User agent not allowed\n", _TEXT, list(_NOSNIFF))


class Api:
    """The request handler: ``Api(collection)(request) -> Response | awaitable``.

    ``metrics`` renders ``/metrics`` (the route is 404 when it is None).
    """

    def __init__(
        self,
        collection: ProxyCollection,
        *,
        metrics: Callable[[], str] | None = None,
        version: str = TOXIPROXY_VERSION,
    ) -> None:
        self.collection = collection
        self.metrics = metrics
        self.version_body = f'{{"version": "{version}"}}\n'.encode()

    # -- routing -----------------------------------------------------------
    def _route(self, parts: list[str]) -> dict[str, Handler] | None:
        n = len(parts)
        if n == 1:
            top: dict[str, dict[str, Handler]] = {
                "version": {"GET": self.version},
                "toxic_types": {"GET": self.toxic_types},
                "proxies": {"GET": self.list_proxies, "POST": self.create_proxy},
                "populate": {"POST": self.populate},
                "reset": {"POST": self.reset},
                "metrics": {"GET": self.render_metrics} if self.metrics else {},
            }
            return top.get(parts[0]) or None
        if parts[0] != "proxies" or not parts[1]:
            return None
        if n == 2:
            return {
                "GET": self.get_proxy,
                "POST": self.update_proxy,
                "PATCH": self.update_proxy,
                "DELETE": self.delete_proxy,
            }
        if n == 3 and parts[2] == "toxics":
            return {"GET": self.list_toxics, "POST": self.create_toxic}
        if n == 4 and parts[2] == "toxics" and parts[3]:
            return {
                "GET": self.get_toxic,
                "POST": self.update_toxic,
                "PATCH": self.update_toxic,
                "DELETE": self.delete_toxic,
            }
        return None

    def __call__(self, request: Request) -> Result:
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("Request", extra={"method": request.method, "path": request.path})
        if not request.path.startswith("/"):
            return NOT_FOUND
        parts = request.path[1:].split("/")
        if "" in parts:
            return NOT_FOUND
        routes = self._route(parts)
        if routes is None:
            return NOT_FOUND
        handler = routes.get(request.method)
        if handler is None:
            return NOT_ALLOWED
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return FORBIDDEN
        try:
            result = handler(request, parts)
        except ApiError as exc:
            return _error(exc)
        if isinstance(result, Response):
            return result
        return self._guard(result)

    async def _guard(self, pending: Awaitable[Response]) -> Response:
        try:
            return await pending
        except ApiError as exc:
            return _error(exc)

    # -- handlers ----------------------------------------------------------
    def version(self, request: Request, parts: list[str]) -> Response:
        return Response(200, self.version_body, "application/json;charset=utf-8")

    def toxic_types(self, request: Request, parts: list[str]) -> Response:
        """Extension: the toxic types this server has (the real Toxiproxy answers 404).

        ``types``: every type; ``extensions``: the ones the real Toxiproxy
        lacks, each with its attributes' JSON kinds (``int64``, ``float32``,
        ``string``, ``[]string``, ``map[string]string``), its defaults, and
        whether unknown attribute names are refused (``strict``).
        """
        extensions = {
            name: {
                "attributes": {attr: spec.kind(attr) for attr in spec.attributes},
                "defaults": spec.initial_attributes(),
                "strict": spec.strict,
                "stream": spec.only_stream,
                "summary": spec.summary,
            }
            for name in EXTENSION_TOXICS
            for spec in (REGISTRY[name],)
        }
        return _json(200, {"types": sorted(REGISTRY), "extensions": extensions})

    def render_metrics(self, request: Request, parts: list[str]) -> Response:
        assert self.metrics is not None
        return Response(200, self.metrics().encode(), "text/plain; version=0.0.4; charset=utf-8")

    def list_proxies(self, request: Request, parts: list[str]) -> Response:
        return _json(200, {p.name: p.to_json() for p in self.collection.sorted()})

    async def create_proxy(self, request: Request, parts: list[str]) -> Response:
        proxy = await self.collection.create_json(_decode(request))
        _log.info("Started proxy", extra={"proxy": proxy.name, "listen": proxy.listen})
        return _json(201, proxy.to_json())

    async def populate(self, request: Request, parts: list[str]) -> Response:
        try:
            body = _decode(request)
        except ApiError as exc:
            return self._populate_error(exc, None)
        try:
            proxies = await self.collection.populate_json(body)
        except PopulateError as exc:
            return self._populate_error(exc, exc.proxies)
        listed = None if proxies is None else [p.to_json() for p in proxies]
        return _json(201, {"proxies": listed})

    def _populate_error(self, exc: ApiError, proxies: list[Any] | None) -> Response:
        listed = None if proxies is None else [p.to_json() for p in proxies]
        return _json(exc.status, {"error": exc.message, "status": exc.status, "proxies": listed})

    async def reset(self, request: Request, parts: list[str]) -> Response:
        await self.collection.reset()
        return Response(204)

    def get_proxy(self, request: Request, parts: list[str]) -> Response:
        return _json(200, self.collection.get(parts[1]).to_json())

    async def update_proxy(self, request: Request, parts: list[str]) -> Response:
        self.collection.get(parts[1])
        proxy = await self.collection.update_json(parts[1], _decode(request))
        return _json(200, proxy.to_json())

    async def delete_proxy(self, request: Request, parts: list[str]) -> Response:
        await self.collection.delete(parts[1])
        return Response(204)

    def list_toxics(self, request: Request, parts: list[str]) -> Response:
        proxy = self.collection.get(parts[1])
        return _json(200, [toxic.to_json() for toxic in proxy.toxics.all()])

    def create_toxic(self, request: Request, parts: list[str]) -> Response:
        proxy = self.collection.get(parts[1])
        toxic = proxy.toxics.add_json(_decode(request))
        return _json(200, toxic.to_json())

    def get_toxic(self, request: Request, parts: list[str]) -> Response:
        proxy = self.collection.get(parts[1])
        return _json(200, proxy.toxics.get(parts[3]).to_json())

    def update_toxic(self, request: Request, parts: list[str]) -> Response:
        toxics = self.collection.get(parts[1]).toxics
        toxics.get(parts[3])
        toxic = toxics.update_json(parts[3], _decode(request))
        return _json(200, toxic.to_json())

    def delete_toxic(self, request: Request, parts: list[str]) -> Response:
        self.collection.get(parts[1]).toxics.remove(parts[3])
        return Response(204)
