"""``resilience run --live``: the page in a real headless Chromium, driven over DevTools."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from resilience.scenario.live import LiveView
from resilience.scenario.loader import parse_scenario
from resilience.scenario.runner import run_scenario
from resilience.scenario.testing import fake_stack

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

SCENARIO = """\
name: live-demo
workload:
  duration: 6s
  warmup: 0.5s
  rate: 100
faults:
  - name: pg-down
    at: 2s
    duration: 2s
    target: postgres
    action: disable
"""


class _DevTools:
    """The few Chrome DevTools protocol calls the test needs, over one page's WebSocket."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        await self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(await self._ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(message["error"])
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        answer = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return answer["result"].get("value")


async def _page_socket(profile: Path, process: asyncio.subprocess.Process) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError("chromium did not open its DevTools port")
        await asyncio.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            pages = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
            pages = [p for p in pages if p.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
            await asyncio.sleep(0.1)
    raise RuntimeError("chromium opened no page")


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian: apt-get install chromium)"
)
async def test_live_page_updates_its_charts_and_shades_the_fault_in_a_browser(
    tmp_path: Path,
) -> None:
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    with LiveView(charts_every_s=0.5) as view:
        process = await asyncio.create_subprocess_exec(
            *[
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--window-size=1100,1400",
                view.url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            socket_url = await _page_socket(profile, process)
            async with websockets.connect(socket_url, max_size=None) as ws:
                page = _DevTools(ws)
                for _ in range(100):  # the page loaded and its event stream is open
                    if await page.evaluate("document.getElementById('status') !== null"):
                        break
                    await asyncio.sleep(0.1)
                run = asyncio.create_task(
                    run_scenario(
                        parse_scenario(SCENARIO),
                        stack=fake_stack(reset_timeout_s=0.5),
                        history_path=tmp_path / "history.jsonl",
                        progress=view,
                    )
                )
                seen: list[tuple[int, int, str]] = []
                while not run.done():
                    await asyncio.sleep(0.5)
                    state = await page.evaluate(
                        "[+(document.body.dataset.chartUpdates || 0),"
                        " document.querySelectorAll('#charts svg rect.fault').length,"
                        " document.getElementById('status').textContent]"
                    )
                    seen.append((state[0], state[1], state[2]))
                result = await run
                await asyncio.sleep(0.3)
                shot = await page.call("Page.captureScreenshot", format="png")
                (tmp_path / "live.png").write_bytes(base64.b64decode(shot["data"]))
                title = await page.evaluate("document.getElementById('title').textContent")
        finally:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
    chart_updates = [s[0] for s in seen]
    fault_bands = [s[1] for s in seen]
    assert result.status == "completed"
    assert title == "live-demo"
    assert chart_updates[-1] >= 4
    assert len(set(chart_updates)) >= 3  # the charts kept changing during the run
    assert fault_bands[0] == 0
    assert max(fault_bands) >= 1  # the pg-down window appears shaded while it happens
    assert any("pg-down" in s[2] for s in seen)  # the active fault in the status line
    assert (tmp_path / "live.png").stat().st_size > 10_000
