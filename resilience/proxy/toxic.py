"""A toxic as the API sees it: name, type, stream, toxicity, attributes.

Also the JSON rules for creating and updating one (TOXIPROXY.md §4.4, §4.5):
stream checked before type, default name ``<type>_<stream-as-sent>``,
integer-only attributes that merge on update, float32 toxicity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    ApiError,
    ErrInvalidStream,
    ErrInvalidToxicType,
    ErrToxicExists,
    bad_request_body,
)
from .gojson import GoDecodeError, StructSpec, float32_shortest, go_type_name
from .link import Direction
from .toxics import REGISTRY, ToxicSpec

__all__ = ["Toxic", "attributes_problem", "parse_new_toxic", "parse_toxic_update"]

_WRAPPER = StructSpec(
    "ToxicWrapper",
    {"name": "string", "type": "string", "stream": "string", "toxicity": "float32"},
)
_UPDATE = StructSpec(".", {"toxicity": "float32"})


@dataclass
class Toxic:
    """One toxic of a proxy. ``stream`` is kept exactly as sent (``UpStream``)."""

    name: str
    type: str
    stream: str
    direction: Direction
    toxicity: float
    attributes: dict[str, Any]
    error: str | None = field(default=None, compare=False)
    """Extension: why the toxic passes a connection through (a non-HTTP upstream
    behind an ``http_*`` toxic); shown as ``error`` in the JSON of strict types."""

    @property
    def spec(self) -> ToxicSpec:
        return REGISTRY[self.type]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "attributes": {
                k: v.copy() if isinstance(v, list | dict) else v for k, v in self.attributes.items()
            },
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": float32_shortest(self.toxicity),
        }
        if self.spec.strict:
            data["error"] = self.error
        return data


def _attributes(spec: ToxicSpec, raw: Any, base: Mapping[str, Any]) -> dict[str, Any]:
    """raw attributes (a JSON object or null) merged over base; Go's type errors."""
    attrs = dict(base)
    if raw is not None and not isinstance(raw, dict):
        raise bad_request_body(
            f"json: cannot unmarshal {go_type_name(raw)} into Go struct field "
            "ToxicWrapper.attributes of type toxics.NoopToxic"
        )
    if raw is not None and spec.strict:
        known = {name.lower() for name in spec.attributes}
        unknown = [key for key in raw if key.lower() not in known]
        if unknown:
            raise ApiError(
                f"invalid attribute: {spec.type_name} has no attribute "
                f"{', '.join(map(repr, unknown))} (valid: {', '.join(spec.attributes)})",
                400,
            )
    if raw is not None:
        check = StructSpec(".attributes", {name: spec.kind(name) for name in spec.attributes})
        try:
            attrs.update(check.decode(raw))
        except GoDecodeError as exc:
            raise bad_request_body(str(exc)) from None
    problem = spec.check(attrs)
    if problem is not None:
        raise ApiError(f"invalid attribute: {problem}", 400)
    return attrs


def attributes_problem(type_name: str, raw: Mapping[str, Any]) -> str | None:
    """Why the API would refuse raw as the attributes of a new type_name toxic, or None.

    The same checks and message as ``POST /proxies/{p}/toxics`` (unknown
    names for the strict extension types, JSON kinds, ranges such as ``rate``
    0–1), for a scenario file checked before anything runs.
    """
    spec = REGISTRY.get(type_name)
    if spec is None:
        return f"invalid toxic type {type_name!r}"
    try:
        _attributes(spec, dict(raw), spec.initial_attributes())
    except ApiError as exc:
        return exc.message
    return None


def parse_new_toxic(body: Any, exists: Any) -> Toxic:
    """A toxic from a decoded create body; ``exists(name)`` says if the name is taken.

    Raises :class:`ApiError` in the real server's order: body type errors,
    stream, type, duplicate name (409), attribute errors.
    """
    if not isinstance(body, dict):
        raise bad_request_body(
            f"json: cannot unmarshal {go_type_name(body)} into Go value of type toxics.ToxicWrapper"
        )
    try:
        fields = _WRAPPER.decode(body)
    except GoDecodeError as exc:
        raise bad_request_body(str(exc)) from None
    raw_attrs = None
    for key, value in body.items():
        if key.lower() == "attributes":
            raw_attrs = value
    if raw_attrs is not None and not isinstance(raw_attrs, dict):
        _attributes(REGISTRY["noop"], raw_attrs, {})
    stream = fields.get("stream", "downstream")
    try:
        direction = Direction.parse(stream)
    except ValueError:
        raise ErrInvalidStream() from None
    type_name = fields.get("type", "")
    name = fields.get("name") or f"{type_name}_{stream}"
    spec = REGISTRY.get(type_name)
    if spec is None:
        raise ErrInvalidToxicType()
    if exists(name):
        raise ErrToxicExists()
    if spec.only_stream is not None and direction.value != spec.only_stream:
        raise ApiError(
            f"invalid stream: {type_name} works on the {spec.only_stream} stream only", 400
        )
    attrs = _attributes(spec, raw_attrs, spec.initial_attributes())
    return Toxic(
        name=name,
        type=type_name,
        stream=stream,
        direction=direction,
        toxicity=fields.get("toxicity", 1.0),
        attributes=attrs,
    )


def parse_toxic_update(body: Any, toxic: Toxic) -> tuple[float, dict[str, Any]]:
    """(toxicity, attributes) after merging a decoded update body into toxic."""
    if not isinstance(body, dict):
        raise bad_request_body(
            f"json: cannot unmarshal {go_type_name(body)} into Go value of type "
            'struct { Attributes interface {} "json:\\"attributes\\""; '
            'Toxicity float32 "json:\\"toxicity\\"" }'
        )
    try:
        fields = _UPDATE.decode(body)
    except GoDecodeError as exc:
        raise bad_request_body(str(exc)) from None
    raw_attrs = None
    for key, value in body.items():
        if key.lower() == "attributes":
            raw_attrs = value
    attrs = _attributes(toxic.spec, raw_attrs, toxic.attributes)
    return fields.get("toxicity", toxic.toxicity), attrs
