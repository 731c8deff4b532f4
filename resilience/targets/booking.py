"""The ``booking`` operation of the reference target: one booking through the booking API.

Each call books its own slot (a date and hour derived from the call's
sequence number, so bookings never compete for a place) under the call's
idempotency key. Observation: outcome ``booked`` (path ``ok``), ``failed``
(path ``failed``, reason the error's class, status the HTTP status the
service would answer) or ``refused`` (path ``invalid``: a validation error);
``error`` when the service has no booking API configured. Gate metrics:
``booking`` (latency of all), ``booking.ok`` / ``booking.failed`` (latency by
outcome), ``booking.outcome.booked`` (share), and the ``upstream.*`` figures
of :mod:`resilience.targets.reference_metrics`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from resilience.service.booking import BookingError, CustomerValidationError
from resilience.targets.base import Call, Observation

__all__ = ["booking_operation", "booking_request"]

_FIRST_DAY = dt.date(2027, 1, 4)
_HOURS = 8  # the stub's slots: 09:00 .. 16:00


def booking_request(seq: int) -> dict[str, Any]:
    """The booking of call ``seq``: its own (date, hour), a fixed customer."""
    day = _FIRST_DAY + dt.timedelta(days=seq // _HOURS)
    return {
        "date": day.isoformat(),
        "time": f"{9 + seq % _HOURS:02d}:00",
        "customer": {"name": f"Customer {seq}", "email": f"c{seq}@example.com"},
    }


async def booking_operation(service: Any, call: Call) -> Observation:
    """Book once for ``call`` through ``service.bookings``."""
    bookings = getattr(service, "bookings", None)
    if bookings is None:
        return Observation("error", "", "no booking API configured", None, 0)
    try:
        await bookings.book(booking_request(call.seq), call.idempotency_key)
    except CustomerValidationError:
        return Observation("refused", "invalid", "customer_validation", None, 0, 422)
    except BookingError as exc:
        return Observation("failed", "failed", type(exc).__name__, None, 0, exc.http_status)
    return Observation("booked", "ok", None, None, 0, 201)
