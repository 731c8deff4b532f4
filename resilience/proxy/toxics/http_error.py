"""``http_error`` (extension): answers a share of requests with an error response.

Attributes: ``status`` (100–599, default 503), ``body`` (text, default
empty), ``headers`` (name → value, e.g. ``{"Retry-After": "2"}``), and the
filters every HTTP toxic has (``methods``, ``paths``, ``exclude``, ``rate``;
see :mod:`.http_stage`). Anchors: xk6-disruptor's errorCode/errorRate/
errorBody, Chaos Mesh HTTPChaos ``replace``, Envoy's fault filter ``abort``.

``stream: upstream``: a matching request never reaches the server; once it
has been read whole the proxy answers it (after the answers to any requests
pipelined ahead of it), and the connection stays open for the next request.
``stream: downstream``: the request reaches the server, and its response is
replaced by the error (the server did the work, the client sees a failure:
the fault that tests idempotent retries).
"""

from __future__ import annotations

from pydantic import Field

from .base import Chunk, ToxicSpec, monotonic_s
from .http_framing import Head
from .http_stage import HttpAttributes, HttpStage, HttpState, attribute_codec, build_response

__all__ = ["SPEC", "HttpErrorAttributes", "HttpErrorStage"]


class HttpErrorAttributes(HttpAttributes):
    status: int = Field(503, ge=100, le=599)
    body: str = ""
    headers: dict[str, str] = Field(default_factory=dict)


class HttpErrorStage(HttpStage):
    __slots__ = ()
    model = HttpErrorAttributes
    type_name = "http_error"

    def _response(self, head: Head) -> bytes:
        config = self.config
        assert isinstance(config, HttpErrorAttributes)
        return build_response(
            config.status,
            config.body.encode(),
            config.headers,
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


_DECODE, _DEFAULTS = attribute_codec("http_error", HttpErrorAttributes)

SPEC = ToxicSpec(
    "http_error",
    tuple(_DEFAULTS),
    HttpErrorStage,
    "answers a share of matching HTTP requests with status/body/headers (extension)",
    decode=_DECODE,
    defaults=_DEFAULTS,
)
