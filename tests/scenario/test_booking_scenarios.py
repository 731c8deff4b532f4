"""The booking scenarios: loading and checking (fast), refusal of extension toxics, and
end-to-end runs on the local backend (slow)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from resilience.cli import app
from resilience.proxy import ProxyServerProcess
from resilience.scenario.faults import FaultControlError, ToxiproxyFaultController
from resilience.scenario.loader import ScenarioError, load_scenario, load_suite, parse_scenario
from resilience.scenario.real_stack import _require_booking_api, toxiproxy_client
from resilience.scenario.result import RunSkipped
from resilience.scenario.workload import arrivals
from tests.servers import requires_servers

SUITE = Path(__file__).resolve().parents[2] / "scenarios"
BOOKING = sorted(SUITE.glob("2[0-4]-booking-*.yaml"))

HTTP_FAULT = """\
name: http-fault
description: A scenario with one HTTP toxic on the booking API, used to test the checks.
workload: {{duration: 4s, rate: 10, mix: {{lookup: 0.5, booking: 0.5}}}}
faults:
  - name: errors
    at: 1s
    target: booking-api
    toxic: http_error
    attributes: {attributes}
"""


def test_the_booking_scenarios_are_in_the_default_suite_and_state_their_intent() -> None:
    scenarios = [s for s in load_suite([SUITE]) if s.name.startswith("booking-")]
    assert [s.name for s in scenarios] == [
        "booking-api-down",
        "booking-429-storm",
        "booking-503-30pct",
        "booking-slow-upstream",
        "booking-truncated",
    ]
    for scenario in scenarios:
        assert len(scenario.description) > 40
        assert scenario.workload.mix.booking > 0


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ("{rate: 2}", "'rate' is a share from 0 to 1"),
        ("{colour: red}", "toxic 'http_error' has no attribute 'colour'"),
        ('{status: "x"}', "'status' must be an integer"),
        ("{methods: POST}", "'methods' is a list, e.g. [POST]"),
        ("{status: 700}", "'status' must be from 100 to 599"),
        ("{headers: [Retry-After]}", "'headers' maps names to values"),
    ],
)
def test_bad_http_toxic_attributes_are_named_with_their_line(
    tmp_path: Path, attributes: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HTTP_FAULT.format(attributes=attributes))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert message in str(info.value)
    assert f"{path}:" in str(info.value)


def test_the_booking_weight_of_the_mix_draws_booking_operations() -> None:
    scenario = parse_scenario(HTTP_FAULT.format(attributes="{rate: 0.5}"))
    ops = [a.op for a in arrivals(scenario.workload, ["a", "b"], seed=1)]
    assert {"lookup", "booking"} == set(ops)
    assert 0.3 < ops.count("booking") / len(ops) < 0.7


def test_extension_toxics_run_on_our_proxy_and_are_refused_on_the_real_one() -> None:
    """Our server lists its toxic types (GET /toxic_types); the real Toxiproxy has no such
    route, so a scenario with an http_* toxic is refused before anything is injected."""
    scenario = parse_scenario(HTTP_FAULT.format(attributes="{rate: 0.5}"))

    async def check(api: str) -> None:
        client = toxiproxy_client(api)
        try:
            await ToxiproxyFaultController(client).check_supported(scenario.faults)
        finally:
            await client.aclose()

    with ProxyServerProcess(seed=1) as ours:
        asyncio.run(check(ours.api_url))
        with pytest.raises(FaultControlError) as info:
            asyncio.run(check(f"{ours.api_url}/proxies"))  # answers, but lists no toxic types
    assert "'http_error' is an extension of resilience's own proxy" in str(info.value)


def test_a_booking_scenario_without_the_stub_is_skipped() -> None:
    """External without the stub's URLs: SKIPPED in a suite (as process faults there)."""
    scenario = parse_scenario(HTTP_FAULT.format(attributes="{rate: 0.5}"))
    urls = SimpleNamespace(toxiproxy_api="http://127.0.0.1:9", booking_api="")
    with pytest.raises(RunSkipped, match="needs the booking API stub"):
        _require_booking_api(urls, scenario)


@pytest.mark.slow
@requires_servers
@pytest.mark.parametrize("name", [p.stem for p in BOOKING])
def test_booking_scenario_passes_on_the_local_backend(tmp_path: Path, name: str) -> None:
    out = tmp_path / "report"
    scenario = SUITE / f"{name}.yaml"
    result = CliRunner().invoke(app, ["run", str(scenario), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "PASS"


@pytest.mark.parametrize("name", [p.stem for p in BOOKING])
def test_booking_scenario_passes_in_virtual_time(tmp_path: Path, name: str) -> None:
    """The simulator models the booking API (the stub's own code behind a modelled HTTP
    proxy): the same gates hold in about a second."""
    scenario = SUITE / f"{name}.yaml"
    result = CliRunner().invoke(
        app, ["run", "--simulate", str(scenario), "-o", str(tmp_path), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "PASS"
    assert report["mode"] == "simulated"


def test_an_http_toxic_in_front_of_a_non_http_upstream_is_named_when_it_is_cleared() -> None:
    """The proxy passes a non-HTTP stream through and reports an ``error`` on the toxic; the
    fault controller turns it into a fault error (the run's report lists fault errors)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    upstream_port = listener.getsockname()[1]

    def echo() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    fault = parse_scenario(HTTP_FAULT.format(attributes="{rate: 1}")).faults[0]
    fault = fault.model_copy(update={"stream": "upstream"})

    async def scenario(api: str) -> str:
        client = toxiproxy_client(api)
        try:
            proxy = await client.create_proxy(
                "booking-api", listen="127.0.0.1:0", upstream=f"127.0.0.1:{upstream_port}"
            )
            controller = ToxiproxyFaultController(client)
            await controller.apply(fault)
            host, port = proxy.listen.rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"\x00\x01 not an HTTP request\r\n\r\n")
            await writer.drain()
            echoed = await asyncio.wait_for(reader.read(100), 5)
            writer.close()
            assert echoed.startswith(b"\x00\x01")  # passed through unchanged
            with pytest.raises(FaultControlError) as info:
                await controller.clear(fault)
            assert await client.toxics("booking-api") == []  # removed all the same
            return str(info.value)
        finally:
            await client.aclose()

    with ProxyServerProcess(seed=1) as ours:
        message = asyncio.run(scenario(ours.api_url))
    listener.close()
    assert "toxic 'errors' on 'booking-api' passed the connection through unchanged" in message
    assert "not HTTP/1.1" in message


def test_the_booking_api_exchange_time_is_a_saved_model(tmp_path: Path) -> None:
    """calibrate fits ``booking_api`` from a real run; models.json keeps it for tune."""
    from resilience.sim.distributions import Empirical
    from resilience.sim.models_file import load_models, save_models
    from resilience.sim.stack import ModelSettings

    models = ModelSettings().with_(booking_api=Empirical((0.003, 0.005, 0.04)))
    save_models(models, tmp_path / "models.json")
    assert load_models(tmp_path / "models.json").booking_api == models.booking_api
