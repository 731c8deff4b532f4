"""The process helper, CLI flags, config file, metrics, seeds, the async client."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from resilience.proxy import (
    AsyncToxiproxyClient,
    ProxyServerProcess,
    ToxiproxyAPIError,
    ToxiproxyClient,
)
from resilience.proxy.process import ProxyServerError

from .conftest import UpstreamServers, connect, recv_exact

PROXY_DIR = Path(__file__).resolve().parents[2] / "resilience" / "proxy"


def test_proxy_package_imports_nothing_else_from_resilience() -> None:
    for path in PROXY_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert not node.module.startswith("resilience") or node.module.startswith(
                    "resilience.proxy"
                ), (path, node.module)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("resilience") or alias.name.startswith(
                        "resilience.proxy"
                    ), (path, alias.name)


def test_version_flag_and_bad_flags() -> None:
    run = [sys.executable, "-m", "resilience.proxy"]
    out = subprocess.run([*run, "-version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert out.stdout.strip() == "toxiproxy-server version 2.12.0"
    bad = subprocess.run([*run, "-port", "99999"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
    assert "invalid port '99999'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_start_failure_reports_log_tail() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ProxyServerError, match="exited with 1"):
            ProxyServerProcess(port=port, startup_timeout_s=10).start()


def test_config_file_metrics_and_seed(tmp_path: Path, upstreams: UpstreamServers) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps(
            [
                {
                    "name": "echo",
                    "listen": "127.0.0.1:0",
                    "upstream": f"127.0.0.1:{upstreams.echo_port}",
                },
                {"name": "off", "listen": "127.0.0.1:0", "upstream": "x:1", "enabled": False},
            ]
        )
    )
    with (
        ProxyServerProcess(
            config=config, seed=7, extra_args=["--proxy-metrics", "-runtime-metrics=true"]
        ) as proc,
        ToxiproxyClient(proc.api_url) as api,
    ):
        proxies = api.proxies()
        assert sorted(proxies) == ["echo", "off"]
        assert proxies["off"].listen == "127.0.0.1:0"
        sock = connect(proxies["echo"].listen_port)
        sock.sendall(b"12345")
        assert recv_exact(sock, 5) == b"12345"
        sock.close()
        time.sleep(0.05)
        metrics = httpx.get(proc.api_url + "/metrics").text
        line = next(
            row
            for row in metrics.splitlines()
            if row.startswith('toxiproxy_proxy_received_bytes_total{direction="upstream"')
            and 'proxy="echo"' in row
        )
        assert line.endswith(" 5")
        assert "process_cpu_seconds_total" in metrics


def test_bad_config_file_still_starts(tmp_path: Path) -> None:
    config = tmp_path / "broken.json"
    config.write_text("[{")
    with ProxyServerProcess(config=config) as proc, ToxiproxyClient(proc.api_url) as api:
        assert api.proxies() == {}
        assert "Error reading config file" in proc.log_tail()


def _toxicity_pattern(api_url: str, echo_port: int) -> list[bool]:
    with ToxiproxyClient(api_url) as api:
        proxy = api.create_proxy("s", listen="127.0.0.1:0", upstream=f"127.0.0.1:{echo_port}")
        api.add_toxic("s", "latency", toxicity=0.5, attributes={"latency": 25})
        pattern = []
        for _ in range(12):
            sock = connect(proxy.listen_port)
            started = time.perf_counter()
            sock.sendall(b"x")
            recv_exact(sock, 1)
            pattern.append(time.perf_counter() - started >= 0.024)
            sock.close()
        return pattern


def test_seed_makes_toxicity_reproducible(upstreams: UpstreamServers) -> None:
    with ProxyServerProcess(seed=1234) as first:
        one = _toxicity_pattern(first.api_url, upstreams.echo_port)
    with ProxyServerProcess(seed=1234) as second:
        two = _toxicity_pattern(second.api_url, upstreams.echo_port)
    assert one == two
    assert 0 < sum(one) < len(one)


async def test_async_client_round_trip(server: ProxyServerProcess, client: ToxiproxyClient) -> None:
    async with AsyncToxiproxyClient(server.api_url) as api:
        assert await api.version() == "2.12.0"
        proxy = await api.create_proxy("a", listen="127.0.0.1:0", upstream="x:1")
        assert (await api.get_proxy("a")) == proxy
        toxic = await api.add_toxic("a", "latency", attributes={"latency": 5})
        assert toxic.name == "latency_downstream"
        updated = await api.update_toxic("a", toxic.name, attributes={"jitter": 2})
        assert updated.attributes == {"latency": 5, "jitter": 2}
        assert [t.name for t in await api.toxics("a")] == ["latency_downstream"]
        async with api.down("a") as down:
            assert down.enabled is False
        await api.remove_toxic("a", toxic.name)
        moved = await api.update_proxy("a", upstream="y:2")
        assert moved.upstream == "y:2"
        populated = await api.populate([{"name": "b", "listen": "127.0.0.1:0", "upstream": "z:1"}])
        assert [p.name for p in populated] == ["b"]
        await api.reset()
        assert sorted(await api.proxies()) == ["a", "b"]
        with pytest.raises(ToxiproxyAPIError) as info:
            await api.get_proxy("zzz")
        assert (info.value.status, info.value.message) == (404, "proxy not found")
        await api.delete_proxy("a")


def test_sync_client_errors_and_unreachable(client: ToxiproxyClient) -> None:
    with pytest.raises(ToxiproxyAPIError) as info:
        client.add_toxic("nope", "latency")
    assert info.value.status == 404
    client.create_proxy("a", listen="127.0.0.1:0", upstream="x:1")
    with pytest.raises(ToxiproxyAPIError) as dup:
        client.create_proxy("a", listen="127.0.0.1:0", upstream="x:1")
    assert (dup.value.status, dup.value.message) == (409, "proxy already exists")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    with (
        ToxiproxyClient(f"http://127.0.0.1:{dead}", timeout_s=1) as nobody,
        pytest.raises(ToxiproxyAPIError) as down,
    ):
        nobody.version()
    assert down.value.status == 0


def test_server_exits_when_its_parent_dies() -> None:
    script = (
        "import os, sys\n"
        "from resilience.proxy import ProxyServerProcess\n"
        "p = ProxyServerProcess().start()\n"
        "print(p.process.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    child = int(out.stdout.strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{child}/stat").read_text().split()[2]
        except OSError:
            return  # gone
        if status == "Z":
            return  # exited, waiting to be reaped by init
        time.sleep(0.1)
    raise AssertionError(f"proxy server {child} outlived its parent")


def test_resilience_proxy_command_passes_flags_through() -> None:
    import typer
    from typer.testing import CliRunner

    from resilience.cli import proxy as proxy_cli

    app = typer.Typer()
    proxy_cli.register(app)

    @app.command("other")
    def other() -> None:  # a second command keeps typer in multi-command mode
        """Unused."""

    runner = CliRunner()
    result = runner.invoke(app, ["proxy", "-version"])
    assert result.exit_code == 0
    assert "toxiproxy-server version 2.12.0" in result.output
    bad = runner.invoke(app, ["proxy", "-seed", "abc"])
    assert bad.exit_code == 2


async def test_embedded_server_on_the_default_event_loop(upstreams: UpstreamServers) -> None:
    """ToxiproxyServer runs inside any asyncio loop (here: not uvloop)."""
    import asyncio

    from resilience.proxy import ToxiproxyServer

    server = ToxiproxyServer(port=0, seed=3)
    await server.start()
    try:
        async with AsyncToxiproxyClient(server.api_url) as api:
            proxy = await api.create_proxy(
                "e", listen="127.0.0.1:0", upstream=f"127.0.0.1:{upstreams.echo_port}"
            )
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            writer.write(b"hello")
            assert await reader.readexactly(5) == b"hello"
            await api.add_toxic("e", "slicer", attributes={"average_size": 2})
            writer.write(b"sliced!")
            assert await reader.readexactly(7) == b"sliced!"
            writer.close()
    finally:
        await server.stop()
