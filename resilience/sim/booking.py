"""The booking API in virtual time: the real stub's code behind a modelled HTTP proxy.

:class:`ModelBookingApi` is an httpx transport for the service's
:class:`~resilience.service.booking.client.BookingApiClient`. Each request
goes through the modelled proxy ``booking-api`` (:class:`ModelHttpProxy`:
enabled or not, and the ``http_*`` toxics with the real ones' attributes),
then to the stub's own ASGI app (``resilience.upstream``, the same rules and
``/_stats`` counts, stamped with the virtual wall clock), after a service
time. Failures are the exceptions httpx raises for them (refused connection,
read timeout at the attempt timeout, a cut response), so the service's
classifier, retry and breaker see what they see for real.

Approximations (documented in docs/simulation.md): ``toxicity`` is rolled per
request, not per connection (the real client keeps a small keep-alive pool,
so per-connection rolls are coarser); only the ``http_*`` toxics and
``disable``/``enable`` are modelled on this proxy (TCP toxics are refused
with the fault controller's message).
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from resilience.scenario.http_toxics import http_toxic_attributes
from resilience.upstream.app import create_app

__all__ = ["ModelBookingApi", "ModelHttpProxy"]

_MODELLED = ("http_error", "http_delay", "http_abort")


class _HttpToxic:
    __slots__ = ("attributes", "name", "stream", "toxicity", "type")

    def __init__(self, name: str, type_: str, stream: str, toxicity: float, attrs: dict[str, Any]):
        self.name, self.type, self.stream = name, type_, stream
        self.toxicity, self.attributes = toxicity, attrs


class ModelHttpProxy:
    """The modelled ``booking-api`` proxy (the fault controller's proxy interface)."""

    def __init__(self, name: str, rng: random.Random) -> None:
        self.name = name
        self.rng = rng
        self.enabled = True
        self.toxics: dict[str, _HttpToxic] = {}

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def add_toxic(
        self,
        name: str,
        type: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        if type not in _MODELLED:
            raise ValueError(f"toxic {type!r} is not modelled on {self.name!r} (only {_MODELLED})")
        attrs = http_toxic_attributes(type, dict(attributes or {}))
        self.toxics[name] = _HttpToxic(name, type, stream.lower(), float(toxicity), attrs)

    def pause_server(self) -> None:
        raise ValueError(f"{self.name!r} takes proxy faults only (the scenario loader says so)")

    def resume_server(self) -> None:
        """Nothing to resume: the stub is never paused (see :meth:`pause_server`)."""

    def kill_server(self) -> None:
        self.disable()

    def start_server(self, *, keep_data: bool = True) -> None:
        del keep_data
        self.enable()

    def remove_toxic(self, name: str) -> None:
        self.toxics.pop(name, None)

    def reset(self) -> None:
        self.enabled = True
        self.toxics.clear()

    def acting(self, stream: str, method: str, path: str) -> list[_HttpToxic]:
        """The toxics of stream that act on this request (toxicity, filters, rate rolled)."""
        out = []
        for toxic in self.toxics.values():
            if toxic.stream != stream or self.rng.random() >= toxic.toxicity:
                continue
            a = toxic.attributes
            if a["methods"] and method.upper() not in {m.upper() for m in a["methods"]}:
                continue
            if any(_matches(p, path) for p in a["exclude"]):
                continue
            if a["paths"] and not any(_matches(p, path) for p in a["paths"]):
                continue
            if a["rate"] >= 1 or self.rng.random() < a["rate"]:
                out.append(toxic)
        return out


def _matches(pattern: str, path: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(path, pattern)
    return path.startswith(pattern)


def _error_response(attrs: Mapping[str, Any], request: httpx.Request) -> httpx.Response:
    body = b"" if request.method == "HEAD" else str(attrs["body"]).encode()
    headers = dict(attrs["headers"])
    return httpx.Response(attrs["status"], headers=headers, content=body, request=request)


class ModelBookingApi(httpx.AsyncBaseTransport):
    """The booking API as the service's httpx transport, on the virtual loop."""

    def __init__(
        self,
        proxy: ModelHttpProxy,
        *,
        seed: int,
        wall: Callable[[], float],
        service_time: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        self.proxy = proxy
        self.app = create_app(seed, now=wall)
        self.stub = httpx.ASGITransport(app=self.app)
        self.service_time = service_time  # a Distribution (sim.distributions); None: 1 ms
        self.rng = rng or random.Random(f"booking-api:{seed}")

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /_stats?log=1`` of the stub would answer now."""
        state = self.app.state.stub
        return {
            "seed": state.seed,
            "requests": state.counter.to_json(with_log=True),
            "bookings": state.store.summary(),
        }

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            return await asyncio.wait_for(self._exchange(request), timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("timed out (modelled)", request=request) from None

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        proxy = self.proxy
        if not proxy.enabled:
            raise httpx.ConnectError("[Errno 111] Connection refused (modelled)", request=request)
        if (refused := await self._toxics("upstream", request)) is not None:
            return refused
        service_s = 0.001 if self.service_time is None else self.service_time.sample(self.rng)
        await asyncio.sleep(service_s)
        response = await self.stub.handle_async_request(request)
        await response.aread()
        if (replaced := await self._toxics("downstream", request)) is not None:
            return replaced
        return response

    async def _toxics(self, stream: str, request: httpx.Request) -> httpx.Response | None:
        """The acting toxics of one direction: delays slept, an error answer returned,
        an abort raised (upstream: the request never reaches the API; downstream: a
        truncated, reset or malformed answer)."""
        proxy = self.proxy
        for toxic in proxy.acting(stream, request.method, request.url.path):
            a = toxic.attributes
            if toxic.type == "http_delay":
                await asyncio.sleep(_delay_s(a, proxy.rng))
            elif toxic.type == "http_error":
                return _error_response(a, request)
            elif stream == "upstream":
                raise httpx.RemoteProtocolError("connection closed (modelled)", request=request)
            else:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body (modelled)",
                    request=request,
                )
        return None


def _delay_s(attrs: Mapping[str, Any], rng: random.Random) -> float:
    delay_ms = int(attrs["latency"])
    if attrs["jitter"] > 0:
        delay_ms += rng.randrange(-attrs["jitter"], attrs["jitter"])
    return max(delay_ms, 0) / 1000.0
