"""Protocol toxics in scenarios: validation, arming before the service connects, refusal.

The controller runs against our real proxy server process; the refusal of the
real ``toxiproxy-server`` (which answers 404 to ``GET /toxic_types``, see
TOXIPROXY.md §2) is shown with a loopback server that answers as it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from resilience.proxy import ProxyServerProcess
from resilience.proxy.client import AsyncToxiproxyClient
from resilience.scenario.faults import FaultControlError, ToxiproxyFaultController
from resilience.scenario.loader import ScenarioError, parse_scenario
from resilience.scenario.model import FaultSpec

SCENARIO = """
name: protocol
description: a scenario with a protocol toxic, long enough to state its intent
workload: {{duration: 10s, rate: 10}}
faults:
  - name: ser
    at: 2s
    duration: 2s
    target: postgres
    toxic: postgres_error
{stream}    attributes: {{sqlstate: "40001", rate: 0.2, prefix: "INSERT INTO jobs"}}
"""


def test_a_protocol_toxic_without_upstream_stream_is_refused_naming_the_fix() -> None:
    with pytest.raises(ScenarioError, match="add 'stream: upstream'"):
        parse_scenario(SCENARIO.format(stream=""))


def test_a_protocol_toxic_takes_string_and_share_attributes() -> None:
    scenario = parse_scenario(SCENARIO.format(stream="    stream: upstream\n"))
    assert scenario.faults[0].attributes == {
        "sqlstate": "40001",
        "rate": 0.2,
        "prefix": "INSERT INTO jobs",
    }


@pytest.fixture(scope="module")
def proxy_server() -> Iterator[ProxyServerProcess]:
    with ProxyServerProcess(seed=7) as proc:
        yield proc


def _fault() -> FaultSpec:
    scenario = parse_scenario(SCENARIO.format(stream="    stream: upstream\n"))
    return scenario.faults[0]


async def _rate(client: AsyncToxiproxyClient) -> Any:
    toxics = await client.toxics("postgres")
    return [t.attributes["rate"] for t in toxics]


async def test_armed_protocol_toxic_waits_at_rate_zero_and_the_window_sets_its_rate(
    proxy_server: ProxyServerProcess,
) -> None:
    async with AsyncToxiproxyClient(proxy_server.api_url) as client:
        await client.create_proxy("postgres", listen="127.0.0.1:0", upstream="127.0.0.1:9")
        await _window(client)


async def _window(client: AsyncToxiproxyClient) -> None:
    controller = ToxiproxyFaultController(client)
    fault = _fault()
    await controller.check_supported([fault])
    await controller.arm([fault])
    assert await _rate(client) == [0]
    await controller.apply(fault)
    assert await _rate(client) == [pytest.approx(0.2)]
    await controller.clear(fault)
    assert await _rate(client) == [0]
    await controller.clear_all()
    assert await _rate(client) == []
    await controller.apply(fault)  # after a reset it is added the ordinary way
    assert await _rate(client) == [pytest.approx(0.2)]


async def test_the_real_toxiproxy_is_refused_before_the_run_with_what_to_do() -> None:
    async def real_toxiproxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # any path it does not know: Go's 404
        writer.write(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 19\r\n\r\n404 page not found\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(real_toxiproxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, AsyncToxiproxyClient(f"http://127.0.0.1:{port}") as api:
        controller = ToxiproxyFaultController(api)
        with pytest.raises(FaultControlError, match="real toxiproxy-server does not have it"):
            await controller.check_supported([_fault()])
