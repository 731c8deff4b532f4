"""Bad input gets the documented 4xx; the server never 500s, hangs or dies."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resilience.proxy import ProxyServerProcess, ToxiproxyClient


@pytest.fixture
def http(server: ProxyServerProcess, client: ToxiproxyClient) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, timeout=5.0) as session:
        yield session


def raw(server: ProxyServerProcess, data: bytes, timeout_s: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout_s) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        got = bytearray()
        while chunk := sock.recv(65536):
            got += chunk
        return bytes(got)


def alive(http: httpx.Client) -> None:
    assert http.get("/version").status_code == 200


def test_garbage_http_gets_400_and_server_lives(
    server: ProxyServerProcess, http: httpx.Client
) -> None:
    for junk in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"hello world\r\n\r\n"):
        assert raw(server, junk).startswith(b"HTTP/1.1 400")
    assert raw(server, b"GET /version HTTP/1.1\r\nContent-Length: x\r\n\r\n").startswith(
        b"HTTP/1.1 400"
    )
    raw(server, b"POST /proxies HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")  # cut short
    alive(http)


def test_huge_body_is_413(server: ProxyServerProcess, http: httpx.Client) -> None:
    head = b"POST /proxies HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n"
    reply = raw(server, head)
    assert reply.startswith(b"HTTP/1.1 413")
    assert reply.endswith(b'{"error":"request body too large","status":413}\n')
    big = http.post("/populate", content=b"[" + b" " * (9 << 20) + b"]")
    assert big.status_code == 413
    assert raw(server, b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431"
    )
    alive(http)


def test_keep_alive_pipelining_and_chunked_bodies(server: ProxyServerProcess) -> None:
    body = json.dumps({"name": "c", "listen": "127.0.0.1:0", "upstream": "x:1"}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    reply = raw(
        server,
        b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b""
        b"DELETE /proxies/c HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    assert reply.count(b"HTTP/1.1 ") == 3
    assert b"HTTP/1.1 201" in reply
    assert b"HTTP/1.1 204" in reply


def test_absolute_form_target(server: ProxyServerProcess) -> None:
    reply = raw(server, b"GET http://127.0.0.1/version HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.endswith(b'{"version": "2.12.0"}\n')


def test_expect_100_continue(server: ProxyServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /reset HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"{}")
        assert sock.recv(1000).startswith(b"HTTP/1.1 204")


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["a", "b", "", 1, None]),
        "type": st.sampled_from(
            ["latency", "bandwidth", "slicer", "timeout", "limit_data", "down", "x", 3]
        ),
        "stream": st.sampled_from(["upstream", "DOWNSTREAM", "", "side", 0]),
        "toxicity": st.one_of(st.floats(-2, 3), st.text(max_size=2)),
        "attributes": st.one_of(
            JSONISH,
            st.dictionaries(
                st.sampled_from(["latency", "jitter", "rate", "average_size", "bytes", "delay"]),
                st.one_of(st.integers(-(1 << 70), 1 << 70), st.floats(), st.text(max_size=3)),
            ),
        ),
        "listen": st.sampled_from(["127.0.0.1:0", "bad", "", "[::1", ":0", 7]),
        "upstream": st.sampled_from(["127.0.0.1:9", "", "x", 5]),
        "enabled": st.sampled_from([True, False, "no", None]),
    },
)
REQUESTS = st.tuples(
    st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]),
    st.sampled_from(
        [
            "/proxies",
            "/proxies/a",
            "/proxies/b",
            "/proxies/a/toxics",
            "/proxies/a/toxics/latency_downstream",
            "/proxies/a/toxics/a",
            "/populate",
            "/reset",
            "/version",
            "/proxies/a%2Fb",
        ]
    ),
    st.one_of(
        FIELDS.map(lambda d: json.dumps(d).encode()),
        st.lists(FIELDS, max_size=3).map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=40),
    ),
)

ALLOWED_500 = ("listen tcp", "lookup", "address ")


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=st.lists(REQUESTS, min_size=1, max_size=8))
def test_api_fuzz_keeps_server_alive_and_consistent(
    http: httpx.Client, calls: list[tuple[str, str, bytes]]
) -> None:
    for method, path, body in calls:
        response = http.request(method, path, content=body)
        assert response.status_code in (200, 201, 204, 400, 404, 405, 409, 500)
        if response.status_code == 500:
            assert json.loads(response.text)["error"].startswith(ALLOWED_500), response.text
    listed = http.get("/proxies").json()
    for name, proxy in listed.items():
        assert http.get(f"/proxies/{name}/toxics").json() == proxy["toxics"]
    for name in listed:
        http.delete(f"/proxies/{name}")
    alive(http)
