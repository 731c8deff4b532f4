"""The ``http_*`` toxics' attributes as a scenario writes them: checked and completed.

The proxy (``resilience.proxy.toxics``) owns the wire behaviour; this is the
scenario side's reading of the same attributes (docs/toxics.md), so a bad
value is a scenario error naming the field before anything starts, and the
simulator models the toxics from the same completed values.

Every HTTP toxic has the filters ``methods`` (list, any case; empty: all),
``paths`` and ``exclude`` (lists of prefixes, or globs with ``*?[``) and
``rate`` (share 0–1 of matching requests, default 1). Then:
``http_error``: ``status`` (100–599, default 503), ``body`` (text),
``headers`` (name → value); ``http_delay``: ``latency`` and ``jitter`` (ms);
``http_abort``: ``mode`` (``close``, ``reset``, ``malformed``) and
``after_bytes``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HTTP_TOXIC_DEFAULTS", "http_toxic_attributes"]

_FILTERS: dict[str, Any] = {"methods": [], "paths": [], "exclude": [], "rate": 1.0}
HTTP_TOXIC_DEFAULTS: dict[str, dict[str, Any]] = {
    "http_error": {**_FILTERS, "status": 503, "body": "", "headers": {}},
    "http_delay": {**_FILTERS, "latency": 0, "jitter": 0},
    "http_abort": {**_FILTERS, "mode": "close", "after_bytes": 0},
}
"""Each HTTP toxic's attributes with their defaults (ms for ``latency``/``jitter``)."""

_MODES = ("close", "reset", "malformed")


def _strings(toxic: str, key: str, value: Any) -> list[str]:
    if isinstance(value, str):  # the API takes a JSON array: say how to write one
        raise ValueError(f"toxic {toxic!r}: {key!r} is a list, e.g. [{value}] (got {value!r})")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"toxic {toxic!r}: {key!r} is a list of strings (got {value!r})")
    return list(value)


def _int(toxic: str, key: str, value: Any, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"toxic {toxic!r}: {key!r} must be an integer (got {value!r})")
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ValueError(f"toxic {toxic!r}: {key!r} must be {span} (got {value})")
    return value


def http_toxic_attributes(toxic: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` completed with the defaults; ValueError naming a bad one."""
    defaults = HTTP_TOXIC_DEFAULTS[toxic]
    unknown = sorted(set(attributes) - set(defaults))
    if unknown:
        raise ValueError(
            f"toxic {toxic!r} has no attribute {unknown[0]!r} (valid: {', '.join(defaults)})"
        )
    out = {**defaults, **attributes}
    for key in ("methods", "paths", "exclude"):
        out[key] = _strings(toxic, key, out[key])
    rate = out["rate"]
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise ValueError(f"toxic {toxic!r}: 'rate' is a share from 0 to 1 (got {rate!r})")
    out["rate"] = float(rate)
    if toxic == "http_error":
        out["status"] = _int(toxic, "status", out["status"], 100, 599)
        if not isinstance(out["body"], str):
            raise ValueError(f"toxic {toxic!r}: 'body' is text (got {out['body']!r})")
        headers = out["headers"]
        if not isinstance(headers, dict) or not all(isinstance(k, str) for k in headers):
            raise ValueError(f"toxic {toxic!r}: 'headers' maps names to values (got {headers!r})")
        out["headers"] = {k: str(v) for k, v in headers.items()}
    elif toxic == "http_delay":
        out["latency"] = _int(toxic, "latency", out["latency"])
        out["jitter"] = _int(toxic, "jitter", out["jitter"])
    else:
        if out["mode"] not in _MODES:
            raise ValueError(
                f"toxic {toxic!r}: 'mode' is one of {', '.join(_MODES)} (got {out['mode']!r})"
            )
        out["after_bytes"] = _int(toxic, "after_bytes", out["after_bytes"])
    return out
