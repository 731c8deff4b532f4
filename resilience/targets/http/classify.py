"""Outcome of an HTTP answer: ``ok``, ``degraded`` or ``error``, and the path that served it.

Defaults: 2xx and 3xx ``ok``, everything else ``error`` (a timeout or a
connection error is classified before this, by the target). A request's
``status`` table overrides a code (``{404: ok}``); ``degraded_when`` rules
turn an ``ok`` answer into ``degraded`` (a header present or equal to a
value; a JSON pointer's value equal to one); ``path_from`` reads the path
(cache, database, fallback …) from a header or a JSON pointer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["classify", "json_pointer"]

_MISSING = object()


def json_pointer(document: Any, pointer: str) -> Any:
    """The value at RFC 6901 ``pointer`` in ``document`` (a private sentinel when absent)."""
    value = document
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            if token not in value:
                return _MISSING
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return _MISSING
    return value


class _Body:
    """The answer's JSON, parsed on first use only."""

    __slots__ = ("_parsed", "_raw")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._parsed: Any = _MISSING

    def at(self, pointer: str) -> Any:
        if self._parsed is _MISSING:
            try:
                self._parsed = orjson.loads(self._raw) if self._raw else None
            except orjson.JSONDecodeError:
                self._parsed = None
        return json_pointer(self._parsed, pointer)


def _matches(rule: Any, headers: Mapping[str, str], body: _Body) -> bool:
    if rule.header is not None:
        value = headers.get(rule.header)
        if value is None:
            return False
        return rule.equals is None or value == str(rule.equals)
    found = body.at(rule.json_pointer)
    if found is _MISSING:
        return False
    return rule.equals is None or found == rule.equals


def classify(
    request: Any, status: int, headers: Mapping[str, str], raw_body: bytes
) -> tuple[str, str, str | None]:
    """``(outcome, path, reason)`` of an answer to ``request`` (a ``RequestSpec``)."""
    body = _Body(raw_body)
    outcome = request.status.get(status)
    if outcome is None:
        outcome = "ok" if 200 <= status < 400 else "error"
    reason = None if outcome == "ok" else f"status {status}"
    if outcome == "ok":
        for rule in request.degraded_when:
            if _matches(rule, headers, body):
                outcome = "degraded"
                reason = f"header {rule.header}" if rule.header else f"json {rule.json_pointer}"
                break
    path = ""
    source = request.path_from
    if source is not None:
        if source.header is not None:
            path = headers.get(source.header, "")
        else:
            found = body.at(source.json_pointer)
            path = "" if found is _MISSING or found is None else str(found)
    return outcome, path, reason
