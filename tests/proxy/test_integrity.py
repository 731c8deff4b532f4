"""Bytes pass byte-exact both ways while toxics are added, updated and removed."""

from __future__ import annotations

import socket
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resilience.proxy import ToxiproxyClient

from .conftest import UpstreamServers, connect

# toxics that must not change the bytes (only their timing and chunking)
HARMLESS = st.one_of(
    st.just(("noop", {})),
    st.builds(lambda ms: ("latency", {"latency": ms, "jitter": ms // 2}), st.integers(0, 4)),
    st.builds(
        lambda avg, var, us: ("slicer", {"average_size": avg, "size_variation": var, "delay": us}),
        st.integers(1, 64),
        st.integers(0, 8),
        st.integers(0, 30),
    ),
    st.just(("bandwidth", {"rate": 20_000})),
    st.just(("slow_close", {"delay": 1})),
    st.just(("limit_data", {"bytes": 10_000_000})),
)

OPS = st.lists(
    st.tuples(
        st.binary(min_size=1, max_size=4096),
        st.one_of(
            st.none(),
            st.tuples(st.just("add"), HARMLESS, st.sampled_from(["upstream", "downstream"])),
            st.just(("remove",)),
            st.just(("update",)),
        ),
    ),
    min_size=1,
    max_size=25,
)


def _reader(sock: socket.socket, expected: int, out: bytearray) -> None:
    while len(out) < expected:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return
        out += chunk


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_echo_is_byte_exact_under_live_toxic_changes(
    client: ToxiproxyClient, upstreams: UpstreamServers, ops: list[tuple[bytes, object]]
) -> None:
    if "int" not in client.proxies():
        client.create_proxy(
            "int", listen="127.0.0.1:0", upstream=f"127.0.0.1:{upstreams.echo_port}"
        )
    proxy = client.get_proxy("int")
    for toxic in proxy.toxics:
        client.remove_toxic("int", toxic.name)
    total = sum(len(data) for data, _ in ops)
    sock = connect(proxy.listen_port, timeout_s=20)
    received = bytearray()
    reader = threading.Thread(target=_reader, args=(sock, total, received))
    reader.start()
    names: list[str] = []
    sent = bytearray()
    try:
        for i, (data, op) in enumerate(ops):
            sock.sendall(data)
            sent += data
            if op is None:
                continue
            if op[0] == "add":
                (type_name, attrs), stream = op[1], op[2]  # type: ignore[misc]
                name = f"t{i}"
                client.add_toxic("int", type_name, name=name, stream=stream, attributes=attrs)
                names.append(name)
            elif op[0] == "remove" and names:
                client.remove_toxic("int", names.pop(0))
            elif op[0] == "update" and names:
                client.update_toxic("int", names[-1], toxicity=0.5)
        for name in names:
            client.remove_toxic("int", name)
        reader.join(20)
    finally:
        sock.close()
        reader.join(5)
    assert bytes(received) == bytes(sent)


def test_bulk_with_backpressure_and_toxic_churn(
    client: ToxiproxyClient, upstreams: UpstreamServers
) -> None:
    """6 MiB each way through churning toxics: more than the in-flight limit."""
    proxy = client.create_proxy(
        "bulk", listen="127.0.0.1:0", upstream=f"127.0.0.1:{upstreams.echo_port}"
    )
    payload = bytes(range(256)) * (6 * 4096)
    sock = connect(proxy.listen_port, timeout_s=30)
    received = bytearray()
    reader = threading.Thread(target=_reader, args=(sock, len(payload), received))
    reader.start()
    step = 256 * 1024
    churn = [
        ("latency", {"latency": 2}, "downstream"),
        ("slicer", {"average_size": 4096, "size_variation": 1000}, "upstream"),
        ("bandwidth", {"rate": 50_000}, "downstream"),
        ("noop", {}, "upstream"),
    ]
    try:
        for i in range(0, len(payload), step):
            sock.sendall(payload[i : i + step])
            type_name, attrs, stream = churn[(i // step) % len(churn)]
            name = f"c{i}"
            client.add_toxic("bulk", type_name, name=name, stream=stream, attributes=attrs)
            if (i // step) % 2:
                for toxic in client.toxics("bulk")[:-1]:
                    client.remove_toxic("bulk", toxic.name)
        for toxic in client.toxics("bulk"):
            client.remove_toxic("bulk", toxic.name)
        reader.join(30)
    finally:
        sock.close()
        reader.join(5)
    assert len(received) == len(payload)
    assert bytes(received) == payload
