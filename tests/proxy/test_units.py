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
    }
