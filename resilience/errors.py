"""The one error hierarchy of the harness.

Every failure the resilience layer reasons about is a :class:`ResilienceError`
carrying what a caller needs to decide: is it worth retrying, and which
recovery applies (retry, fall back, abort)? Driver exceptions are translated
into this tree once, at the boundary, by :mod:`resilience.classify`.

::

    ResilienceError (Exception)
    ├── NotFound                       not retryable, fallback
    ├── InvalidInput (also ValueError) not retryable, abort
    │   └── InvalidSlug
    ├── ConnectionFailure              retryable, retry   (ECONNREFUSED/RESET, SQLSTATE 08)
    │   └── TimeoutFailure             retryable, retry
    ├── CircuitOpenError               not retryable, fallback (says when to try again)
    ├── UpstreamHTTPError              429/502/503/504 retryable (Retry-After), others not
    └── DatabaseError                  carries SQLSTATE
        ├── DeadlockDetected    40P01  retryable
        ├── SerializationFailure 40001 retryable
        ├── LockTimeout         55P03  retryable
        ├── QueryCancelled      57014  retryable
        └── ConnectionLost      08xxx  retryable (also a ConnectionFailure)
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CircuitOpenError",
    "ConnectionFailure",
    "ConnectionLost",
    "DatabaseError",
    "DeadlockDetected",
    "InvalidInput",
    "InvalidSlug",
    "LockTimeout",
    "NotFound",
    "QueryCancelled",
    "Recovery",
    "ResilienceError",
    "SerializationFailure",
    "TimeoutFailure",
    "UpstreamHTTPError",
    "new_correlation_id",
]


class Recovery(enum.StrEnum):
    """What the caller should do about an error."""

    RETRY = "retry"
    FALLBACK = "fallback"
    ABORT = "abort"


def new_correlation_id() -> str:
    """A fresh id that ties log lines, metrics and error records together."""
    return uuid.uuid4().hex


class ResilienceError(Exception):
    """Base of every classified failure.

    ``message`` is for operators (may contain internals); ``user_message`` is
    safe to show to an end user.
    """

    retryable: bool = False
    recovery: Recovery = Recovery.ABORT
    default_user_message: str = "The request could not be completed."

    def __init__(
        self,
        message: str,
        *,
        user_message: str | None = None,
        correlation_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        retryable: bool | None = None,
        recovery: Recovery | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.user_message = user_message or self.default_user_message
        self._correlation_id = correlation_id or None
        self.context: dict[str, Any] = dict(context) if context else {}
        if retryable is not None:
            self.retryable = retryable
        if recovery is not None:
            self.recovery = recovery

    @property
    def correlation_id(self) -> str:
        """Ties log lines, metrics and error records together.

        Generated on first read (a uuid4 costs microseconds, and most errors,
        e.g. an open breaker's refusals, are handled without ever logging one).
        """
        cid = self._correlation_id
        if cid is None:
            cid = self._correlation_id = new_correlation_id()
        return cid

    @correlation_id.setter
    def correlation_id(self, value: str) -> None:
        self._correlation_id = value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for logs, error_events and API bodies)."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "user_message": self.user_message,
            "retryable": self.retryable,
            "recovery": self.recovery.value,
            "correlation_id": self.correlation_id,
            "context": self.context,
        }


class NotFound(ResilienceError):
    recovery = Recovery.FALLBACK
    default_user_message = "Not found; continuing without it."


class InvalidInput(ResilienceError, ValueError):
    """Bad input. Never retried, never counted as a dependency failure."""

    recovery = Recovery.ABORT
    default_user_message = "The request is invalid."


class InvalidSlug(InvalidInput):
    default_user_message = "That service name is not valid."


class ConnectionFailure(ResilienceError):
    retryable = True
    recovery = Recovery.RETRY
    default_user_message = "A dependency is unavailable; your request continues."


class TimeoutFailure(ConnectionFailure):
    default_user_message = "A dependency is slow; your request continues."


class CircuitOpenError(ResilienceError):
    """Raised instead of calling a dependency whose breaker is open.

    An open breaker may refuse thousands of calls a second, so the common
    construction (no extra keywords) only stores ``name``, ``retry_after_s``
    and ``retry_at``: ``message`` and ``context`` are built on first read and
    the other attributes come from class-level defaults.
    """

    recovery = Recovery.FALLBACK
    default_user_message = "A dependency is temporarily disabled; your request continues."
    user_message = default_user_message
    _correlation_id: str | None = None
    _message: str | None = None
    _context: dict[str, Any] | None = None

    def __init__(
        self,
        name: str,
        *,
        retry_after_s: float,
        retry_at: float | None = None,
        **kwargs: Any,
    ) -> None:
        # BaseException.__new__ has already set args to (name,)
        self.name = name
        self.retry_after_s = retry_after_s
        """Seconds until the breaker lets a trial call through."""
        self.retry_at = retry_at
        """The breaker clock's monotonic time of that trial, if known."""
        if kwargs:
            super().__init__(self._describe(), **kwargs)

    def _describe(self) -> str:
        return f"circuit {self.name!r} is open; next trial in {self.retry_after_s:.3f} s"

    @property
    def message(self) -> str:
        if self._message is None:
            self._message = self._describe()
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        self._message = value

    @property
    def context(self) -> dict[str, Any]:
        if self._context is None:
            self._context = {}
        return self._context

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._context = value

    def __str__(self) -> str:
        return self.message


_RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


class UpstreamHTTPError(ResilienceError):
    """An HTTP dependency answered with an error status."""

    def __init__(
        self,
        status: int,
        *,
        retry_after_s: float | None = None,
        message: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retryable", status in _RETRYABLE_HTTP)
        kwargs.setdefault(
            "recovery", Recovery.RETRY if status in _RETRYABLE_HTTP else Recovery.ABORT
        )
        super().__init__(message or f"upstream answered HTTP {status}", **kwargs)
        self.status = status
        self.retry_after_s = retry_after_s


class DatabaseError(ResilienceError):
    """A database error with its SQLSTATE (``None`` when the driver gave none)."""

    def __init__(self, message: str, *, sqlstate: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.sqlstate = sqlstate


class _RetryableDatabaseError(DatabaseError):
    retryable = True
    recovery = Recovery.RETRY


class DeadlockDetected(_RetryableDatabaseError):
    pass


class SerializationFailure(_RetryableDatabaseError):
    pass


class LockTimeout(_RetryableDatabaseError):
    pass


class QueryCancelled(_RetryableDatabaseError):
    pass


class ConnectionLost(_RetryableDatabaseError, ConnectionFailure):
    default_user_message = ConnectionFailure.default_user_message
