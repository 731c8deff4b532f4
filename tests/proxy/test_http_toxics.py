"""The HTTP toxics (extensions) on real loopback sockets: what the client gets,
what reaches the upstream, and bad input."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator

import h11
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resilience.proxy import ProxyInfo, ProxyServerProcess, ToxiproxyClient
from resilience.proxy.client import ToxiproxyAPIError as ToxiproxyError

from .conftest import UpstreamServers, connect, recv_until_eof
from .http_upstream import HttpUpstream


@pytest.fixture(scope="module")
def http_upstream() -> Iterator[HttpUpstream]:
    server = HttpUpstream()
    yield server
    server.close()


@pytest.fixture
def api(client: ToxiproxyClient, http_upstream: HttpUpstream) -> ToxiproxyClient:
    http_upstream.seen.clear()
    return client


@pytest.fixture
def web(api: ToxiproxyClient, http_upstream: HttpUpstream) -> ProxyInfo:
    return api.create_proxy("web", listen="127.0.0.1:0", upstream=f"127.0.0.1:{http_upstream.port}")


def base_url(proxy: ProxyInfo) -> str:
    return f"http://127.0.0.1:{proxy.listen_port}"


def test_http_error_answers_without_reaching_the_upstream_and_keeps_the_connection(
    api: ToxiproxyClient, web: ProxyInfo, http_upstream: HttpUpstream
) -> None:
    api.add_toxic(
        "web",
        "http_error",
        stream="upstream",
        attributes={"status": 429, "headers": {"Retry-After": "2"}, "body": "slow down"},
    )
    with httpx.Client(base_url=base_url(web)) as http:
        first = http.post("/bookings", json={"a": 1})
        second = http.get("/availability")
    assert (first.status_code, first.headers["retry-after"], first.text) == (429, "2", "slow down")
    assert second.status_code == 429
    assert http_upstream.seen == []


def test_http_error_filters_pick_methods_and_paths(
    api: ToxiproxyClient, web: ProxyInfo, http_upstream: HttpUpstream
) -> None:
    api.add_toxic(
        "web",
        "http_error",
        stream="upstream",
        attributes={"methods": ["post"], "paths": ["/bookings"], "exclude": ["/bookings/_stats*"]},
    )
    with httpx.Client(base_url=base_url(web)) as http:
        statuses = [
            http.post("/bookings/1").status_code,
            http.get("/bookings/1").status_code,
            http.post("/bookings/_stats").status_code,
            http.post("/other").status_code,
        ]
    assert statuses == [503, 200, 200, 200]
    assert http_upstream.seen == ["GET /bookings/1", "POST /bookings/_stats", "POST /other"]


def test_http_error_rate_zero_passes_every_request_unchanged(
    api: ToxiproxyClient, web: ProxyInfo, http_upstream: HttpUpstream
) -> None:
    api.add_toxic("web", "http_error", stream="upstream", attributes={"rate": 0})
    with httpx.Client(base_url=base_url(web)) as http:
        bodies = [http.get(f"/r{i}").text for i in range(5)]
    assert bodies == [f"GET /r{i} #{i + 1}" for i in range(5)]


def pipelined(port: int, paths: list[str]) -> list[tuple[int, str]]:
    """Send every request at once on one connection, read the responses in order."""
    sock = connect(port)
    try:
        last = len(paths) - 1
        raw = b"".join(
            f"GET {path} HTTP/1.1\r\nHost: x\r\n{'Connection: close' if i == last else 'X: y'}"
            "\r\n\r\n".encode()
            for i, path in enumerate(paths)
        )
        sock.sendall(raw)
        data = recv_until_eof(sock)
    finally:
        sock.close()
    out: list[tuple[int, str]] = []
    rest = data
    for path in paths:  # one h11 client per exchange, fed what the previous left
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target=path, headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        conn.receive_data(rest)
        status, body = 0, b""
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"unexpected {event!r} answering {path}")
        out.append((status, body.decode()))
        rest = conn.trailing_data[0]
    return out


def test_pipelined_requests_get_answers_in_order(
    api: ToxiproxyClient, web: ProxyInfo, http_upstream: HttpUpstream
) -> None:
    """The made-up answer to the second request waits for the server's answer to the first."""
    api.add_toxic(
        "web", "http_error", stream="upstream", attributes={"paths": ["/b"], "status": 502}
    )
    got = pipelined(web.listen_port, ["/a", "/b", "/chunked-c", "/b", "/d"])
    assert [status for status, _ in got] == [200, 502, 200, 502, 200]
    assert got[0][1].startswith("GET /a")
    assert got[2][1].startswith("GET /chunked-c")
    assert http_upstream.seen == ["GET /a", "GET /chunked-c", "GET /d"]


def test_http_error_downstream_replaces_the_response_after_the_upstream_did_the_work(
    api: ToxiproxyClient, web: ProxyInfo, http_upstream: HttpUpstream
) -> None:
    api.add_toxic("web", "http_error", stream="downstream", attributes={"paths": ["/chunked"]})
    got = pipelined(web.listen_port, ["/chunked-1", "/x", "/chunked-2"])
    assert [status for status, _ in got] == [503, 200, 503]
    assert http_upstream.seen == ["GET /chunked-1", "GET /x", "GET /chunked-2"]


def test_http_delay_delays_only_matching_requests(api: ToxiproxyClient, web: ProxyInfo) -> None:
    api.add_toxic(
        "web", "http_delay", stream="upstream", attributes={"latency": 200, "paths": ["/slow"]}
    )
    with httpx.Client(base_url=base_url(web)) as http:
        started = time.perf_counter()
        assert http.get("/slow").status_code == 200
        slow_s = time.perf_counter() - started
        started = time.perf_counter()
        assert http.get("/fast").status_code == 200
        fast_s = time.perf_counter() - started
    assert slow_s >= 0.2
    assert fast_s < slow_s


def test_http_abort_truncates_the_response_after_bytes(
    api: ToxiproxyClient, web: ProxyInfo
) -> None:
    api.add_toxic("web", "http_abort", attributes={"after_bytes": 20})
    sock = connect(web.listen_port)
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    got = recv_until_eof(sock)
    sock.close()
    assert got == b"HTTP/1.1 200 \r\ncont"[:20] or len(got) == 20
    assert got.startswith(b"HTTP/1.1 200")


def test_http_abort_malformed_breaks_the_client_parse(api: ToxiproxyClient, web: ProxyInfo) -> None:
    api.add_toxic(
        "web",
        "http_abort",
        attributes={"mode": "malformed", "paths": ["/chunked"], "after_bytes": 60},
    )
    with httpx.Client(base_url=base_url(web)) as http:
        assert http.get("/ok").status_code == 200
        with pytest.raises(httpx.HTTPError):
            http.get("/chunked-x")


def test_http_abort_reset_resets_the_connection(api: ToxiproxyClient, web: ProxyInfo) -> None:
    api.add_toxic("web", "http_abort", stream="upstream", attributes={"mode": "reset"})
    sock = connect(web.listen_port)
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(ConnectionResetError):
        recv_until_eof(sock)
    sock.close()


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        (
            {"colour": "red"},
            "invalid attribute: http_error has no attribute 'colour' (valid: methods, paths,"
            " exclude, rate, status, body, headers)",
        ),
        ({"rate": 1.5}, "http_error rate must be a share between 0 and 1 (got 1.5)"),
        ({"rate": -0.1}, "http_error rate must be a share between 0 and 1 (got -0.1)"),
        ({"status": 42}, "http_error status must be 100-599 (got 42)"),
        ({"paths": "/x"}, "Go struct field .attributes.paths of type []string"),
        ({"paths": ["bookings"]}, "paths must be paths starting with / or *"),
        ({"headers": {"Retry-After": 2}}, "Go struct field .attributes.headers of type string"),
        ({"headers": {"X": "a\r\nB: c"}}, "is not a header name with a one-line value"),
    ],
)
def test_bad_http_toxic_attributes_are_400_with_the_reason(
    api: ToxiproxyClient, web: ProxyInfo, attributes: dict[str, object], message: str
) -> None:
    with pytest.raises(ToxiproxyError) as info:
        api.add_toxic("web", "http_error", attributes=attributes)
    assert info.value.status == 400
    assert message in str(info.value)
    assert api.get_proxy("web").toxics == ()


@pytest.mark.parametrize(
    ("type_", "attributes", "message"),
    [
        ("http_delay", {"latency": 10, "delay": 5}, "http_delay has no attribute 'delay'"),
        ("http_delay", {"latency": -1}, "http_delay latency must be >= 0 ms"),
        ("http_abort", {"mode": "explode"}, "http_abort mode must be one of close, reset"),
        ("http_abort", {"rate": 2}, "http_abort rate must be a share between 0 and 1"),
    ],
)
def test_bad_attributes_of_the_other_http_toxics_are_400(
    api: ToxiproxyClient, web: ProxyInfo, type_: str, attributes: dict[str, object], message: str
) -> None:
    with pytest.raises(ToxiproxyError) as info:
        api.add_toxic("web", type_, attributes=attributes)
    assert info.value.status == 400
    assert message in str(info.value)


def test_toxic_types_lists_the_http_extensions_with_attribute_kinds(
    api: ToxiproxyClient, server: ProxyServerProcess
) -> None:
    body = httpx.get(f"{server.api_url}/toxic_types").json()
    assert {"http_error", "http_delay", "http_abort", "latency"} <= set(body["types"])
    error = body["extensions"]["http_error"]
    assert error["attributes"] == {
        "methods": "[]string",
        "paths": "[]string",
        "exclude": "[]string",
        "rate": "float32",
        "status": "int64",
        "body": "string",
        "headers": "map[string]string",
    }
    assert error["strict"] is True
    assert error["defaults"]["status"] == 503
    assert "latency" not in body["extensions"]


def test_http_toxic_update_merges_and_validates(api: ToxiproxyClient, web: ProxyInfo) -> None:
    api.add_toxic("web", "http_error", name="e", attributes={"status": 500})
    updated = api.update_toxic("web", "e", attributes={"rate": 0.5})
    assert (updated.attributes["status"], updated.attributes["rate"]) == (500, 0.5)
    with pytest.raises(ToxiproxyError):
        api.update_toxic("web", "e", attributes={"rate": -1})


def test_non_http_stream_passes_through_unchanged_and_the_toxic_says_why(
    api: ToxiproxyClient, upstreams: UpstreamServers
) -> None:
    """A non-HTTP upstream behind an HTTP toxic: the bytes pass unchanged, and the
    toxic's ``error`` (in the API's JSON) says why."""
    proxy = api.create_proxy(
        "raw", listen="127.0.0.1:0", upstream=f"127.0.0.1:{upstreams.echo_port}"
    )
    added = api.add_toxic("raw", "http_error", name="e", stream="upstream")
    assert added.error is None
    sock = connect(proxy.listen_port)
    payload = b"\x00\x01 not http at all \xff" * 100
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += sock.recv(1 << 16)
    sock.close()
    assert got == payload
    (toxic,) = api.toxics("raw")
    assert toxic.error is not None
    assert toxic.error.startswith("http_error: the stream is not HTTP/1.1 (not HTTP/1.1 (")
    assert toxic.error.endswith("this connection is passed through unchanged")


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    paths=st.lists(st.sampled_from(["/a", "/b", "/chunked-c", "/bx"]), min_size=1, max_size=6),
    slice_size=st.integers(1, 40),
)
def test_pipelined_requests_through_slicer_keep_framing(
    api: ToxiproxyClient,
    web: ProxyInfo,
    http_upstream: HttpUpstream,
    paths: list[str],
    slice_size: int,
) -> None:
    """Requests cut into tiny pieces before the HTTP toxic still frame: each gets its own
    answer, in order, and exactly the unmatched ones reach the upstream."""
    for toxic in api.get_proxy("web").toxics:
        api.remove_toxic("web", toxic.name)
    http_upstream.seen.clear()
    api.add_toxic(
        "web",
        "slicer",
        stream="upstream",
        attributes={"average_size": slice_size, "size_variation": 0, "delay": 0},
    )
    api.add_toxic("web", "http_error", stream="upstream", attributes={"paths": ["/b"]})
    got = pipelined(web.listen_port, paths)
    expected = [503 if p.startswith("/b") else 200 for p in paths]
    assert [status for status, _ in got] == expected
    assert http_upstream.seen == [f"GET {p}" for p in paths if not p.startswith("/b")]


def test_live_keep_alive_connection_keeps_framing_across_toxic_changes(
    api: ToxiproxyClient, web: ProxyInfo, http_upstream: HttpUpstream
) -> None:
    """Updating the toxic, or adding one after it (which restarts it, as in Toxiproxy),
    on a connection in use keeps each later request framed and answered right."""
    with httpx.Client(base_url=base_url(web)) as http:
        api.add_toxic("web", "http_error", name="e", stream="upstream", attributes={"rate": 0})
        assert http.get("/a").status_code == 200
        api.update_toxic("web", "e", attributes={"rate": 1, "status": 418})
        assert http.get("/b").status_code == 418
        api.add_toxic("web", "http_delay", stream="upstream", attributes={"latency": 1})
        assert http.get("/c").status_code == 418
        api.remove_toxic("web", "e")
        assert http.get("/d").text == "GET /d #2"
    assert http_upstream.seen == ["GET /a", "GET /d"]


def test_http_delay_downstream_delays_the_response_of_matching_requests(
    api: ToxiproxyClient, web: ProxyInfo
) -> None:
    api.add_toxic("web", "http_delay", attributes={"latency": 150, "methods": ["POST"]})
    with httpx.Client(base_url=base_url(web)) as http:
        started = time.perf_counter()
        assert http.post("/x").text == "POST /x #1"
        assert time.perf_counter() - started >= 0.15


def test_toxicity_zero_never_acts_whatever_the_rate(
    api: ToxiproxyClient, web: ProxyInfo, http_upstream: HttpUpstream
) -> None:
    """toxicity keeps its Toxiproxy meaning: rolled per connection, before any rate."""
    api.add_toxic("web", "http_error", stream="upstream", toxicity=0.0)
    with httpx.Client(base_url=base_url(web)) as http:
        assert [http.get(f"/t{i}").status_code for i in range(3)] == [200, 200, 200]
    assert len(http_upstream.seen) == 3


def test_a_made_up_answer_to_head_has_no_body_and_close_is_honoured(
    api: ToxiproxyClient, web: ProxyInfo
) -> None:
    api.add_toxic("web", "http_error", stream="upstream", attributes={"body": "nope"})
    sock = connect(web.listen_port)
    sock.sendall(b"HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = recv_until_eof(sock)  # the proxy closes after the answer, as asked
    sock.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"Content-Length: 4" in head
    assert b"Connection: close" in head
    assert body == b""


class _Owner:
    """What a Link needs from its connection, without sockets."""

    loop = None

    def rng_for(self, direction: object) -> random.Random:
        return random.Random(1)

    def opposite(self, link: object) -> None:
        return None


class _Side:
    transport = None


def test_a_toxic_that_cannot_act_leaves_the_link_on_the_fast_path() -> None:
    """http_error at rate 0 (and http_delay of 0 ms) are dropped from the chain:
    the link has no head, as with no toxic; raising the rate puts the stage back."""
    from resilience.proxy.link import Direction, Link
    from resilience.proxy.toxic import parse_new_toxic

    link = Link(_Owner(), Direction.UPSTREAM, _Side(), _Side())  # type: ignore[arg-type]
    error = parse_new_toxic(
        {"type": "http_error", "stream": "upstream", "attributes": {"rate": 0}}, lambda _: False
    )
    delay = parse_new_toxic(
        {"type": "http_delay", "name": "d", "stream": "upstream"}, lambda _: False
    )
    link.add_stage(error)
    link.add_stage(delay)
    assert link.head is None
    error.attributes["rate"] = 0.5
    link.replace_stage(0, error)
    assert link.head is link.stages[0]
    link.stop()


def test_attributes_problem_gives_the_api_message_without_a_server() -> None:
    from resilience.proxy.toxic import attributes_problem

    fine = {"status": 429, "headers": {"Retry-After": "2"}}
    assert attributes_problem("http_error", fine) is None
    assert attributes_problem("http_error", {"rate": 2}) == (
        "invalid attribute: http_error rate must be a share between 0 and 1 (got 2)"
    )
    problem = attributes_problem("http_abort", {"after": 3})
    assert problem is not None
    assert "http_abort has no attribute 'after'" in problem
    assert attributes_problem("latency", {"colour": 1}) is None  # Toxiproxy's own: ignored


def test_a_live_connection_keeps_framing_across_a_pass_through_gap(
    api: ToxiproxyClient, web: ProxyInfo, http_upstream: HttpUpstream
) -> None:
    """rate 1 → 0 (the stage leaves the chain, bytes pass unparsed) → 1 again on one
    keep-alive connection: the framing starts afresh and answers the right requests."""
    with httpx.Client(base_url=base_url(web)) as http:
        api.add_toxic("web", "http_error", name="e", stream="upstream", attributes={"status": 418})
        assert http.get("/a").status_code == 418
        api.update_toxic("web", "e", attributes={"rate": 0})
        assert http.post("/b", content=b"x\r\n\r\nGET /c HTTP/1.1\r\n\r\n").status_code == 200
        assert http.get("/chunked-d").text == "GET /chunked-d #2"
        api.update_toxic("web", "e", attributes={"rate": 1, "paths": ["/e"]})
        assert http.get("/e").status_code == 418
        assert http.get("/f").text == "GET /f #3"
    assert http_upstream.seen == ["POST /b", "GET /chunked-d", "GET /f"]


def _response(sock: socket.socket, conn: h11.Connection) -> tuple[int, bytes]:
    """One response read with h11 from a raw socket (status, body)."""
    status, body = 0, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(1 << 16))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            conn.start_next_cycle()
            return status, body


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_a_toxic_added_in_the_middle_of_an_exchange_frames_from_the_next_one(
    api: ToxiproxyClient, web: ProxyInfo, http_upstream: HttpUpstream, stream: str
) -> None:
    """Added while a request is half sent on a live keep-alive connection (its head
    forwarded, its body not yet): that exchange passes on unchanged, and the toxic
    acts from the next request on, with no "not HTTP" error (it used to pass the whole
    connection through, so a fault on a client's one keep-alive connection was lost)."""
    sock = connect(web.listen_port)
    conn = h11.Connection(h11.CLIENT)

    def request(method: str, path: str, body: bytes = b"") -> bytes:
        headers = [("Host", "x"), ("Content-Length", str(len(body)))]
        return conn.send(h11.Request(method=method, target=path, headers=headers)) or b""

    def rest(body: bytes = b"") -> bytes:
        return (conn.send(h11.Data(data=body)) if body else b"") + (
            conn.send(h11.EndOfMessage()) or b""
        )

    try:
        sock.sendall(request("GET", "/a") + rest())
        assert _response(sock, conn)[0] == 200
        sock.sendall(request("POST", "/b", b"hello"))
        time.sleep(0.2)  # the head has gone through the proxy; the body has not
        attributes = {"status": 418, "paths": ["/c"]}
        api.add_toxic("web", "http_error", name="e", stream=stream, attributes=attributes)
        sock.sendall(rest(b"hello"))
        status, body = _response(sock, conn)
        assert (status, body.split(b" #")[0]) == (200, b"POST /b")
        for path, expected in (("/c", 418), ("/d", 200)):
            sock.sendall(request("GET", path) + rest())
            assert _response(sock, conn)[0] == expected, path
    finally:
        sock.close()
    (toxic,) = api.toxics("web")
    assert toxic.error is None
    assert http_upstream.seen[-1] == "GET /d"
