"""API errors: one ``(message, status)`` type with named kinds.

The HTTP layer turns an :class:`ApiError` into the real server's error body
``{"error": message, "status": status}``. The messages below are the exact
strings of Toxiproxy 2.12 (TOXIPROXY.md §4, §11).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ApiError",
    "ApiErrorKind",
    "ErrBodyTooLarge",
    "ErrInvalidStream",
    "ErrInvalidToxicType",
    "ErrMissingName",
    "ErrMissingUpstream",
    "ErrProxyExists",
    "ErrProxyNotFound",
    "ErrToxicExists",
    "ErrToxicNotFound",
]


class ApiError(Exception):
    """A failed API call: ``message`` goes to the client with HTTP ``status``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"ApiError({self.message!r}, {self.status})"


@dataclass(frozen=True)
class ApiErrorKind:
    """A named error; calling it makes a fresh :class:`ApiError`."""

    message: str
    status: int

    def __call__(self, suffix: str = "") -> ApiError:
        return ApiError(self.message + suffix, self.status)


ErrMissingName = ApiErrorKind("missing required field: name", 400)
ErrMissingUpstream = ApiErrorKind("missing required field: upstream", 400)
ErrProxyNotFound = ApiErrorKind("proxy not found", 404)
ErrProxyExists = ApiErrorKind("proxy already exists", 409)
ErrInvalidStream = ApiErrorKind("stream was invalid, can be either upstream or downstream", 400)
ErrInvalidToxicType = ApiErrorKind("invalid toxic type", 400)
ErrToxicExists = ApiErrorKind("toxic already exists", 409)
ErrToxicNotFound = ApiErrorKind("toxic not found", 404)
ErrBodyTooLarge = ApiErrorKind("request body too large", 413)


def bad_request_body(detail: str) -> ApiError:
    """400 ``bad request body: <detail>`` (detail is Go's JSON error text)."""
    return ApiError(f"bad request body: {detail}", 400)
