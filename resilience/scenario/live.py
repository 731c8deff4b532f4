"""``resilience run --live``: the running scenario in a browser, pushed as it happens.

:class:`LiveView` is a progress sink (see :mod:`resilience.scenario.progress`)
that also serves a page on ``http://127.0.0.1:<port>/``. The page listens to
``/events`` (server-sent events): every progress snapshot (phase, rate, hit
and fallback rates, breaker state, active faults) is pushed as it comes, and
about once a second the report's own charts (:func:`~resilience.scenario.
reports.html.charts`: latency by path, throughput, rates, breaker band, fault
windows shaded) rendered from the history written so far, with the target's
latest notifications. Nothing polls files: the runner hands its history to the
sink (:meth:`LiveView.attach_history`).

The server runs on its own thread and event loop, so rendering never stalls
the run's loop; each browser has a small queue (oldest update dropped when it
falls behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from resilience.scenario.history import History
from resilience.scenario.progress import Snapshot

__all__ = ["LiveView"]

_QUEUE = 16


class LiveView:
    """A progress sink serving the live page; use as a context manager (one per suite)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        charts_every_s: float = 1.0,
        inner: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.charts_every_s = charts_every_s
        self.inner = inner
        self.url = ""
        self._history: Callable[[], History] | None = None
        self._last_charts = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.Queue[str]] = set()
        self._latest: dict[str, Any] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.pushed = 0

    # -- the sink (called on the run's loop) ----------------------------------------

    def attach_history(self, history: Callable[[], History]) -> None:
        """The runner's history so far (called once per scenario run)."""
        self._history = history
        self._last_charts = 0.0

    def __call__(self, snapshot: Snapshot) -> None:
        if self.inner is not None:
            self.inner(snapshot)
        history = None
        now = time.monotonic()
        if self._history is not None and now - self._last_charts >= self.charts_every_s:
            self._last_charts = now
            with contextlib.suppress(Exception):  # a history being written may be incomplete
                history = self._history()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._publish, snapshot, history)

    # -- the server (its own thread and loop) -----------------------------------------

    def _publish(self, snapshot: Snapshot, history: History | None) -> None:
        update: dict[str, Any] = {
            "snapshot": {
                "scenario": snapshot.scenario,
                "t_s": round(snapshot.t_s, 2),
                "duration_s": snapshot.duration_s,
                "phase": snapshot.phase,
                "rate": round(snapshot.rate, 1),
                "hit_rate": snapshot.hit_rate,
                "fallback_rate": snapshot.fallback_rate,
                "breaker": snapshot.breaker,
                "faults": list(snapshot.faults),
                "ops": snapshot.ops,
                "errors": snapshot.errors,
            }
        }
        if history is not None:
            from resilience.scenario.reports.html import charts

            update["charts"] = charts(history) if history.ops else ""
            update["notifications"] = _notifications(history)
        self._latest.update(update)
        self._send(json.dumps(update))

    def _send(self, data: str) -> None:
        self.pushed += 1
        for queue in self._clients:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(data)

    async def _events(self) -> AsyncIterator[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(_QUEUE)
        self._clients.add(queue)
        try:
            if self._latest:
                yield f"data: {json.dumps(self._latest)}\n\n"
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), 15.0)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {data}\n\n"
        finally:
            self._clients.discard(queue)

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.responses import HTMLResponse, StreamingResponse
        from starlette.routing import Route

        async def page(_: Any) -> HTMLResponse:
            return HTMLResponse(_PAGE)

        async def events(_: Any) -> StreamingResponse:
            return StreamingResponse(
                self._events(),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )

        return Starlette(routes=[Route("/", page), Route("/events", events)])

    def __enter__(self) -> LiveView:
        import uvicorn

        config = uvicorn.Config(
            self._app(), host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._server.serve())
            finally:
                self._loop = None
                loop.close()

        self._thread = threading.Thread(target=serve, name="live-view", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if not self._server.started:
            raise RuntimeError(f"the live view could not listen on {self.host}:{self.port}")
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{port}/"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # open event streams never end on their own
        if self._thread is not None:
            self._thread.join(10.0)


def _notifications(history: History, last: int = 30) -> list[dict[str, Any]]:
    out = []
    for record in history.notify[-last:]:
        event = record.get("event")
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "error":
            text = f"{event.get('severity')} in {event.get('component')}: {event.get('message')}"
        elif kind == "alert":
            text = f"alert {event.get('name')} {event.get('state')} ({event.get('summary')})"
        elif kind == "health":
            text = f"health {event.get('previous')} → {event.get('status')}"
        elif kind == "breaker":
            text = f"breaker {event.get('from_state')} → {event.get('to_state')}"
        else:
            text = str(kind)
        out.append({"t_s": round(float(record["t_us"]) / 1e6, 2), "type": kind, "text": text})
    return out[::-1]


_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>resilience – live</title><style>
body{font-family:system-ui,sans-serif;margin:20px;color:#212529;max-width:1000px}
#status span{display:inline-block;margin-right:14px}.closed{color:#2b8a3e}.open{color:#c92a2a;
font-weight:700}.half_open{color:#e67700}.faults{color:#862e9c}.chart{width:100%;height:auto;
border:1px solid #f1f3f5}#notes{font-size:13px;max-height:220px;overflow:auto}
#notes .error{color:#c92a2a}#notes .alert{color:#e67700}#notes .health{color:#1971c2}
</style></head><body>
<h1 id="title">waiting for the run…</h1>
<div id="status"></div><h2>Charts</h2><div id="charts"></div>
<h2>Notifications</h2><ul id="notes"></ul>
<script>
const pct = v => v === null || v === undefined ? "–" : (v * 100).toFixed(1) + " %";
let updates = 0;
const source = new EventSource("events");
source.onmessage = (message) => {
  const u = JSON.parse(message.data);
  updates += 1;
  document.body.dataset.updates = updates;
  const s = u.snapshot;
  if (s) {
    document.getElementById("title").textContent = s.scenario;
    document.getElementById("status").innerHTML =
      `<span>t = ${s.t_s.toFixed(1)} / ${s.duration_s} s</span><span>${s.phase}</span>` +
      `<span>${s.rate.toFixed(0)} ops/s</span><span>hit ${pct(s.hit_rate)}</span>` +
      `<span>fallback ${pct(s.fallback_rate)}</span>` +
      `<span class="${s.breaker}">breaker ${s.breaker}</span>` +
      `<span class="faults">faults: ${s.faults.length ? s.faults.join(", ") : "none"}</span>` +
      `<span>errors ${s.errors}</span>`;
  }
  if (u.charts !== undefined) {
    document.getElementById("charts").innerHTML = u.charts;
    document.body.dataset.chartUpdates = (+(document.body.dataset.chartUpdates || 0)) + 1;
  }
  if (u.notifications) {
    document.getElementById("notes").innerHTML = u.notifications.map(
      n => `<li class="${n.type}">${n.t_s.toFixed(1)} s – ${n.text.replace(/</g, "&lt;")}</li>`
    ).join("");
  }
};
</script></body></html>
"""
