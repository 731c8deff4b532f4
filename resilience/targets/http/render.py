"""Requests from templates: the same seed and sequence number give the same request.

``{key}`` is the drawn key (URL-quoted in the path), ``{seq}`` the
operation's number, ``{uuid}`` and ``{random_int}`` come from a generator
seeded by the run's seed and ``seq`` — independent of timing and of the
order in which answers arrive. In a JSON body a string that is exactly
``"{seq}"`` or ``"{random_int}"`` becomes a number.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

from resilience.targets.base import Call
from resilience.targets.http.templates import fill

__all__ = ["RenderedRequest", "RequestTemplate"]

_NUMERIC = {"{seq}": "seq", "{random_int}": "random_int"}


class RenderedRequest(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: str | None


def _uses(spec: Any, name: str) -> bool:
    needle = "{" + name + "}"
    texts = [spec.path, *spec.query.values(), *spec.headers.values(), spec.body or ""]
    return any(needle in t for t in texts) or needle in repr(spec.json_body)


class RequestTemplate:
    """One ``workload.requests`` entry, ready to render for a :class:`Call`."""

    def __init__(self, spec: Any, seed: int) -> None:
        self.spec = spec
        self.name: str = spec.name
        self.timeout_s: float = float(spec.timeout)
        self._seed = seed
        self._random = _uses(spec, "uuid") or _uses(spec, "random_int")
        self._static = not any(_uses(spec, n) for n in ("key", "uuid", "seq", "random_int"))

    def _values(self, call: Call, *, for_path: bool) -> dict[str, str]:
        values = {"key": quote(call.key, safe="") if for_path else call.key, "seq": str(call.seq)}
        if self._random:
            rng = random.Random(f"request:{self._seed}:{call.seq}")
            values["uuid"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            values["random_int"] = str(rng.randrange(1_000_000_000))
        return values

    def render(self, call: Call) -> RenderedRequest:
        spec = self.spec
        if self._static:
            return RenderedRequest(
                spec.method,
                spec.path,
                dict(spec.query),
                dict(spec.headers),
                spec.json_body,
                spec.body,
            )
        values = self._values(call, for_path=False)
        path = fill(spec.path, self._values(call, for_path=True), field=f"{self.name}.path")
        query = {k: fill(v, values) for k, v in spec.query.items()}
        headers = {k: fill(v, values) for k, v in spec.headers.items()}
        body = fill(spec.body, values) if spec.body is not None else None
        json_body = _fill_json(spec.json_body, values)
        return RenderedRequest(spec.method, path, query, headers, json_body, body)


def _fill_json(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        numeric = _NUMERIC.get(value)
        if numeric is not None:
            return int(values[numeric])
        return fill(value, values)
    if isinstance(value, dict):
        return {fill(k, values): _fill_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_json(v, values) for v in value]
    return value
