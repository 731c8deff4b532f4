"""Translate driver, OS and HTTP exceptions into :mod:`resilience.errors`, once.

:func:`classify` is the boundary between foreign exceptions and the harness's
one error hierarchy. Every mapping is a data table in this module:

- :data:`SQLSTATE_EXACT` / :data:`SQLSTATE_CLASS` — PostgreSQL SQLSTATE (psycopg
  and asyncpg both expose ``.sqlstate``) → error class;
- :data:`EXCEPTION_NAMES` — ``"<top-level package>.<class name>"`` of a driver
  exception (redis-py, valkey, httpx, psycopg, asyncpg, builtins) → error class,
  matched along the exception's MRO so the most specific entry wins;
- :data:`REDIS_RETRYABLE_REPLY_PREFIXES` — Redis error replies (``BUSY``,
  ``LOADING`` …) that mean "try again soon";
- :data:`ERRNO_CLASSES` — OS ``errno`` → error class;
- :data:`HTTP_STATUS_RETRYABLE` — HTTP status → retryable?

Drivers are matched by name, never imported: importing this module imports no
driver. Already-classified errors pass through unchanged. Anything unknown
becomes a non-retryable :class:`~resilience.errors.ResilienceError` with
recovery ``ABORT``. The original exception is always the ``__cause__``.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.errors import (
    ConnectionFailure,
    ConnectionLost,
    DatabaseError,
    DeadlockDetected,
    LockTimeout,
    QueryCancelled,
    Recovery,
    ResilienceError,
    SerializationFailure,
    TimeoutFailure,
    UpstreamHTTPError,
)

__all__ = [
    "ERRNO_CLASSES",
    "EXCEPTION_NAMES",
    "HTTP_STATUS_RETRYABLE",
    "REDIS_RETRYABLE_REPLY_PREFIXES",
    "SQLSTATE_CLASS",
    "SQLSTATE_EXACT",
    "classify",
    "parse_retry_after",
]

ErrorClass = type[ResilienceError]

SQLSTATE_EXACT: Mapping[str, type[DatabaseError]] = {
    "40001": SerializationFailure,  # serialization_failure
    "40P01": DeadlockDetected,  # deadlock_detected
    "55P03": LockTimeout,  # lock_not_available (also raised by lock_timeout)
    "57014": QueryCancelled,  # query_canceled (also statement_timeout)
    "57P01": ConnectionLost,  # admin_shutdown
    "57P02": ConnectionLost,  # crash_shutdown
    "57P03": ConnectionLost,  # cannot_connect_now (server starting up)
    "57P05": ConnectionLost,  # idle_session_timeout
    "25P03": ConnectionLost,  # idle_in_transaction_session_timeout (session ended)
    "53300": ConnectionLost,  # too_many_connections
}
"""SQLSTATE → class, checked before :data:`SQLSTATE_CLASS`."""

SQLSTATE_CLASS: Mapping[str, type[DatabaseError]] = {
    "08": ConnectionLost,  # connection_exception and all its subclasses
}
"""Two-character SQLSTATE class → class. Other SQLSTATEs: non-retryable DatabaseError."""

EXCEPTION_NAMES: Mapping[str, ErrorClass] = {
    # redis-py (and its fork valkey-py); more specific names come first in the MRO.
    "redis.AuthenticationError": ResilienceError,  # a ConnectionError subclass: never retry
    "redis.AuthorizationError": ResilienceError,
    "redis.TimeoutError": TimeoutFailure,
    "redis.ConnectionError": ConnectionFailure,  # includes BusyLoadingError, MaxConnectionsError
    "redis.ReadOnlyError": ConnectionFailure,  # replica during failover
    "redis.TryAgainError": ConnectionFailure,
    "redis.ClusterDownError": ConnectionFailure,  # includes MasterDownError
    "valkey.AuthenticationError": ResilienceError,
    "valkey.AuthorizationError": ResilienceError,
    "valkey.TimeoutError": TimeoutFailure,
    "valkey.ConnectionError": ConnectionFailure,
    "valkey.ReadOnlyError": ConnectionFailure,
    "valkey.TryAgainError": ConnectionFailure,
    "valkey.ClusterDownError": ConnectionFailure,
    # httpx transport errors (HTTPStatusError is handled separately).
    "httpx.TimeoutException": TimeoutFailure,
    "httpx.NetworkError": ConnectionFailure,  # ConnectError, ReadError, WriteError, CloseError
    "httpx.RemoteProtocolError": ConnectionFailure,  # server hung up mid-response
    # psycopg errors without a SQLSTATE (failed connect, closed connection).
    "psycopg.ConnectionTimeout": TimeoutFailure,
    "psycopg.OperationalError": ConnectionLost,
    "psycopg.InterfaceError": ConnectionLost,
    "psycopg_pool.PoolTimeout": TimeoutFailure,
    # asyncpg client-side errors without a SQLSTATE.
    "asyncpg.ConnectionDoesNotExistError": ConnectionLost,
    # builtins: asyncio.TimeoutError and socket.timeout are TimeoutError since 3.11.
    "builtins.TimeoutError": TimeoutFailure,
    "builtins.ConnectionError": ConnectionFailure,
    "builtins.EOFError": ConnectionFailure,  # peer closed the stream mid-read
    "asyncio.IncompleteReadError": ConnectionFailure,
}
"""``"<top-level package>.<class name>"`` → class, matched along the MRO."""

REDIS_RETRYABLE_REPLY_PREFIXES: tuple[str, ...] = (
    "BUSY",
    "LOADING",
    "TRYAGAIN",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "READONLY",
)
"""Redis error replies that are transient (for a plain ``ResponseError``)."""

ERRNO_CLASSES: Mapping[int, ErrorClass] = {
    errno.ECONNREFUSED: ConnectionFailure,
    errno.ECONNRESET: ConnectionFailure,
    errno.ECONNABORTED: ConnectionFailure,
    errno.EPIPE: ConnectionFailure,
    errno.ENOTCONN: ConnectionFailure,
    errno.ENETUNREACH: ConnectionFailure,
    errno.ENETDOWN: ConnectionFailure,
    errno.EHOSTUNREACH: ConnectionFailure,
    errno.EHOSTDOWN: ConnectionFailure,
    errno.EADDRNOTAVAIL: ConnectionFailure,  # ephemeral ports exhausted
    errno.ETIMEDOUT: TimeoutFailure,
}
"""OS ``errno`` → class. Checked before the class-name table."""

HTTP_STATUS_RETRYABLE: Mapping[int, bool] = {
    400: False,
    401: False,
    403: False,
    404: False,
    405: False,
    409: False,
    410: False,
    413: False,
    422: False,
    408: True,  # request timeout
    425: True,  # too early
    429: True,  # too many requests (honour Retry-After)
    500: True,
    502: True,
    503: True,  # (honour Retry-After)
    504: True,
}
"""HTTP status → retryable. Statuses not listed: 5xx retryable, others not."""


def classify(
    exc: BaseException,
    *,
    context: Mapping[str, Any] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> ResilienceError:
    """Return the :class:`ResilienceError` for ``exc`` (``exc`` itself if it is one).

    ``context`` is merged into the error's context (existing keys win). The
    returned error has ``exc`` as ``__cause__``. ``clock.wall()`` is only read
    to turn an HTTP-date ``Retry-After`` into seconds when the response carries
    no ``Date`` header.
    """
    if isinstance(exc, ResilienceError):
        if context:
            for key, value in context.items():
                exc.context.setdefault(key, value)
        return exc
    error = _translate(exc, clock)
    error.context.setdefault("exception_type", _qualified_name(type(exc)))
    if context:
        for key, value in context.items():
            error.context.setdefault(key, value)
    error.__cause__ = exc
    return error


def parse_retry_after(value: str | None, *, now_wall_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date).

    ``now_wall_s`` is the Unix time the date is measured from (ideally the
    response's own ``Date``). Returns ``None`` for a missing or unparsable
    value; a date in the past gives ``0.0``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, when.timestamp() - now_wall_s)


def _translate(exc: BaseException, clock: Clock) -> ResilienceError:
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5 and _is_database_error(exc):
        return _from_sqlstate(sqlstate, message)
    if isinstance(exc, OSError) and exc.errno is not None:
        by_errno = ERRNO_CLASSES.get(exc.errno)
        if by_errno is not None:
            return by_errno(message)
    names = [_short_name(cls) for cls in type(exc).__mro__]
    if "httpx.HTTPStatusError" in names:
        return _from_http_status(exc, clock)
    if ("redis.ResponseError" in names or "valkey.ResponseError" in names) and str(exc).startswith(
        REDIS_RETRYABLE_REPLY_PREFIXES
    ):
        return ConnectionFailure(message)
    for name in names:
        mapped = EXCEPTION_NAMES.get(name)
        if mapped is not None:
            if issubclass(mapped, DatabaseError):
                return mapped(message, sqlstate=sqlstate if isinstance(sqlstate, str) else None)
            return mapped(message)
    if isinstance(sqlstate, str) and _is_database_error(exc):
        return DatabaseError(message, sqlstate=sqlstate)
    return ResilienceError(message, retryable=False, recovery=Recovery.ABORT)


def _from_sqlstate(sqlstate: str, message: str) -> DatabaseError:
    cls = SQLSTATE_EXACT.get(sqlstate) or SQLSTATE_CLASS.get(sqlstate[:2]) or DatabaseError
    error = cls(message, sqlstate=sqlstate)
    error.context["sqlstate"] = sqlstate
    return error


def _from_http_status(exc: BaseException, clock: Clock) -> UpstreamHTTPError:
    response: Any = getattr(exc, "response", None)
    request: Any = getattr(exc, "request", None)
    status = int(getattr(response, "status_code", 0) or 0)
    retryable = HTTP_STATUS_RETRYABLE.get(status, status >= 500)
    headers: Any = getattr(response, "headers", None) or {}
    now_wall_s = _http_date_s(headers.get("date"))
    if now_wall_s is None:
        now_wall_s = clock.wall()
    retry_after_s = parse_retry_after(headers.get("retry-after"), now_wall_s=now_wall_s)
    context: dict[str, Any] = {"status": status}
    if request is not None:
        context["method"] = str(request.method)
        url = request.url
        context["url"] = f"{url.scheme}://{url.host}{url.path}"  # no query: may hold secrets
    if retry_after_s is not None:
        context["retry_after_s"] = retry_after_s
    return UpstreamHTTPError(
        status,
        retry_after_s=retry_after_s,
        message=f"upstream answered HTTP {status}",
        retryable=retryable,
        recovery=Recovery.RETRY if retryable else Recovery.ABORT,
        context=context,
    )


def _http_date_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() if when.tzinfo is not None else None


def _is_database_error(exc: BaseException) -> bool:
    root = type(exc).__module__.partition(".")[0]
    return root in ("psycopg", "asyncpg", "psycopg2")


def _short_name(cls: type) -> str:
    return f"{cls.__module__.partition('.')[0]}.{cls.__name__}"


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
