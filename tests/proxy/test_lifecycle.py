"""What happens to live connections when proxies and toxics change (§4.2, §4.6, §5)."""

from __future__ import annotations

import socket
import time

import pytest

from resilience.proxy import ProxyInfo, ToxiproxyClient

from .conftest import UpstreamServers, connect, recv_exact


@pytest.fixture
def echo(client: ToxiproxyClient, upstreams: UpstreamServers) -> ProxyInfo:
    return client.create_proxy(
        "echo", listen="127.0.0.1:0", upstream=f"127.0.0.1:{upstreams.echo_port}"
    )


def ping(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    return recv_exact(sock, len(data))


def test_delete_closes_connections_and_listener(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    sock = connect(echo.listen_port)
    assert ping(sock) == b"ping"
    client.delete_proxy("echo")
    assert sock.recv(10) == b""
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        connect(echo.listen_port)


def test_upstream_change_closes_connections_and_keeps_toxics(
    client: ToxiproxyClient, echo: ProxyInfo, upstreams: UpstreamServers
) -> None:
    client.add_toxic("echo", "noop")
    sock = connect(echo.listen_port)
    assert ping(sock) == b"ping"
    moved = client.update_proxy("echo", upstream=f"localhost:{upstreams.echo_port}")
    assert sock.recv(10) == b""
    sock.close()
    assert moved.listen == echo.listen
    assert [t.name for t in moved.toxics] == ["noop_downstream"]
    again = connect(echo.listen_port)
    assert ping(again) == b"ping"
    again.close()


def test_reset_closes_only_connections_with_a_timeout_toxic(
    client: ToxiproxyClient, echo: ProxyInfo, upstreams: UpstreamServers
) -> None:
    other = client.create_proxy(
        "other", listen="127.0.0.1:0", upstream=f"127.0.0.1:{upstreams.echo_port}"
    )
    client.add_toxic("echo", "timeout", attributes={"timeout": 0})
    client.add_toxic("other", "latency", attributes={"latency": 1})
    timed = connect(echo.listen_port)
    kept = connect(other.listen_port)
    assert ping(kept) == b"ping"
    time.sleep(0.2)  # let the proxy finish dialling the upstream of `timed`
    client.reset()
    assert timed.recv(10) == b""
    assert ping(kept) == b"ping"
    timed.close()
    kept.close()


def test_toxic_added_mid_connection_applies_to_it(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    sock = connect(echo.listen_port)
    assert ping(sock) == b"ping"
    client.add_toxic("echo", "limit_data", attributes={"bytes": 3})
    sock.sendall(b"abcdef")
    got = bytearray()
    while chunk := sock.recv(10):
        got += chunk
    assert bytes(got) == b"abc"
    sock.close()


def test_limit_data_count_survives_update(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    client.add_toxic("echo", "limit_data", attributes={"bytes": 6})
    sock = connect(echo.listen_port)
    assert ping(sock, b"abcd") == b"abcd"
    client.update_toxic("echo", "limit_data_downstream", attributes={"bytes": 5})
    sock.sendall(b"efgh")
    assert sock.recv(10) == b"e"
    assert sock.recv(10) == b""
    sock.close()


def test_removing_a_latency_toxic_flushes_what_it_held(
    client: ToxiproxyClient, echo: ProxyInfo
) -> None:
    client.add_toxic("echo", "latency", attributes={"latency": 10_000})
    sock = connect(echo.listen_port)
    sock.sendall(b"held")
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(10)
    sock.settimeout(5)
    client.remove_toxic("echo", "latency_downstream")
    assert recv_exact(sock, 4) == b"held"
    assert ping(sock) == b"ping"
    sock.close()


def test_timeout_is_an_idle_timeout(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    client.add_toxic("echo", "timeout", stream="upstream", attributes={"timeout": 300})
    sock = connect(echo.listen_port)
    sock.settimeout(0.1)
    for _ in range(5):  # talk every 100 ms for 0.5 s: longer than the timeout
        sock.sendall(b"x")
        with pytest.raises(TimeoutError):
            sock.recv(10)
    sock.settimeout(5)
    assert sock.recv(10) == b""  # closes once we stop talking
    sock.close()


def _delayed(sock: socket.socket) -> bool:
    started = time.perf_counter()
    assert ping(sock, b"r") == b"r"
    return time.perf_counter() - started >= 0.019


def test_toxicity_is_rolled_again_when_the_stage_restarts(
    client: ToxiproxyClient, echo: ProxyInfo
) -> None:
    """One connection: updating the toxic, or adding/removing the toxic right after it,
    restarts it and rolls its toxicity again (TOXIPROXY.md §6.4)."""
    client.add_toxic("echo", "latency", toxicity=0.5, attributes={"latency": 20})
    sock = connect(echo.listen_port)
    seen = {_delayed(sock)}
    for _ in range(8):
        client.update_toxic("echo", "latency_downstream", toxicity=0.5)
        seen.add(_delayed(sock))
    assert seen == {True, False}
    seen = set()
    for _ in range(8):
        client.add_toxic("echo", "noop", name="after")
        seen.add(_delayed(sock))
        client.remove_toxic("echo", "after")
        seen.add(_delayed(sock))
    assert seen == {True, False}
    sock.close()
