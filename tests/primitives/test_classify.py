"""The classifier on real driver exception types (constructed, not raised by a server)."""

from __future__ import annotations

import asyncio
import errno
import socket
import subprocess
import sys

import asyncpg.exceptions
import httpx
import psycopg
import psycopg.errors
import pytest
import redis.exceptions

from resilience.classify import (
    HTTP_STATUS_RETRYABLE,
    SQLSTATE_EXACT,
    classify,
    parse_retry_after,
)
from resilience.clock import ManualClock
from resilience.errors import (
    ConnectionFailure,
    ConnectionLost,
    DatabaseError,
    DeadlockDetected,
    InvalidSlug,
    LockTimeout,
    NotFound,
    QueryCancelled,
    Recovery,
    ResilienceError,
    SerializationFailure,
    TimeoutFailure,
    UpstreamHTTPError,
)

SQLSTATE_CASES = [
    ("40001", SerializationFailure),
    ("40P01", DeadlockDetected),
    ("55P03", LockTimeout),
    ("57014", QueryCancelled),
    ("08000", ConnectionLost),
    ("08003", ConnectionLost),
    ("08006", ConnectionLost),
    ("57P01", ConnectionLost),
    ("53300", ConnectionLost),
]


@pytest.mark.parametrize(("sqlstate", "expected"), SQLSTATE_CASES)
def test_psycopg_errors_map_by_sqlstate(sqlstate: str, expected: type[DatabaseError]) -> None:
    original = psycopg.errors.lookup(sqlstate)("boom")
    error = classify(original)
    assert type(error) is expected
    assert error.sqlstate == sqlstate
    assert error.retryable
    assert error.recovery is Recovery.RETRY
    assert error.__cause__ is original


@pytest.mark.parametrize(("sqlstate", "expected"), SQLSTATE_CASES)
def test_asyncpg_errors_map_by_sqlstate(sqlstate: str, expected: type[DatabaseError]) -> None:
    by_state = {
        getattr(cls, "sqlstate", None): cls
        for cls in vars(asyncpg.exceptions).values()
        if isinstance(cls, type) and issubclass(cls, Exception)
    }
    original = by_state[sqlstate]("boom")
    error = classify(original)
    assert type(error) is expected
    assert error.sqlstate == sqlstate
    assert error.retryable


def test_connection_lost_is_also_a_connection_failure() -> None:
    error = classify(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert isinstance(error, ConnectionFailure)
    assert isinstance(error, DatabaseError)


@pytest.mark.parametrize("sqlstate", ["23505", "42601", "22P02", "42P01"])
def test_other_sqlstates_are_non_retryable_database_errors(sqlstate: str) -> None:
    error = classify(psycopg.errors.lookup(sqlstate)("bad"))
    assert type(error) is DatabaseError
    assert error.sqlstate == sqlstate
    assert not error.retryable
    assert error.recovery is Recovery.ABORT


def test_psycopg_operational_error_without_sqlstate_is_connection_lost() -> None:
    error = classify(psycopg.OperationalError("connection refused"))
    assert isinstance(error, ConnectionLost)
    assert error.sqlstate is None
    assert error.retryable


def test_psycopg_connection_timeout_is_a_timeout() -> None:
    assert type(classify(psycopg.errors.ConnectionTimeout("slow"))) is TimeoutFailure


def test_asyncpg_interface_error_is_not_retried() -> None:
    error = classify(asyncpg.exceptions.InterfaceError("another operation is in progress"))
    assert not error.retryable
    assert error.recovery is Recovery.ABORT


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        (redis.exceptions.ConnectionError("refused"), ConnectionFailure),
        (redis.exceptions.TimeoutError("timed out"), TimeoutFailure),
        (redis.exceptions.BusyLoadingError("loading dataset"), ConnectionFailure),
        (redis.exceptions.ResponseError("BUSY Redis is busy running a script"), ConnectionFailure),
        (redis.exceptions.ResponseError("LOADING Redis is loading"), ConnectionFailure),
        (
            redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
            ConnectionFailure,
        ),
    ],
)
def test_transient_redis_errors_are_retryable(
    original: Exception, expected: type[ResilienceError]
) -> None:
    error = classify(original)
    assert type(error) is expected
    assert error.retryable
    assert error.__cause__ is original


@pytest.mark.parametrize(
    "original",
    [
        redis.exceptions.ResponseError("WRONGTYPE Operation against a key"),
        redis.exceptions.AuthenticationError("invalid password"),
        redis.exceptions.DataError("bad value"),
    ],
)
def test_permanent_redis_errors_are_not_retryable(original: Exception) -> None:
    error = classify(original)
    assert not error.retryable
    assert error.recovery is Recovery.ABORT


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ECONNREFUSED, ConnectionFailure),
        (errno.ECONNRESET, ConnectionFailure),
        (errno.EPIPE, ConnectionFailure),
        (errno.ETIMEDOUT, TimeoutFailure),
    ],
)
def test_os_errors_map_by_errno(code: int, expected: type[ResilienceError]) -> None:
    original = OSError(code, "socket trouble")
    error = classify(original)
    assert type(error) is expected
    assert error.retryable


def test_unmapped_errno_is_not_retryable() -> None:
    error = classify(OSError(errno.ENOENT, "no such file"))
    assert not error.retryable


@pytest.mark.parametrize(
    "original",
    # the aliases are spelled out on purpose: drivers raise them under these names
    [socket.timeout("t"), asyncio.TimeoutError(), TimeoutError("t")],  # noqa: UP041
)
def test_timeouts_are_timeout_failures(original: Exception) -> None:
    assert type(classify(original)) is TimeoutFailure


def test_a_real_refused_connection_is_a_connection_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connect is refused
        with socket.socket() as client, pytest.raises(OSError) as caught:
            client.connect(("127.0.0.1", port))
    assert type(classify(caught.value)) is ConnectionFailure


def _status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://api.example.test/v1/items?token=secret")
    response = httpx.Response(status, headers=headers or {}, request=request)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        response.raise_for_status()
    return caught.value


@pytest.mark.parametrize("status", [429, 503, 504, 502])
def test_retryable_http_statuses(status: int) -> None:
    error = classify(_status_error(status))
    assert isinstance(error, UpstreamHTTPError)
    assert error.status == status
    assert error.retryable
    assert error.recovery is Recovery.RETRY


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_error_statuses_are_not_retried(status: int) -> None:
    error = classify(_status_error(status))
    assert isinstance(error, UpstreamHTTPError)
    assert not error.retryable
    assert error.recovery is Recovery.ABORT
    assert HTTP_STATUS_RETRYABLE[status] is False


def test_http_context_drops_the_query_string() -> None:
    error = classify(_status_error(503))
    assert error.context["url"] == "https://api.example.test/v1/items"
    assert "secret" not in str(error.to_dict())


def test_retry_after_in_seconds() -> None:
    error = classify(_status_error(429, {"Retry-After": "7"}))
    assert isinstance(error, UpstreamHTTPError)
    assert error.retry_after_s == 7.0


def test_retry_after_as_http_date_is_measured_from_the_response_date() -> None:
    headers = {
        "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
        "Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT",
    }
    error = classify(_status_error(503, headers))
    assert isinstance(error, UpstreamHTTPError)
    assert error.retry_after_s == 30.0


def test_retry_after_as_http_date_without_date_header_uses_the_clock() -> None:
    clock = ManualClock(wall_start=1445412480.0)  # 2015-10-21 07:28:00 GMT
    error = classify(
        _status_error(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:12 GMT"}), clock=clock
    )
    assert isinstance(error, UpstreamHTTPError)
    assert error.retry_after_s == 12.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("", None),
        ("soon", None),
        ("-5", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now_wall_s=1445412480.0) == expected


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        (httpx.ConnectError("refused"), ConnectionFailure),
        (httpx.ReadError("reset"), ConnectionFailure),
        (httpx.ConnectTimeout("slow"), TimeoutFailure),
        (httpx.ReadTimeout("slow"), TimeoutFailure),
        (httpx.RemoteProtocolError("hung up"), ConnectionFailure),
    ],
)
def test_httpx_transport_errors(original: Exception, expected: type[ResilienceError]) -> None:
    assert type(classify(original)) is expected


def test_classified_errors_pass_through_unchanged() -> None:
    original = NotFound("no such slug", context={"slug": "a"})
    assert classify(original, context={"slug": "b", "op": "lookup"}) is original
    assert original.context == {"slug": "a", "op": "lookup"}


def test_invalid_input_passes_through_and_is_not_retryable() -> None:
    original = InvalidSlug("bad slug")
    error = classify(original)
    assert error is original
    assert not error.retryable


def test_unknown_errors_abort_with_the_original_as_cause() -> None:
    original = KeyError("x")
    error = classify(original, context={"operation": "lookup"})
    assert type(error) is ResilienceError
    assert not error.retryable
    assert error.recovery is Recovery.ABORT
    assert error.__cause__ is original
    assert error.context["operation"] == "lookup"
    assert error.context["exception_type"] == "builtins.KeyError"


def test_sqlstate_table_only_holds_retryable_classes() -> None:
    assert all(cls("x").retryable for cls in SQLSTATE_EXACT.values())


def test_importing_classify_imports_no_driver() -> None:
    code = (
        "import sys, resilience.classify, resilience.retry\n"
        "loaded = {'psycopg', 'asyncpg', 'redis', 'httpx'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
