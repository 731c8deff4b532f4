"""``http_error`` (extension): answers a share of requests with an error response.

Attributes: ``status`` (100–599, default 503), ``body`` (text, default
empty), ``headers`` (name → value, e.g. ``{"Retry-After": "2"}``), and the
filters every HTTP toxic has (``methods``, ``paths``, ``exclude``, ``rate``;
see :mod:`.http_stage`); typed attributes, unknown names refused. Anchors:
xk6-disruptor's errorCode/errorRate/errorBody, Chaos Mesh HTTPChaos
``replace``, Envoy's fault filter ``abort``.

``stream: upstream``: a matching request never reaches the server; once it
has been read whole the proxy answers it (after the answers to any requests
pipelined ahead of it), and the connection stays open for the next request.
``stream: downstream``: the request reaches the server, and its response is
replaced by the error (the server did the work, the client sees a failure:
the fault that tests idempotent retries).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resilience.proxy.wire.http1 import Head

from .base import Chunk, ToxicSpec, monotonic_s
from .http_stage import (
    FILTER_ATTRIBUTES,
    FILTER_DEFAULTS,
    FILTER_KINDS,
    HttpStage,
    HttpState,
    build_response,
    check_filters,
    inert_at_rate_0,
)

__all__ = ["SPEC", "HttpErrorStage"]


class HttpErrorStage(HttpStage):
    __slots__ = ()
    type_name = "http_error"

    def _response(self, head: Head) -> bytes:
        attrs = self.attrs
        return build_response(
            int(attrs["status"]),
            str(attrs["body"]).encode(),
            attrs["headers"],
            head_only=head.method.upper() == "HEAD",
            toxic=self.type_name,
        )

    def act(self, head: Head, arrived_s: float) -> None:
        st: HttpState = self.state
        st.dropping = True
        if not self.ctx.is_upstream:  # replace the server's response
            self.send(Chunk(self._response(head), monotonic_s()), 0.0)

    def act_end(self, head: Head) -> None:
        if self.ctx.is_upstream:
            self.reply(self._response(head), close=head.closes)


def _check(attrs: Mapping[str, Any]) -> str | None:
    status = attrs["status"]
    if not 100 <= status <= 599:
        return f"http_error status must be 100-599 (got {status})"
    for name, value in attrs["headers"].items():
        if not name or ":" in name or any(c in name + value for c in "\r\n\0"):
            return f"http_error headers: {name!r} is not a header name with a one-line value"
    return check_filters("http_error", attrs)


SPEC = ToxicSpec(
    "http_error",
    (*FILTER_ATTRIBUTES, "status", "body", "headers"),
    HttpErrorStage,
    "answers a share of matching HTTP requests with status/body/headers (extension)",
    check=_check,
    kinds={**FILTER_KINDS, "status": "int64", "body": "string", "headers": "map[string]string"},
    defaults={**FILTER_DEFAULTS, "status": 503, "body": "", "headers": {}},
    strict=True,
    inert=inert_at_rate_0,
)
