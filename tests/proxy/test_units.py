"""Pure pieces: Go-style JSON decoding, addresses, the toxic registry."""

from __future__ import annotations

import pytest

from resilience.proxy.addr import AddressError, split_host_port
from resilience.proxy.gojson import GoDecodeError, StructSpec, decode_first, dumps, float32_shortest
from resilience.proxy.toxics import REGISTRY


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF"),
        (b"   \n", "EOF"),
        (b'{"a": 1', "unexpected EOF"),
        (b'{"a": tru', "unexpected EOF"),
        (b'{"a": "x', "unexpected EOF"),
        (b"x", "invalid character 'x' looking for beginning of value"),
        (b"NaN", "invalid character 'N' looking for beginning of value"),
    ],
)
def test_decode_errors_read_like_go(body: bytes, message: str) -> None:
    with pytest.raises(GoDecodeError) as info:
        decode_first(body)
    assert str(info.value) == message


def test_decode_takes_first_value_only() -> None:
    assert decode_first(b'{"a":1} {"b":2} garbage') == {"a": 1}


def test_struct_spec_case_insensitive_null_and_type_errors() -> None:
    spec = StructSpec("Proxy", {"name": "string", "enabled": "bool"})
    assert spec.decode({"NAME": "x", "Enabled": None, "other": 1}) == {"name": "x"}
    with pytest.raises(GoDecodeError, match=r"number into Go struct field Proxy\.name of type"):
        spec.decode({"name": 1})
    ints = StructSpec(".attributes", {"latency": "int64"})
    with pytest.raises(GoDecodeError, match="number 1e3 into"):
        ints.decode(decode_first(b'{"latency": 1e3}'))
    with pytest.raises(GoDecodeError, match="number 99999999999999999999 into"):
        ints.decode({"latency": 99999999999999999999})


def test_float32_printing_and_go_escaping() -> None:
    assert float32_shortest(1.0) == 1
    assert float32_shortest(0.3) == 0.3
    assert float32_shortest(2.5) == 2.5
    assert dumps({"a": "<&>"}) == b'{"a":"\\u003c\\u0026\\u003e"}'


@pytest.mark.parametrize(
    ("addr", "expected"),
    [("127.0.0.1:80", ("127.0.0.1", "80")), ("[::1]:5", ("::1", "5")), (":0", ("", "0"))],
)
def test_split_host_port(addr: str, expected: tuple[str, str]) -> None:
    assert split_host_port(addr) == expected


@pytest.mark.parametrize(
    ("addr", "message"),
    [
        ("local373", "address local373: missing port in address"),
        ("a:b:c", "address a:b:c: too many colons in address"),
        ("[::1", "address [::1: missing ']' in address"),
    ],
)
def test_split_host_port_errors(addr: str, message: str) -> None:
    with pytest.raises(AddressError) as info:
        split_host_port(addr)
    assert str(info.value) == message


def test_registry_lists_every_toxic_with_its_wire_attributes() -> None:
    assert {name: spec.attributes for name, spec in REGISTRY.items()} == {
        "noop": (),
        "latency": ("latency", "jitter"),
        "bandwidth": ("rate",),
        "slow_close": ("delay",),
        "timeout": ("timeout",),
        "reset_peer": ("timeout",),
        "slicer": ("average_size", "size_variation", "delay"),
        "limit_data": ("bytes",),
        "postgres_error": ("sqlstate", "message", "rate", "prefix"),
        "redis_error": ("error", "rate", "commands"),
        "http_error": ("methods", "paths", "exclude", "rate", "status", "body", "headers"),
        "http_delay": ("methods", "paths", "exclude", "rate", "latency", "jitter"),
        "http_abort": ("methods", "paths", "exclude", "rate", "mode", "after_bytes"),
    }


class _Ctx:
    """A LinkContext without a link: stages that never need timers."""

    def __init__(self, seed: int = 1) -> None:
        import asyncio
        import random

        self.loop = asyncio.new_event_loop()
        self.rng = random.Random(seed)
        self.discarded = 0

    def discard(self, nbytes: int) -> None:
        self.discarded += nbytes

    def reset_connection(self) -> None:
        raise AssertionError("not expected")


class _Collect:
    def __init__(self) -> None:
        self.items: list[object] = []

    def push(self, item: object) -> None:
        self.items.append(item)


def test_slicer_cuts_like_toxiproxy() -> None:
    """1000 bytes at average 10, variation 0: 128 pieces of 7-8 bytes (TOXIPROXY.md §7)."""
    from resilience.proxy.toxics import Chunk
    from resilience.proxy.toxics.slicer import SlicerStage

    ctx = _Ctx()
    stage = SlicerStage(ctx, {"average_size": 10, "size_variation": 0, "delay": 0})
    out = _Collect()
    stage.out = out
    data = bytes(range(250)) * 4
    stage.push(Chunk(data, 0.0))
    stage.push(None)
    pieces = out.items[:-1]
    assert out.items[-1] is None
    assert len(pieces) == 128
    assert {len(p.data) for p in pieces} <= {7, 8}  # type: ignore[attr-defined]
    assert b"".join(p.data for p in pieces) == data  # type: ignore[attr-defined]
    ctx.loop.close()


def test_slicer_with_variation_is_seeded_and_lossless() -> None:
    from resilience.proxy.toxics import Chunk
    from resilience.proxy.toxics.slicer import SlicerStage

    def run(seed: int) -> list[int]:
        ctx = _Ctx(seed)
        stage = SlicerStage(ctx, {"average_size": 16, "size_variation": 6, "delay": 0})
        out = _Collect()
        stage.out = out
        stage.push(Chunk(b"x" * 5000, 0.0))
        ctx.loop.close()
        sizes = [len(p.data) for p in out.items]  # type: ignore[attr-defined]
        assert sum(sizes) == 5000
        assert max(sizes) <= 16 + 6
        return sizes

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_limit_data_cuts_and_closes() -> None:
    from resilience.proxy.toxics import Chunk
    from resilience.proxy.toxics.limit_data import LimitDataStage

    ctx = _Ctx()
    stage = LimitDataStage(ctx, {"bytes": 5}, LimitDataStage.new_state())
    out = _Collect()
    stage.out = out
    stage.push(Chunk(b"abc", 0.0))
    stage.push(Chunk(b"defg", 0.0))
    stage.push(Chunk(b"late", 0.0))
    assert [getattr(i, "data", None) for i in out.items] == [b"abc", b"de", None]
    assert ctx.discarded == 2 + 4
    ctx.loop.close()
