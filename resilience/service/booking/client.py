"""One HTTP attempt against the booking API (no retry, no breaker here).

Errors are left for :func:`resilience.classify.classify` to translate
(``raise_for_status`` gives an ``httpx.HTTPStatusError`` → UpstreamHTTPError
with its status and ``Retry-After``; transport errors → ConnectionFailure or
TimeoutFailure, a truncated response included), except a 2xx whose body is
not the JSON object expected: that is an upstream failure too (retryable),
never the caller's fault.
"""

from __future__ import annotations

from typing import Any

import httpx

from resilience.errors import UpstreamHTTPError

__all__ = ["BookingApiClient"]


class BookingApiClient:
    """The booking API's four calls; ``attempt_timeout_s`` bounds each attempt.

    ``transport``: an httpx transport instead of the network (tests use the stub
    in process through ``httpx.ASGITransport``)."""

    def __init__(
        self,
        base_url: str,
        *,
        attempt_timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=attempt_timeout_s,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.http.request(method, path, **kwargs)
        response.raise_for_status()
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UpstreamHTTPError(
                response.status_code,
                retryable=True,
                message=f"the booking API answered {method} {path} with a body that is not "
                "a JSON object",
            )
        return body

    async def availability(self, date: str) -> dict[str, Any]:
        return await self._json("GET", "/availability", params={"date": date})

    async def create(self, key: str, request: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", "/bookings", json=request, headers={"Idempotency-Key": key})

    async def get(self, booking_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/bookings/{booking_id}")

    async def cancel(self, booking_id: str) -> dict[str, Any]:
        return await self._json("DELETE", f"/bookings/{booking_id}")
