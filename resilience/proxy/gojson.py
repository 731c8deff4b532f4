"""JSON in and out with Go ``encoding/json`` semantics.

Toxiproxy decodes request bodies with a streaming decoder: only the first JSON
value counts (trailing garbage is ignored), field names match
case-insensitively, ``null`` leaves a field unchanged, integers reject
fractions and exponents, and type errors read like Go's. :func:`decode_first`
and :class:`StructSpec` reproduce that; :func:`dumps` writes compact JSON the
way Go's encoder does (``<``, ``>``, ``&`` escaped).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "GoDecodeError",
    "GoFloat",
    "StructSpec",
    "decode_first",
    "dumps",
    "float32_shortest",
    "go_type_name",
]

FieldKind = Literal["string", "bool", "int64", "float32", "[]string", "map[string]string"]

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_FLOAT32_MAX = 3.4028234663852886e38
_WS = " \t\r\n"


class GoDecodeError(ValueError):
    """A body Go would refuse; ``str()`` is Go's message (without the API prefix)."""


class GoFloat(float):
    """A JSON number written with a fraction or exponent; keeps its source text."""

    literal: str

    def __new__(cls, text: str) -> GoFloat:
        self = super().__new__(cls, float(text))
        self.literal = text
        return self


def _bad_constant(name: str) -> Any:
    raise GoDecodeError(f"invalid character {name[0]!r} looking for beginning of value")


_DECODER = json.JSONDecoder(parse_float=GoFloat, parse_constant=_bad_constant)


def decode_first(body: bytes) -> Any:
    """Decode the first JSON value of body, ignoring whatever follows it.

    Raises :class:`GoDecodeError` with ``EOF`` (empty body), ``unexpected EOF``
    (truncated value) or ``invalid character ...``.
    """
    text = body.decode("utf-8", errors="replace")
    start = 0
    while start < len(text) and text[start] in _WS:
        start += 1
    if start == len(text):
        raise GoDecodeError("EOF")
    try:
        value, _end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        rest = text[exc.pos :].rstrip(_WS)
        if (
            not rest
            or exc.msg.startswith("Unterminated string")
            or any(word.startswith(rest) for word in ("true", "false", "null"))
        ):
            raise GoDecodeError("unexpected EOF") from None
        ch = text[exc.pos]
        where = "looking for beginning of value"
        if exc.msg.startswith("Expecting ',' delimiter"):
            where = "after object key:value pair"
        elif exc.msg.startswith("Expecting ':' delimiter"):
            where = "after object key"
        elif exc.msg.startswith("Expecting property name"):
            where = "looking for beginning of object key string"
        raise GoDecodeError(f"invalid character {ch!r} {where}") from None
    except RecursionError:
        raise GoDecodeError("exceeded max depth") from None
    return value


def go_type_name(value: object) -> str:
    """The JSON type name Go puts in ``cannot unmarshal <type> into ...``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _number_literal(value: int | float) -> str:
    return value.literal if isinstance(value, GoFloat) else repr(value)


class StructSpec:
    """How Go would decode a JSON object into one struct (field name → kind).

    ``where`` is the struct label Go prints, e.g. ``Proxy`` gives
    ``Go struct field Proxy.name of type string``.
    """

    def __init__(self, where: str, fields: Mapping[str, FieldKind]) -> None:
        self.where = where
        self.fields = dict(fields)
        self._folded = {name.lower(): name for name in fields}

    def decode(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The fields present in obj (canonical names), type-checked.

        Unknown keys are ignored, ``null`` counts as absent, and the first type
        error in document order raises :class:`GoDecodeError`.
        """
        out: dict[str, Any] = {}
        for key, value in obj.items():
            name = self._folded.get(key.lower())
            if name is None or value is None:
                continue
            out[name] = self.check(name, value)
        return out

    def check(self, name: str, value: Any) -> Any:
        """value converted to the Python type of field name, or GoDecodeError."""
        kind = self.fields[name]
        if kind == "[]string" and isinstance(value, list):
            for item in value:
                if not isinstance(item, str):
                    self._fail(go_type_name(item), name, "string")
            return list(value)
        if kind == "map[string]string" and isinstance(value, dict):
            for item in value.values():
                if not isinstance(item, str):
                    self._fail(go_type_name(item), name, "string")
            return dict(value)
        if kind == "string" and isinstance(value, str):
            return value
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "int64" and isinstance(value, int) and not isinstance(value, bool):
            if _INT64_MIN <= value <= _INT64_MAX:
                return value
            self._fail(f"number {value}", name, kind)
        if kind == "int64" and isinstance(value, float):
            self._fail(f"number {_number_literal(value)}", name, kind)
        if kind == "float32" and isinstance(value, int | float) and not isinstance(value, bool):
            as_float = float(value)
            if math.isfinite(as_float) and abs(as_float) <= _FLOAT32_MAX:
                return as_float
            self._fail(f"number {_number_literal(value)}", name, kind)
        self._fail(go_type_name(value), name, kind)
        raise AssertionError("unreachable")

    def _fail(self, what: str, name: str, kind: str) -> None:
        raise GoDecodeError(
            f"json: cannot unmarshal {what} into Go struct field {self.where}.{name} of type {kind}"
        )


def float32_shortest(value: float) -> float | int:
    """value rounded to float32 and written as Go prints a float32 (shortest form).

    Integral values come back as ``int`` so that ``1.0`` prints as ``1``.
    """
    try:
        f32 = float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:
        f32 = value
    if f32.is_integer() and abs(f32) < 1e21:
        return int(f32)
    for digits in range(1, 10):
        candidate = float(f"{f32:.{digits}g}")
        if float(struct.unpack("f", struct.pack("f", candidate))[0]) == f32:
            return candidate
    return f32


_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def dumps(value: object) -> bytes:
    """Compact JSON as Go's ``json.Marshal`` writes it (UTF-8, HTML-escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if "<" in text or ">" in text or "&" in text:
        text = text.translate(_ESCAPES)
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode()
