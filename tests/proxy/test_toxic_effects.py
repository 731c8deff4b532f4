"""Each toxic's effect, measured on real loopback sockets (with tolerances).

These are the only timing assertions of the proxy tests; tolerances are wide
because the CI machines are small and shared.
"""

from __future__ import annotations

import errno
import socket
import time

import pytest

from resilience.proxy import ProxyInfo, ToxiproxyClient

from .conftest import UpstreamServers, connect, recv_exact, recv_until_eof

SLACK_S = 0.025  # scheduling noise allowed above the ideal delay


@pytest.fixture
def echo(client: ToxiproxyClient, upstreams: UpstreamServers) -> ProxyInfo:
    return client.create_proxy(
        "echo", listen="127.0.0.1:0", upstream=f"127.0.0.1:{upstreams.echo_port}"
    )


def rtt_s(port: int, payload: bytes = b"ping") -> float:
    sock = connect(port)
    try:
        started = time.perf_counter()
        sock.sendall(payload)
        recv_exact(sock, len(payload))
        return time.perf_counter() - started
    finally:
        sock.close()


def test_latency_adds_delay_within_bounds(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    """Every round trip waits at least latency − jitter − 1 ms; the typical one no more
    than latency + jitter + slack (the median, so one starved sample cannot fail it)."""
    client.add_toxic("echo", "latency", attributes={"latency": 60, "jitter": 10})
    samples = sorted(rtt_s(echo.listen_port) for _ in range(7))
    assert samples[0] >= 0.060 - 0.010 - 0.001
    assert samples[len(samples) // 2] <= 0.060 + 0.010 + SLACK_S


def test_latency_on_both_streams_adds_up(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    client.add_toxic("echo", "latency", stream="upstream", attributes={"latency": 40})
    client.add_toxic("echo", "latency", stream="downstream", attributes={"latency": 40})
    elapsed = rtt_s(echo.listen_port)
    assert 0.079 <= elapsed <= 0.080 + SLACK_S


def test_latency_is_pipelined_not_serialised(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    client.add_toxic("echo", "latency", attributes={"latency": 100})
    sock = connect(echo.listen_port)
    started = time.perf_counter()
    for _ in range(10):
        sock.sendall(b"x" * 10)
        time.sleep(0.01)
    recv_exact(sock, 100)
    elapsed = time.perf_counter() - started
    sock.close()
    assert elapsed < 0.1 + 0.1 + 2 * SLACK_S  # ~0.19 s; serialised would be ≥ 1 s


def test_bandwidth_rate_within_15_percent(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    client.add_toxic("echo", "bandwidth", attributes={"rate": 100})  # 100 KB/s
    sock = connect(echo.listen_port, timeout_s=10)
    payload = b"b" * 110_000
    started = time.perf_counter()
    sock.sendall(payload)
    recv_exact(sock, len(payload))
    elapsed = time.perf_counter() - started
    sock.close()
    assert 1.1 * 0.85 <= elapsed <= 1.1 * 1.15


def test_timeout_closes_after_silence(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    client.add_toxic("echo", "timeout", attributes={"timeout": 200})
    sock = connect(echo.listen_port)
    started = time.perf_counter()
    sock.sendall(b"dropped")
    assert recv_until_eof(sock) == b""
    elapsed = time.perf_counter() - started
    sock.close()
    assert 0.199 <= elapsed <= 0.2 + SLACK_S * 4


def test_timeout_zero_never_closes_until_removed(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    client.add_toxic("echo", "timeout", attributes={"timeout": 0})
    sock = connect(echo.listen_port)
    sock.sendall(b"dropped")
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(10)
    sock.settimeout(5)
    client.remove_toxic("echo", "timeout_downstream")
    assert sock.recv(10) == b""  # removing a timeout toxic closes its connections
    sock.close()


def test_reset_peer_gives_econnreset(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    client.add_toxic("echo", "reset_peer", attributes={"timeout": 50})
    sock = connect(echo.listen_port)
    started = time.perf_counter()
    sock.sendall(b"boom")
    with pytest.raises(ConnectionResetError) as info:
        sock.recv(10)
    assert info.value.errno == errno.ECONNRESET
    assert time.perf_counter() - started >= 0.049
    sock.close()


def test_slicer_delivers_in_slices(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    """200 bytes at average 10 become 32 pieces of 6-7 bytes, 2 ms apart."""
    client.add_toxic(
        "echo", "slicer", attributes={"average_size": 10, "size_variation": 0, "delay": 2000}
    )
    sock = connect(echo.listen_port)
    started = time.perf_counter()
    sock.sendall(b"s" * 200)
    reads = []
    while sum(reads) < 200:
        data = sock.recv(1000)
        assert data
        reads.append(len(data))
    elapsed = time.perf_counter() - started
    sock.close()
    assert min(reads) <= 7  # at least one read saw a single slice
    assert len(reads) >= 8  # even a slow reader sees many separate deliveries
    assert elapsed >= 31 * 0.002 - 0.001  # the pieces are paced by `delay`


def test_limit_data_truncates_exactly(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    client.add_toxic("echo", "limit_data", attributes={"bytes": 10})
    sock = connect(echo.listen_port)
    sock.sendall(bytes(range(64)))
    assert recv_until_eof(sock) == bytes(range(10))
    sock.close()


def test_slow_close_delays_eof(client: ToxiproxyClient, upstreams: UpstreamServers) -> None:
    proxy = client.create_proxy(
        "closer", listen="127.0.0.1:0", upstream=f"127.0.0.1:{upstreams.closer_port}"
    )
    client.add_toxic("closer", "slow_close", attributes={"delay": 300})
    sock = connect(proxy.listen_port)
    started = time.perf_counter()
    assert recv_until_eof(sock) == b"bye"
    elapsed = time.perf_counter() - started
    sock.close()
    assert 0.299 <= elapsed <= 0.3 + SLACK_S * 4


def test_disabled_proxy_refuses(client: ToxiproxyClient, echo: ProxyInfo) -> None:
    sock = connect(echo.listen_port)
    with client.down("echo"):
        assert sock.recv(10) == b""
        with pytest.raises(ConnectionRefusedError):
            connect(echo.listen_port)
    sock.close()
    assert rtt_s(echo.listen_port) < 1


def test_dead_upstream_accepts_then_eof(client: ToxiproxyClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    proxy = client.create_proxy("dead", listen="127.0.0.1:0", upstream=f"127.0.0.1:{dead}")
    sock = connect(proxy.listen_port)
    assert recv_until_eof(sock) == b""
    sock.close()


@pytest.mark.parametrize(("toxicity", "low", "high"), [(0.0, 0, 0), (1.0, 24, 24), (0.5, 6, 18)])
def test_toxicity_is_per_connection(
    client: ToxiproxyClient, echo: ProxyInfo, toxicity: float, low: int, high: int
) -> None:
    client.add_toxic("echo", "latency", toxicity=toxicity, attributes={"latency": 30})
    delayed = 0
    for _ in range(24):
        sock = connect(echo.listen_port)
        times = []
        for _ in range(2):
            started = time.perf_counter()
            sock.sendall(b"p")
            recv_exact(sock, 1)
            times.append(time.perf_counter() - started >= 0.029)
        sock.close()
        assert times[0] == times[1]  # decided per connection, not per chunk
        delayed += times[0]
    assert low <= delayed <= high
