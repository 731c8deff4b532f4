"""Properties of the HTTP/1.1 framing the HTTP toxics use (no sockets)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience.proxy.wire.http1 import Framer, Head

_METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"])
_PATHS = st.from_regex(r"/[a-z0-9_/-]{0,12}(\?[a-z]=[0-9]{1,3})?", fullmatch=True)
_BODIES = st.binary(max_size=64)


def _request(method: str, path: str, body: bytes, chunked: bool, sizes: list[int]) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
    if method in ("GET", "HEAD", "DELETE") and not body:
        return (head + "\r\n").encode()
    if not chunked:
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    out = (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
    at = 0
    for size in sizes:
        part = body[at : at + size]
        if part:
            out += f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n"
        at += size
    if at < len(body):
        out += f"{len(body) - at:x}\r\n".encode() + body[at:] + b"\r\n"
    return out + b"0\r\nTrailer: t\r\n\r\n"


_REQUESTS = st.lists(
    st.tuples(_METHODS, _PATHS, _BODIES, st.booleans(), st.lists(st.integers(1, 20), max_size=4)),
    min_size=1,
    max_size=6,
)


def _cuts(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(marks)]


@given(requests=_REQUESTS, points=st.lists(st.integers(0, 10_000), max_size=30))
def test_pipelined_requests_in_any_fragments_frame_exactly(
    requests: list[tuple[str, str, bytes, bool, list[int]]], points: list[int]
) -> None:
    """However the stream is cut, the framer finds each request (method, target) in
    order, hands out every byte once and in order, and ends each message exactly
    where its bytes end."""
    raws = [_request(*r) for r in requests]
    stream = b"".join(raws)
    framer = Framer(requests=True)
    pieces = []
    for part in _cuts(stream, points):
        pieces += framer.feed(part)
    assert framer.failed is None
    heads = [value for kind, value in pieces if kind == "start"]
    assert [(h.method, h.target) for h in heads] == [(m, p) for m, p, *_ in requests]
    assert b"".join(v for k, v in pieces if k == "bytes") == stream
    messages: list[bytes] = []
    current = b""
    for kind, value in pieces:
        if kind == "bytes":
            current += value
        elif kind == "end":
            messages.append(current)
            current = b""
    assert messages == raws


def _response(status: int, body: bytes, chunked: bool, head_only: bool) -> bytes:
    if chunked:
        framed = b"".join(
            f"{len(body[i : i + 5]):x}\r\n".encode() + body[i : i + 5] + b"\r\n"
            for i in range(0, len(body), 5)
        )
        head = f"HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        return head + (b"" if head_only else framed + b"0\r\n\r\n")
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    return head + (b"" if head_only or status in (204, 304) else body)


@given(
    exchanges=st.lists(
        st.tuples(
            st.sampled_from(["GET", "HEAD", "POST"]),
            st.sampled_from([200, 204, 304, 503]),
            _BODIES,
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    ),
    points=st.lists(st.integers(0, 10_000), max_size=30),
)
def test_keep_alive_responses_frame_by_their_requests(
    exchanges: list[tuple[str, int, bytes, bool]], points: list[int]
) -> None:
    """Responses on one keep-alive connection are framed with their request's method
    (a HEAD response has no body even with a Content-Length), and each carries the
    request's method and path."""
    exchanges = [
        (m, s, b"" if s in (204, 304) else b, c and s not in (204, 304)) for m, s, b, c in exchanges
    ]
    framer = Framer(requests=False)
    for i, (method, *_rest) in enumerate(exchanges):
        framer.expect(Head(method, f"/r{i}"))
    raws = [_response(s, b, c, m == "HEAD") for m, s, b, c in exchanges]
    stream = b"".join(raws)
    pieces = []
    for part in _cuts(stream, points):
        pieces += framer.feed(part)
    assert framer.failed is None
    heads = [value for kind, value in pieces if kind == "start"]
    assert [(h.target, h.status) for h in heads] == [
        (f"/r{i}", s) for i, (_m, s, _b, _c) in enumerate(exchanges)
    ]
    assert sum(1 for kind, _ in pieces if kind == "end") == len(exchanges)
    assert b"".join(v for k, v in pieces if k == "bytes") == stream


def test_bytes_that_are_not_http_fail_and_are_handed_back() -> None:
    framer = Framer(requests=True)
    assert framer.feed(b"\x16\x03\x01 TLS hello\r\n\r\n") == []
    assert framer.failed is not None
    assert framer.take_rest() == b"\x16\x03\x01 TLS hello\r\n\r\n"


@pytest.mark.parametrize(
    ("raw", "closes"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ],
)
def test_a_request_asking_to_close_says_so(raw: bytes, closes: bool) -> None:
    heads = [v for k, v in Framer(requests=True).feed(raw) if k == "start"]
    assert [h.closes for h in heads] == [closes]


def test_bytes_after_a_closing_request_are_not_framed() -> None:
    """llhttp refuses data after ``Connection: close``: the rest passes through."""
    framer = Framer(requests=True)
    pieces = framer.feed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
    assert [k for k, _ in pieces] == ["start", "bytes", "end"]
    assert framer.failed is not None
    assert framer.take_rest() == b"GET /b HTTP/1.1\r\n\r\n"


def test_an_upgrade_request_stops_framing() -> None:
    framer = Framer(requests=True)
    framer.feed(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00")
    assert framer.failed is not None
    assert "Upgrade" in framer.failed


def test_a_read_until_close_response_ends_at_eof() -> None:
    framer = Framer(requests=False)
    framer.expect(Head("GET", "/"))
    pieces = framer.feed(b"HTTP/1.1 200 OK\r\n\r\nbody bytes")
    assert [k for k, _ in pieces] == ["start", "bytes"]
    assert framer.close() == [("bytes", b""), ("end", None)]


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/bookings?x=1", "/bookings"),
        ("http://api.example:8080/bookings/7?x=1", "/bookings/7"),
        ("http://api.example", "/"),
        ("*", "*"),
    ],
)
def test_the_path_filters_match_is_the_target_without_query_or_authority(
    target: str, path: str
) -> None:
    assert Head("GET", target).path == path
