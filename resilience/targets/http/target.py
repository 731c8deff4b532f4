"""An HTTP service as a :class:`~resilience.targets.base.Target`.

Its operations are the scenario's ``workload.requests`` (by name); each
call renders the request (:mod:`.render`), sends it and classifies the
answer (:mod:`.classify`). Latency is measured at the client, from just
before the request is sent to the end of the body, on
:func:`time.perf_counter`. ``status`` is the HTTP code (0 for a timeout or a
connection error, whose outcome is ``error`` with path ``timeout`` or
``connection``).

The client is :class:`~.client.HttpClient` (keep-alive connections framed
by httptools, at most ``concurrency`` of them, no cookies, no redirects):
the open-model generator must not be what limits a run; its module says why
not a general client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from time import perf_counter
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson

from resilience.targets.base import Call, Observation, TargetLoss
from resilience.targets.http.classify import classify
from resilience.targets.http.client import HttpClient, HttpClientError
from resilience.targets.http.process import TargetProcess, log_tail
from resilience.targets.http.prometheus import ScrapeError, parse_exposition
from resilience.targets.http.render import RequestTemplate
from resilience.targets.http.templates import fill

__all__ = ["KIND", "HttpTarget"]

KIND = "http"
PROBE_TIMEOUT_S = 2.0
"""How long the liveness probe of an unresponsive target waits for ``GET ready``."""
_new_observation = tuple.__new__


class HttpTarget:
    """Requests to ``base_url``; :meth:`aclose` closes the client (not the process)."""

    kind = KIND

    def __init__(
        self,
        base_url: str,
        requests: Sequence[Any],
        *,
        seed: int,
        concurrency: int = 512,
        process: TargetProcess | None = None,
        checks: Sequence[Any] = (),
        keys: Sequence[str] = (),
        metrics_path: str | None = None,
        ready_path: str = "/health",
        unresponsive_after_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._templates = {spec.name: RequestTemplate(spec, seed) for spec in requests}
        self._concurrency = concurrency
        self._client = HttpClient(self.base_url, limit=concurrency)
        self.process = process
        self._checks = list(checks)
        self._keys = list(keys) or ["missing-key"]
        self.metrics_path = metrics_path
        self.ready_path = ready_path
        self.unresponsive_after_s = unresponsive_after_s
        self._answered_at = perf_counter()  # when the target last answered anything
        self._timeouts_in_row = 0  # requests timed out since then
        self.sent = 0
        self.answered = 0
        self.failed = 0
        self.hit_paths: frozenset[str] = frozenset({"cache", "redis"})
        self.degraded_outcomes: frozenset[str] = frozenset({"degraded"})
        self.live_op: str | None = None

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(self._templates)

    async def get(self, path: str, timeout_s: float) -> tuple[int, float]:
        """``GET path`` → ``(status, seconds)``; raises on a timeout or connection error."""
        t0 = perf_counter()
        answer = await self._client.request("GET", path, timeout_s=timeout_s)
        self._answered_at = now = perf_counter()
        return answer.status, now - t0

    async def fetch(self, path: str, timeout_s: float) -> tuple[int, bytes]:
        """``GET path`` → ``(status, body)`` (scrapes); raises on timeout or connection error."""
        answer = await self._client.request("GET", path, timeout_s=timeout_s)
        self._answered_at = perf_counter()
        return answer.status, answer.body

    async def call(self, call: Call) -> Observation:
        template = self._templates.get(call.op)
        if template is None:
            return Observation("error", "", f"no request named {call.op!r}", 0, 0)
        method, path, query, headers, json_body, body = template.render(call)
        if query:
            path += ("&" if "?" in path else "?") + urlencode(query, quote_via=quote)
        payload: bytes | None = None
        if json_body is not None:
            payload = orjson.dumps(json_body)
            headers = _with_content_type(headers, "application/json")
        elif body is not None:
            payload = body.encode()
            headers = _with_content_type(headers, "text/plain; charset=utf-8")
        self.sent += 1
        t0 = perf_counter()
        try:
            answer = await self._client.request(
                method, path, headers=headers, body=payload, timeout_s=template.timeout_s
            )
        except TimeoutError:
            self.failed += 1
            self._timeouts_in_row += 1
            latency_us = int((perf_counter() - t0) * 1e6)
            return Observation("error", "timeout", "timeout", latency_us, 1, 0)
        except (HttpClientError, ValueError) as exc:
            self.failed += 1
            latency_us = int((perf_counter() - t0) * 1e6)
            path = "connection" if isinstance(exc, HttpClientError) else "invalid"
            return Observation("error", path, f"{path}: {exc}", latency_us, 1, 0)
        self._answered_at = t1 = perf_counter()
        self._timeouts_in_row = 0
        self.answered += 1
        status = answer.status
        outcome, path, reason = classify(template.spec, status, answer.headers, answer.body)
        latency_us = int((t1 - t0) * 1e6)
        return _new_observation(Observation, (outcome, path, reason, latency_us, 1, status))

    async def probe(self, count: int, *, attempt: int, from_tail: bool) -> list[str]:
        """The ``steady_state.http`` checks (``count`` is the reference probes' and unused).

        ``{key}`` is a known key: the most popular one, or with ``from_tail``
        a rarely used one (a different one on each attempt).
        """
        del count
        keys = self._keys
        key = keys[-1 - (attempt % len(keys))] if from_tail else keys[attempt % len(keys)]
        failures: list[str] = []
        for check in self._checks:
            path = fill(check.get, {"key": quote(key, safe=""), "seq": "0"}, field="steady_state")
            try:
                status, took_s = await self.get(path, max(float(check.within), 0.001) + 5.0)
            except (TimeoutError, HttpClientError) as exc:
                failures.append(f"GET {path}: {type(exc).__name__} {exc}".strip())
                continue
            if status != check.status:
                failures.append(f"GET {path}: status {status}, expected {check.status}")
            elif took_s > float(check.within):
                failures.append(
                    f"GET {path}: took {took_s * 1000:.1f} ms, more than {check.within * 1000:g} ms"
                )
        return failures

    async def scrape(self, timeout_s: float = 5.0) -> dict[str, float]:
        """The target's Prometheus metrics now (``series → value``); raises when unreadable."""
        if self.metrics_path is None:
            return {}
        status, body = await self.fetch(self.metrics_path, timeout_s)
        if not 200 <= status < 300:
            raise ScrapeError(f"GET {self.metrics_path} answered {status}")
        return parse_exposition(body.decode("utf-8", "replace"))

    def stats(self) -> Mapping[str, Any]:
        return {"sent": self.sent, "answered": self.answered, "failed": self.failed}

    async def watch(self, *, poll_s: float = 0.5, silence_s: float = 5.0) -> TargetLoss:
        """Return (with the reason) when the target is gone during a run.

        Gone: its process exited; nothing accepted a connection at its
        address for ``silence_s``; or it is *unresponsive* — no request was
        answered for ``unresponsive_after_s``, the requests sent meanwhile
        timed out, and a ``GET`` of the ready path got no answer within
        ``PROBE_TIMEOUT_S`` either (a stopped or deadlocked process still
        accepts connections: the kernel queues them). A service that answers
        errors (its database is down) is alive, and so is one that answers
        slowly but answers.
        """
        parts = urlsplit(self.base_url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        silent_since: float | None = None
        while True:
            if self.process is not None and self.process.exit_code() is not None:
                return TargetLoss("exited", self.process.describe_exit())
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
                writer.close()
                silent_since = None
            except (OSError, TimeoutError):
                now = time.monotonic()
                silent_since = silent_since if silent_since is not None else now
                if now - silent_since >= silence_s:
                    if self.process is not None and self.process.exit_code() is not None:
                        return TargetLoss("exited", self.process.describe_exit())
                    return TargetLoss(
                        "unresponsive",
                        f"the target stopped answering: nothing accepted a connection at "
                        f"{host}:{port} for {silence_s:g}s",
                    )
            silent_for = perf_counter() - self._answered_at
            if self._timeouts_in_row and silent_for >= self.unresponsive_after_s:
                loss = await self._probe_unresponsive(silent_for)
                if loss is not None:
                    return loss
            await asyncio.sleep(poll_s)

    async def _probe_unresponsive(self, silent_for: float) -> TargetLoss | None:
        """The loss, when ``GET ready`` goes unanswered too; ``None`` when it answers."""
        timeouts = self._timeouts_in_row
        try:
            await self.get(self.ready_path, PROBE_TIMEOUT_S)
            return None  # answered (any status): slow or failing, not gone
        except HttpClientError:
            return None  # refused: the connection watch decides
        except TimeoutError:
            pass
        detail = (
            f"the target stopped answering: no request answered for {silent_for:.1f}s "
            f"({timeouts} timed out in a row) and GET {self.ready_path} got no answer "
            f"within {PROBE_TIMEOUT_S:g}s (target.unresponsive_after: "
            f"{self.unresponsive_after_s:g}s)"
        )
        if self.process is not None:
            state = self.process.state()
            if state is not None:
                detail += f"; its process is {state}"
            tail = log_tail(self.process.log_path)
            detail += (
                f"; last lines of {self.process.log_path}:\n{tail}"
                if tail
                else f" (log: {self.process.log_path})"
            )
        return TargetLoss("unresponsive", detail)

    async def aclose(self) -> None:
        """Close the connections (a later request opens new ones)."""
        client, self._client = self._client, HttpClient(self.base_url, limit=self._concurrency)
        await client.aclose()

    def __repr__(self) -> str:
        return f"HttpTarget({self.base_url!r}, operations={list(self._templates)})"


def _with_content_type(headers: dict[str, str], value: str) -> dict[str, str]:
    """``headers`` with ``Content-Type: value`` unless they name one already."""
    if any(name.lower() == "content-type" for name in headers):
        return headers
    return {**headers, "Content-Type": value}
