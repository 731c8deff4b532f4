"""The booking routes of the reference service (FastAPI), added by :func:`add_booking_routes`.

==============================  ================================================
``GET /availability?date=``     200 slots; 422 bad date; 503/504 booking API down
                                (``Retry-After`` when known)
``POST /bookings``              201 booked (exactly once per ``idempotency_key``:
                                a repeated key returns the same booking); 422 by
                                field (nothing sent, nothing stored); 409 slot
                                taken; 503/504 booking API down (safe to retry
                                with the same key)
``GET /bookings/{id}``          200 / 404 / 503
``DELETE /bookings/{id}``       200 cancelled / 404 / 503
==============================  ================================================
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from resilience.service.booking.errors import (
    AppointmentError,
    BookingError,
    CustomerValidationError,
)
from resilience.service.booking.service import BookingService

__all__ = ["BookingErrorOut", "BookingIn", "CustomerIn", "add_booking_routes"]

BookingId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="Booking id")
]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=100)
    email: str = Field(..., max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(None, max_length=32, pattern=r"^\+?[0-9 ()-]{6,31}$")


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: dt.date
    time: str = Field(..., pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM")
    customer: CustomerIn
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$"
    )


class BookingErrorOut(BaseModel):
    error: str
    message: str = Field(description="Safe to show to the user.")
    retryable: bool = False
    correlation_id: str | None = None
    retry_after_s: float | None = Field(None, description="Also in the Retry-After header.")


_DOWN = {"model": BookingErrorOut, "description": "The booking API is unavailable"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    503: _DOWN,
    504: {"model": BookingErrorOut, "description": "The booking API timed out"},
    502: {"model": BookingErrorOut, "description": "The booking API answered unusably"},
}


def _error_response(error: AppointmentError) -> JSONResponse:
    if isinstance(error, CustomerValidationError):
        detail = [
            {"loc": ["body", name], "msg": problem, "type": "booking_api"}
            for name, problem in error.fields.items()
        ]
        return JSONResponse({"detail": detail}, status_code=422)
    status = error.http_status if isinstance(error, BookingError) else 503
    retry_after = error.retry_after_s if isinstance(error, BookingError) else None
    body: dict[str, Any] = {
        "error": type(error).__name__,
        "message": error.user_message,
        "retryable": error.retryable,
        "correlation_id": error.correlation_id,
    }
    headers: dict[str, str] = {}
    if retry_after is not None:
        body["retry_after_s"] = round(retry_after, 3)
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse(body, status_code=status, headers=headers)


def add_booking_routes(app: FastAPI, bookings: Callable[[], BookingService | None]) -> None:
    """Add the booking routes to app; ``bookings()`` gives the service (None: not configured)."""

    def service() -> BookingService:
        found = bookings()
        if found is None:
            raise BookingError(
                "no booking API is configured (booking.url)",
                http_status=503,
                retryable=False,
                user_message="Booking is not available on this server.",
            )
        return found

    @app.exception_handler(AppointmentError)
    async def _appointment_error(_: Request, exc: AppointmentError) -> JSONResponse:
        return _error_response(exc)

    @app.get("/availability", summary="Free slots of a date (booking API)", responses=_ERRORS)
    async def availability(date: Annotated[dt.date, Query(description="YYYY-MM-DD")]) -> Any:
        return await service().availability(date.isoformat())

    @app.post(
        "/bookings",
        status_code=201,
        summary="Book a slot (exactly once per key)",
        responses={
            **_ERRORS,
            409: {"model": BookingErrorOut, "description": "The slot is taken"},
        },
    )
    async def create_booking(body: BookingIn) -> Any:
        request = {
            "date": body.date.isoformat(),
            "time": body.time,
            "customer": body.customer.model_dump(exclude_none=True),
        }
        return await service().book(request, body.idempotency_key)

    @app.get(
        "/bookings/{booking_id}",
        summary="A booking",
        responses={**_ERRORS, 404: {"model": BookingErrorOut, "description": "No such booking"}},
    )
    async def get_booking(booking_id: BookingId) -> Any:
        return await service().get(booking_id)

    @app.delete(
        "/bookings/{booking_id}",
        summary="Cancel a booking",
        responses={**_ERRORS, 404: {"model": BookingErrorOut, "description": "No such booking"}},
    )
    async def cancel_booking(booking_id: BookingId) -> Any:
        return await service().cancel(booking_id)
