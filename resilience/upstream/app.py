"""The stub's HTTP API (Starlette): availability, bookings, cancel, stats.

=====================================  ==========================================
``GET /availability?date=YYYY-MM-DD``  200 ``{"date", "slots": [{time, capacity, remaining}]}``
``POST /bookings``                     201 new booking; 200 the same booking again for a
                                       repeated ``Idempotency-Key`` (header
                                       ``Idempotent-Replayed: true``); 400 no key or bad
                                       JSON; 409 slot full or key reused with another
                                       request; 422 invalid time or customer
``GET /bookings/{id}``                 200 / 404
``DELETE /bookings/{id}``              200 cancelled (idempotent) / 404
``GET /_stats[?log=1]``                counts by route and status, bookings summary
``POST /_stats/reset``                 zero everything (not counted)
=====================================  ==========================================

Request body of ``POST /bookings``: ``{"date", "time", "customer": {"name",
...}, "reference"}``; ``reference`` is the caller's own id of the booking
attempt, which lets the stub see duplicates made under different keys.
Errors are ``{"error": code, "message": text}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .stats import RequestCounter
from .store import BookingError, BookingStore

__all__ = ["StubState", "create_app"]

Handler = Callable[[Request], Awaitable[Response]]


class StubState:
    """One stub's store and counters (reset together); ``now`` stamps arrivals (wall s)."""

    def __init__(self, seed: int, now: Callable[[], float] = time.time) -> None:
        self.seed = seed
        self.now = now
        self.store = BookingStore(seed)
        self.counter = RequestCounter()

    def reset(self) -> None:
        self.store = BookingStore(self.seed)
        self.counter = RequestCounter()


def _error(exc: BookingError) -> JSONResponse:
    return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status)


def _route(name: str, handler: Handler) -> Handler:
    """handler with its route template noted (for counting) and BookingError → JSON."""

    async def wrapped(request: Request) -> Response:
        request.scope["stub_route"] = name
        try:
            return await handler(request)
        except BookingError as exc:
            return _error(exc)

    return wrapped


class _CountRequests:
    """Counts every request except ``/_stats`` by route template and returned status."""

    def __init__(self, app: ASGIApp, state: StubState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_stats"):
            await self.app(scope, receive, send)
            return
        arrived_s = self.state.now()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = scope.get("stub_route") or f"{scope['method']} (unknown route)"
            key = ""
            for name, value in scope.get("headers", ()):
                if name == b"idempotency-key":
                    key = value.decode("latin-1")
            self.state.counter.count(route, status, arrived_s, key)


def create_app(seed: int = 0, *, now: Callable[[], float] = time.time) -> Starlette:
    """The stub as an ASGI app (state in ``app.state.stub``); ``now``: the wall clock
    that stamps arrivals (the simulator passes its virtual one)."""
    state = StubState(seed, now)

    async def availability(request: Request) -> Response:
        date = request.query_params.get("date", "")
        return JSONResponse({"date": date, "slots": state.store.availability(date)})

    async def create_booking(request: Request) -> Response:
        key = request.headers.get("idempotency-key", "").strip()
        if not key:
            raise BookingError(
                400, "idempotency_key_required", "header Idempotency-Key is required"
            )
        try:
            body: Any = json.loads(await request.body())
        except ValueError:
            raise BookingError(400, "invalid_json", "the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise BookingError(400, "invalid_json", "the body must be a JSON object")
        result = state.store.create(key, body)
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        status = 200 if result.replayed else 201
        return JSONResponse(result.booking.to_json(), status_code=status, headers=headers)

    async def get_booking(request: Request) -> Response:
        return JSONResponse(state.store.get(request.path_params["booking_id"]).to_json())

    async def cancel_booking(request: Request) -> Response:
        return JSONResponse(state.store.cancel(request.path_params["booking_id"]).to_json())

    async def stats(request: Request) -> Response:
        with_log = request.query_params.get("log") in ("1", "true")
        return JSONResponse(
            {
                "seed": state.seed,
                "requests": state.counter.to_json(with_log=with_log),
                "bookings": state.store.summary(),
            }
        )

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    routes = [
        Route("/availability", _route("GET /availability", availability), methods=["GET"]),
        Route("/bookings", _route("POST /bookings", create_booking), methods=["POST"]),
        Route(
            "/bookings/{booking_id}",
            _route("GET /bookings/{id}", get_booking),
            methods=["GET"],
        ),
        Route(
            "/bookings/{booking_id}",
            _route("DELETE /bookings/{id}", cancel_booking),
            methods=["DELETE"],
        ),
        Route("/_stats", stats, methods=["GET"]),
        Route("/_stats/reset", reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.stub = state
    app.add_middleware(_CountRequests, state=state)
    return app
