"""Every target kind gets the same fault controls (``open_controls``): extension toxics
refused on the real Toxiproxy, process actions on the dependencies' servers."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from resilience.scenario.loader import ScenarioError, parse_scenario
from resilience.scenario.real_stack import open_real_stack
from resilience.scenario.runner import run_scenario
from tests.targets.conftest import TINY_APP

HTTP_WITH_PROTOCOL_TOXIC = f"""\
name: extension-toxic
target: {{command: "{sys.executable} {TINY_APP} {{port}}"}}
dependencies: {{postgres: {{}}, redis: {{}}}}
workload:
  duration: 3s
  rate: 10
  keys: {{values: [a]}}
  requests: [{{name: health, path: /health}}]
faults:
  - {{name: ser, at: 1s, duration: 1s, target: postgres, toxic: postgres_error, stream: upstream,
     attributes: {{sqlstate: "40001", rate: 0.5}}}}
"""


class _Pool:
    """An environment pool handing out ``env``."""

    def __init__(self, env: object) -> None:
        self.env = env

    async def get(self, spec: object) -> object:
        return self.env


async def test_an_http_target_is_refused_extension_toxics_on_the_real_toxiproxy(
    tmp_path: Path,
) -> None:
    async def real_toxiproxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # GET /toxic_types: Go's 404, as toxiproxy-server
        writer.write(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 19\r\n\r\n404 page not found\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(real_toxiproxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = SimpleNamespace(urls=SimpleNamespace(toxiproxy_api=f"http://127.0.0.1:{port}"))
    async with server:
        result = await run_scenario(
            parse_scenario(HTTP_WITH_PROTOCOL_TOXIC),
            stack_factory=lambda s: open_real_stack(s, pool=_Pool(env)),  # type: ignore[arg-type]
            history_path=tmp_path / "h.jsonl",
        )
    assert result.status == "aborted"
    assert result.exit_code == 2
    assert "'postgres_error' is an extension" in (result.error or "")
    assert "real toxiproxy-server does not have it" in (result.error or "")
    assert not (tmp_path / "target.log").exists()  # refused before the service started


def test_a_process_action_on_a_dependency_reached_by_address_is_refused_at_load() -> None:
    text = (
        HTTP_WITH_PROTOCOL_TOXIC.replace(
            "dependencies: {postgres: {}, redis: {}}",
            'dependencies: {payments: {upstream: "127.0.0.1:9000"}}',
        )
        .replace(
            """toxic: postgres_error, stream: upstream,
     attributes: {sqlstate: "40001", rate: 0.5}}""",
            "action: pause}",
        )
        .replace("target: postgres", "target: payments")
    )
    with pytest.raises(ScenarioError, match=r":10: faults\[0\]\.action: action 'pause' acts on"):
        parse_scenario(text)
