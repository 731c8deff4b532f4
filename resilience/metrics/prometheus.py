"""Render a :meth:`MetricsRecorder.snapshot` as Prometheus text exposition format.

Families written (``<ns>`` is the namespace, ``resilience`` by default)::

    <ns>_operations_total{operation,outcome}            counter
    <ns>_operation_path_total{operation,path}           counter
    <ns>_operation_attempts_total{operation}            counter
    <ns>_operation_retried_total{operation}             counter
    <ns>_operation_hit_ratio{operation}                 gauge   (and success/fallback/error)
    <ns>_operation_duration_seconds{operation,path}     summary (quantiles 0.5 … 0.999)
    <ns>_operation_latency_seconds{operation}           summary (all paths together)

Durations are converted from µs to seconds (Prometheus's base unit). Extra
gauges and counters (breaker state, cache size, …) come in as plain
``name → value`` mappings or as labelled :class:`MetricFamily` objects;
counter names get ``_total`` appended when missing. Every family has HELP and
TYPE lines; label values and HELP text are escaped per the format.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from resilience.metrics.histogram import SUMMARY_QUANTILES, quantile_key

__all__ = ["CONTENT_TYPE", "MetricFamily", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The ``Content-Type`` of the text exposition format."""

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RATES = ("hit", "success", "fallback", "error")


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """An extra labelled counter or gauge: ``samples`` are ``(labels, value)`` pairs."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    samples: Sequence[tuple[Mapping[str, str], float]] = field(default_factory=tuple)


def render(
    snapshot: Mapping[str, Any],
    *,
    namespace: str = "resilience",
    gauges: Mapping[str, float] | None = None,
    counters: Mapping[str, float] | None = None,
    families: Iterable[MetricFamily] = (),
) -> str:
    """The snapshot (and the extras) as exposition text, ending with a newline."""
    ns = namespace
    operations: Mapping[str, Any] = snapshot.get("operations", {})
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        _check_name(name)
        out.append(f"# HELP {name} {_escape_help(help_text)}")
        out.append(f"# TYPE {name} {kind}")

    def sample(name: str, labels: Mapping[str, str], value: float | None) -> None:
        out.append(f"{name}{_labels(labels)} {_value(value)}")

    family(f"{ns}_operations_total", "counter", "Operations recorded, by outcome.")
    for op, data in operations.items():
        for outcome, count in data["outcomes"].items():
            sample(f"{ns}_operations_total", {"operation": op, "outcome": outcome}, count)
    family(f"{ns}_operation_path_total", "counter", "Operations recorded, by answering path.")
    for op, data in operations.items():
        for path, count in data["paths"].items():
            sample(f"{ns}_operation_path_total", {"operation": op, "path": path}, count)
    family(f"{ns}_operation_attempts_total", "counter", "Attempts made, retries included.")
    for op, data in operations.items():
        sample(f"{ns}_operation_attempts_total", {"operation": op}, data["attempts"])
    family(f"{ns}_operation_retried_total", "counter", "Operations that needed a retry.")
    for op, data in operations.items():
        sample(f"{ns}_operation_retried_total", {"operation": op}, data["retried"])
    for rate in _RATES:
        name = f"{ns}_operation_{rate}_ratio"
        family(name, "gauge", f"Share of valid operations counted as {rate} (0..1).")
        for op, data in operations.items():
            value = data.get(f"{rate}_rate")
            if value is not None:
                sample(name, {"operation": op}, value)

    duration = f"{ns}_operation_duration_seconds"
    family(duration, "summary", "Operation duration by answering path (exact quantiles).")
    for op, data in operations.items():
        for path, summary in data["latency_us"].items():
            if path != "all":
                _summary(sample, duration, {"operation": op, "path": path}, summary)
    latency = f"{ns}_operation_latency_seconds"
    family(latency, "summary", "Operation duration over all paths (exact quantiles).")
    for op, data in operations.items():
        _summary(sample, latency, {"operation": op}, data["latency_us"]["all"])

    for name, value in (counters or {}).items():
        total = name if name.endswith("_total") else f"{name}_total"
        family(total, "counter", f"{total} (supplied by the caller).")
        sample(total, {}, value)
    for name, value in (gauges or {}).items():
        family(name, "gauge", f"{name} (supplied by the caller).")
        sample(name, {}, value)
    for extra in families:
        name = extra.name
        if extra.kind == "counter" and not name.endswith("_total"):
            name = f"{name}_total"
        family(name, extra.kind, extra.help)
        for labels, value in extra.samples:
            sample(name, labels, value)
    return "\n".join(out) + "\n"


def _summary(
    sample: Callable[[str, Mapping[str, str], float | None], None],
    name: str,
    labels: Mapping[str, str],
    summary: Mapping[str, Any],
) -> None:
    if not summary.get("count"):
        return
    for q in SUMMARY_QUANTILES:
        value_us = summary.get(quantile_key(q))
        if value_us is not None:
            sample(name, {**labels, "quantile": format(q / 100, "g")}, value_us / 1e6)
    sample(f"{name}_sum", labels, summary["sum"] / 1e6)
    sample(f"{name}_count", labels, summary["count"])


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"invalid Prometheus metric name {name!r}")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    parts = []
    for key, value in labels.items():
        if not _LABEL.match(key) or key.startswith("__"):
            raise ValueError(f"invalid Prometheus label name {key!r}")
        parts.append(f'{key}="{_escape_label(str(value))}"')
    return "{" + ",".join(parts) + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _value(value: float | None) -> str:
    if value is None:
        return "NaN"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
