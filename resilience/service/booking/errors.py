"""The appointment errors, in the style of :mod:`resilience.errors`::

    ResilienceError
    └── AppointmentError            base: a user-safe message
        ├── BookingError            the booking API failed: status, retryable, Retry-After
        └── CustomerValidationError bad customer input: 422 by field, never retried
            (also an InvalidInput, so no retry policy or breaker ever retries it)

``BookingError.http_status`` is what the reference service answers: 503
(with ``Retry-After``) for an upstream that is down, refusing, or whose
breaker is open; 504 for one that timed out; 409 for a slot taken; 502 for an
upstream answer the service cannot use.
"""

from __future__ import annotations

from typing import Any

from resilience.errors import InvalidInput, Recovery, ResilienceError

__all__ = ["AppointmentError", "BookingError", "CustomerValidationError"]


class AppointmentError(ResilienceError):
    """Base of the booking flow's errors; ``user_message`` is safe to show."""

    default_user_message = "We could not complete your appointment request."


class BookingError(AppointmentError):
    """The booking API failed (after the retries the policy allows).

    ``status``: the upstream's HTTP status (None: no answer, or the breaker
    refused the call). ``retry_after_s``: when the caller may try again
    (upstream's ``Retry-After`` or the breaker's next trial), if known.
    """

    default_user_message = "Booking is temporarily unavailable; please try again shortly."
    recovery = Recovery.RETRY

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        http_status: int = 503,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.status = status
        self.retry_after_s = retry_after_s
        self.http_status = http_status


class CustomerValidationError(AppointmentError, InvalidInput):
    """Invalid customer input: 422 with one message per field; nothing is stored."""

    default_user_message = "Some booking details are not valid."
    retryable = False
    recovery = Recovery.ABORT

    def __init__(self, fields: dict[str, str], **kwargs: Any) -> None:
        detail = "; ".join(f"{name}: {problem}" for name, problem in fields.items())
        super().__init__(f"invalid booking request: {detail}", **kwargs)
        self.fields = fields
