"""``http_delay`` (extension): delays matching requests or responses.

Attributes: ``latency`` (ms), ``jitter`` (ms), and the filters every HTTP
toxic has (``methods``, ``paths``, ``exclude``, ``rate``; see
:mod:`.http_stage`). Anchors: xk6-disruptor's averageDelay/delayVariation,
Chaos Mesh HTTPChaos ``delay``, Envoy's fault filter ``delay``.

The delay is drawn per message, uniformly in ``[latency - jitter, latency +
jitter)`` whole milliseconds, and counted from the arrival of the message's
head; its bytes leave no earlier (and, as ever, after everything before
them). ``stream: upstream`` delays the request on its way to the server,
``downstream`` the response on its way to the client. Unlike ``latency``,
other requests on the connection (health checks excluded by a filter, say)
are not delayed except by waiting behind a delayed one.
"""

from __future__ import annotations

from pydantic import Field

from .base import ToxicSpec
from .http_framing import Head
from .http_stage import HttpAttributes, HttpStage, HttpState, attribute_codec

__all__ = ["SPEC", "HttpDelayAttributes", "HttpDelayStage"]


class HttpDelayAttributes(HttpAttributes):
    latency: int = Field(0, ge=0)
    jitter: int = Field(0, ge=0)


class HttpDelayStage(HttpStage):
    __slots__ = ()
    model = HttpDelayAttributes
    type_name = "http_delay"

    def act(self, head: Head, arrived_s: float) -> None:
        config = self.config
        assert isinstance(config, HttpDelayAttributes)
        delay_ms = config.latency
        if config.jitter > 0:
            delay_ms += self.ctx.rng.randrange(-config.jitter, config.jitter)
        st: HttpState = self.state
        st.due_s = arrived_s + max(delay_ms, 0) / 1000.0


_DECODE, _DEFAULTS = attribute_codec("http_delay", HttpDelayAttributes)

SPEC = ToxicSpec(
    "http_delay",
    tuple(_DEFAULTS),
    HttpDelayStage,
    "delays matching HTTP requests/responses by latency ± jitter ms (extension)",
    decode=_DECODE,
    defaults=_DEFAULTS,
)
