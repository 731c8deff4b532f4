"""Requests from templates: the same seed and sequence number give the same request.

``{key}`` is the drawn key (URL-quoted in the path), ``{seq}`` the
operation's number, ``{uuid}`` and ``{random_int}`` come from a generator
seeded by the run's seed and ``seq`` — independent of timing and of the
order in which answers arrive. In a JSON body a string that is exactly
``"{seq}"`` or ``"{random_int}"`` becomes a number.

Every template is parsed once (:func:`~.templates.compile_template`); a
request that uses no placeholder is rendered once and reused as is.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

from resilience.targets.base import Call
from resilience.targets.http.templates import Template, compile_template

__all__ = ["RenderedRequest", "RequestTemplate"]

_NUMERIC = {"{seq}": "seq", "{random_int}": "random_int"}
_PLACEHOLDERS = ("key", "uuid", "seq", "random_int")
_QUOTED_KEPT = 100_000
_new = tuple.__new__


class RenderedRequest(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: str | None


def _compile_json(value: Any, field: str) -> Callable[[Mapping[str, str]], Any]:
    """A function of the values rendering the JSON body template ``value``."""
    if isinstance(value, str):
        numeric = _NUMERIC.get(value)
        if numeric is not None:
            return lambda values: int(values[numeric])
        return compile_template(value, field=field)
    if isinstance(value, dict):
        items = [
            (compile_template(k, field=field), _compile_json(v, field)) for k, v in value.items()
        ]
        return lambda values: {k(values): v(values) for k, v in items}
    if isinstance(value, list):
        elements = [_compile_json(v, field) for v in value]
        return lambda values: [e(values) for e in elements]
    return lambda values: value


def _names_in_json(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(compile_template(value).names)
    if isinstance(value, dict):
        return {
            n for k, v in value.items() for n in (*compile_template(k).names, *_names_in_json(v))
        }
    if isinstance(value, list):
        return {n for v in value for n in _names_in_json(v)}
    return set()


class RequestTemplate:
    """One ``workload.requests`` entry, ready to render for a :class:`Call`."""

    def __init__(self, spec: Any, seed: int) -> None:
        self.spec = spec
        self.name: str = spec.name
        self.timeout_s: float = float(spec.timeout)
        self._seed = seed
        field = self.name
        self._path: Template = compile_template(spec.path, field=f"{field}.path")
        self._query = [
            (k, compile_template(v, field=f"{field}.query")) for k, v in spec.query.items()
        ]
        self._headers = [
            (k, compile_template(v, field=f"{field}.headers")) for k, v in spec.headers.items()
        ]
        self._body: Template | None = (
            compile_template(spec.body, field=f"{field}.body") if spec.body is not None else None
        )
        self._json = _compile_json(spec.json_body, f"{field}.json")
        outside: set[str] = set()  # placeholders outside the path
        for _, t in (*self._query, *self._headers):
            outside |= t.names
        outside |= self._body.names if self._body is not None else set()
        outside |= _names_in_json(spec.json_body)
        used = outside | self._path.names
        self._random = bool(used & {"uuid", "random_int"})
        self.static = not used & set(_PLACEHOLDERS)
        """No placeholder at all: every call sends the same request."""
        self._fixed: RenderedRequest | None = self._render({}) if self.static else None
        only_path = not outside and self._path.names <= {"key", "seq"}
        self._rest = self._render({}, path="") if only_path else None
        self._quoted: dict[str, str] = {}

    def _values(self, call: Call) -> dict[str, str]:
        values = {"key": call.key, "seq": str(call.seq)}
        if self._random:
            rng = random.Random(f"request:{self._seed}:{call.seq}")
            values["uuid"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            values["random_int"] = str(rng.randrange(1_000_000_000))
        return values

    def _render(self, values: Mapping[str, str], path: str | None = None) -> RenderedRequest:
        return RenderedRequest(
            self.spec.method,
            self._path(values) if path is None else path,
            {k: t(values) for k, t in self._query},
            {k: t(values) for k, t in self._headers},
            self._json(values),
            self._body(values) if self._body is not None else None,
        )

    def render(self, call: Call) -> RenderedRequest:
        """The request for ``call`` (the same object for every call of a static request)."""
        if self._fixed is not None:
            return self._fixed
        rest = self._rest
        if rest is not None:  # e.g. GET /items/{key}: only the path changes
            quoted = self._quoted.get(call.key)
            if quoted is None:
                quoted = quote(call.key, safe="")
                if len(self._quoted) < _QUOTED_KEPT:
                    self._quoted[call.key] = quoted
            path = self._path({"key": quoted, "seq": str(call.seq)})
            return _new(RenderedRequest, (rest[0], path, *rest[2:]))
        values = self._values(call)
        if not self._path.names:
            return self._render(values)
        # the key is URL-quoted in the path only
        return self._render(values, self._path({**values, "key": quote(call.key, safe="")}))
