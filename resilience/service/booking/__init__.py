"""The booking flow of the reference service: an external HTTP API dependency.

``POST /bookings`` and ``GET /availability`` call the booking API (in the
harness: the ``resilience upstream`` stub behind proxy ``booking-api``)
through the external-API retry policy and circuit breaker (TARGETS.md:
delays 1, 2, 4 s ±10 %, ``Retry-After`` honoured up to a cap, 4xx other
than 408/425/429 never retried; breaker opens after 5 failures within 60 s,
stays open 30 s, one half-open trial). A booking is exactly once: every
attempt of one booking carries the same ``Idempotency-Key``.

Modules: :mod:`.errors` (the appointment error hierarchy), :mod:`.client`
(one HTTP attempt), :mod:`.service` (retry, breaker, failure detector,
error events, counts), :mod:`.routes` (the FastAPI routes).
"""

from __future__ import annotations

from .errors import AppointmentError, BookingError, CustomerValidationError
from .service import BookingService, build_booking_breaker, build_booking_retry

__all__ = [
    "AppointmentError",
    "BookingError",
    "BookingService",
    "CustomerValidationError",
    "build_booking_breaker",
    "build_booking_retry",
]
