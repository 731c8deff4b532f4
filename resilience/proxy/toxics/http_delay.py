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

from collections.abc import Mapping
from typing import Any

from resilience.proxy.wire.http1 import Head

from .base import ToxicSpec
from .http_stage import (
    FILTER_ATTRIBUTES,
    FILTER_DEFAULTS,
    FILTER_KINDS,
    HttpStage,
    HttpState,
    check_filters,
    inert_at_rate_0,
)

__all__ = ["SPEC", "HttpDelayStage"]


class HttpDelayStage(HttpStage):
    __slots__ = ()
    type_name = "http_delay"

    def act(self, head: Head, arrived_s: float) -> None:
        delay_ms = int(self.attrs["latency"])
        jitter = int(self.attrs["jitter"])
        if jitter > 0:
            delay_ms += self.ctx.rng.randrange(-jitter, jitter)
        st: HttpState = self.state
        st.due_s = arrived_s + max(delay_ms, 0) / 1000.0


def _check(attrs: Mapping[str, Any]) -> str | None:
    for name in ("latency", "jitter"):
        if attrs[name] < 0:
            return f"http_delay {name} must be >= 0 ms (got {attrs[name]})"
    return check_filters("http_delay", attrs)


def _inert(attrs: Mapping[str, Any]) -> bool:
    return inert_at_rate_0(attrs) or (attrs["latency"] <= 0 and attrs["jitter"] <= 0)


SPEC = ToxicSpec(
    "http_delay",
    (*FILTER_ATTRIBUTES, "latency", "jitter"),
    HttpDelayStage,
    "delays matching HTTP requests/responses by latency ± jitter ms (extension)",
    check=_check,
    kinds={**FILTER_KINDS, "latency": "int64", "jitter": "int64"},
    defaults={**FILTER_DEFAULTS, "latency": 0, "jitter": 0},
    strict=True,
    inert=_inert,
)
