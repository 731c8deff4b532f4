"""The protocol toxics' framing: any split of the client's bytes gives the same result.

The stages run on a minimal link context (what the proxy's link gives them);
the bytes are real protocol messages built with the wire helpers.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from resilience.proxy.toxics import REGISTRY, Chunk, Item
from resilience.proxy.wire import pg, resp

SSL_REQUEST = (8).to_bytes(4, "big") + pg.SSL_REQUEST.to_bytes(4, "big")


def startup_message() -> bytes:
    body = (3 << 16).to_bytes(4, "big") + b"user\0app\0database\0app\0\0"
    return (len(body) + 4).to_bytes(4, "big") + body


def frame(kind: bytes, body: bytes) -> bytes:
    return kind + (len(body) + 4).to_bytes(4, "big") + body


def parse(name: str, sql: str) -> bytes:
    return frame(b"P", name.encode() + b"\0" + sql.encode() + b"\0\0\0")


def bind(statement: str) -> bytes:
    return frame(b"B", b"\0" + statement.encode() + b"\0\0\0\0\0\0\0")


EXECUTE = frame(b"E", b"\0\0\0\0\0")
SYNC = frame(b"S", b"")
FLUSH = frame(b"H", b"")


class FakeLink:
    """The link side of a stage: collects what it emits, replies and closes."""

    def __init__(self, received: int = 0) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None  # no timers in these stages
        self.rng = random.Random(1)
        self.received = received
        self.out = bytearray()
        self.replies = bytearray()
        self.closed = False
        self.eof = False
        self.discarded = 0

    def push(self, item: Item) -> None:
        if item is None:
            self.eof = True
        else:
            self.out += item.data

    def discard(self, nbytes: int) -> None:
        self.discarded += nbytes

    def reset_connection(self) -> None:
        self.closed = True

    def reply(self, data: bytes) -> None:
        self.replies += data

    def close_connection(self) -> None:
        self.closed = True


def run_stage(toxic: str, attrs: dict[str, Any], pieces: list[bytes]) -> FakeLink:
    spec = REGISTRY[toxic]
    link = FakeLink()
    values = spec.initial_attributes() | attrs
    stage = spec.stage(link, values, spec.stage.new_state())
    stage.out = link
    for piece in pieces:
        stage.push(Chunk(piece, 0.0))
        if link.closed:
            break
    return link


def splits(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """data cut at arbitrary points (possibly one byte at a time)."""
    cuts = st.lists(st.integers(0, len(data)), max_size=12).map(sorted)
    return cuts.map(lambda c: [data[a:b] for a, b in zip([0, *c], [*c, len(data)], strict=True)])


RAISE = pg.query(pg.raise_error_sql("40001", "could not serialize access due to concurrent update"))
SESSION = SSL_REQUEST + startup_message()
STREAM = (
    SESSION
    + pg.query("SELECT 1")
    + pg.query("INSERT INTO jobs VALUES (1)")
    + parse("s1", "insert into jobs values ($1)")
    + frame(b"D", b"Ss1\0")
    + FLUSH
    + bind("s1")
    + EXECUTE
    + SYNC
    + parse("", "SELECT 2")
    + bind("")
    + EXECUTE
    + SYNC
)
EXPECTED = (
    SESSION
    + pg.query("SELECT 1")
    + RAISE
    + parse("s1", "insert into jobs values ($1)")
    + frame(b"D", b"Ss1\0")
    + FLUSH
    + RAISE
    + parse("", "SELECT 2")
    + bind("")
    + EXECUTE
    + SYNC
)


@settings(max_examples=150, deadline=None)
@given(pieces=splits(STREAM))
def test_postgres_error_replaces_the_same_queries_however_the_stream_is_split(
    pieces: list[bytes],
) -> None:
    link = run_stage("postgres_error", {"prefix": "insert"}, pieces)
    assert bytes(link.out) == EXPECTED
    assert not link.replies
    assert not link.closed


def test_postgres_error_never_forwards_part_of_a_hit_batch() -> None:
    batch = parse("", "UPDATE t SET x = 1") + bind("") + EXECUTE
    link = run_stage("postgres_error", {}, [SESSION + batch])
    assert bytes(link.out) == SESSION  # held until the Sync decides
    link = run_stage("postgres_error", {}, [SESSION + batch, SYNC])
    assert bytes(link.out) == SESSION + RAISE


def test_postgres_fatal_error_answers_the_client_and_closes() -> None:
    link = run_stage("postgres_error", {"sqlstate": "57P01"}, [SESSION, pg.query("SELECT 1")])
    assert bytes(link.out) == SESSION
    assert bytes(link.replies) == pg.error_response(
        "FATAL", "57P01", "terminating connection due to administrator command"
    )
    assert link.closed


def test_postgres_startup_error_answers_the_startup_message_and_closes() -> None:
    link = run_stage("postgres_error", {"sqlstate": "53300"}, [SSL_REQUEST, startup_message()])
    assert bytes(link.out) == SSL_REQUEST  # the SSL negotiation passes
    assert link.replies.startswith(b"E")
    assert b"C53300\0" in link.replies
    assert link.closed


def test_postgres_error_passes_tls_after_an_ssl_request_untouched() -> None:
    tls = b"\x16\x03\x01\x02\x00" + bytes(range(200))
    link = run_stage("postgres_error", {}, [SSL_REQUEST, tls, pg.query("SELECT 1")])
    assert bytes(link.out) == SSL_REQUEST + tls + pg.query("SELECT 1")


def test_postgres_error_rate_zero_passes_every_query() -> None:
    link = run_stage("postgres_error", {"rate": 0.0}, [STREAM])
    assert bytes(link.out) == STREAM


def cmd(*args: bytes) -> bytes:
    return resp.encode_command(*args)


REDIS_STREAM = (
    cmd(b"HELLO", b"3")
    + cmd(b"GET", b"k")
    + cmd(b"SET", b"k", b"v" * 300)
    + b"PING\r\n"
    + cmd(b"MULTI")
    + cmd(b"SET", b"k", b"1")
    + cmd(b"EXEC")
    + cmd(b"set", b"x", b"\r\n")
)
READONLY = cmd(
    b"EVAL",
    b"return redis.error_reply(ARGV[1])",
    b"0",
    b"READONLY You can't write against a read only replica.",
)
REDIS_EXPECTED = (
    cmd(b"HELLO", b"3")
    + cmd(b"GET", b"k")
    + READONLY
    + b"PING\r\n"
    + cmd(b"MULTI")
    + cmd(b"SET", b"k", b"1")
    + cmd(b"EXEC")
    + READONLY
)


@settings(max_examples=150, deadline=None)
@given(pieces=splits(REDIS_STREAM))
def test_redis_error_replaces_the_same_commands_however_the_stream_is_split(
    pieces: list[bytes],
) -> None:
    link = run_stage("redis_error", {"error": "READONLY", "commands": "set"}, pieces)
    assert bytes(link.out) == REDIS_EXPECTED


def test_redis_error_spares_connection_commands_by_default() -> None:
    link = run_stage("redis_error", {"error": "LOADING"}, [cmd(b"PING"), cmd(b"SELECT", b"1")])
    assert bytes(link.out) == cmd(b"PING") + cmd(b"SELECT", b"1")


def test_redis_error_passes_a_stream_that_is_not_resp() -> None:
    garbage = b"*x\r\nnot resp at all"
    link = run_stage("redis_error", {}, [garbage, cmd(b"GET", b"k")])
    assert bytes(link.out) == garbage + cmd(b"GET", b"k")
