"""Locust's statistics and the service's ``/stats`` as the metric mapping gates read.

Pure: the Locust adapter (:mod:`loadtests.gates`) copies what it needs out of
Locust's objects into :class:`EndpointRecord` values first.

Metric names (durations in seconds, ratios in 0..1)::

    http.<endpoint>                 response-time samples: p(N), avg, max, count, per_s …
    http.<endpoint>.failure_ratio   failed / sent
    http.<endpoint>.requests        requests sent
    http.<endpoint>.failures        requests failed
    http.all …                      the same over every endpoint
    failure_ratio                   = http.all.failure_ratio
    window_s                        seconds from the first to the last request
    cache.hit_rate, success_rate,   the service's own rates from /stats, under the
    fallback_rate, error_rate       names the scenario gates use
    breaker.opens                   breaker openings (count; ``per_hour`` works)
    breaker.open                    1 when the breaker is open at the end, else 0
    lookup.<path>                   mean lookup time of a path (cache, redis, db,
                                    fallback) in seconds, as the service measured it
    lookup.<path>.p50 … .p99, .max  that path's percentiles (the service keeps them,
                                    not the samples: write ``lookup.db.p95 < 50ms``)
    service.<key>                   every number in /stats, flattened with dots
                                    (``service.workers``: how many uvicorn workers
                                    the figures cover; /stats sums every live
                                    worker through Redis, see docs/service.md)

Endpoints: ``lookup`` (GET /services/[slug]), ``lookup_invalid`` (the
deliberately malformed slugs), ``job_post`` (POST /jobs), ``job_read``
(GET /jobs/[id]); anything else by its name with non-word characters as ``_``.
Locust keeps response times rounded (exact below 100 ms, two significant
digits above), so percentiles have that resolution.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ENDPOINTS",
    "EndpointRecord",
    "endpoint_key",
    "flatten_numbers",
    "load_metrics",
    "service_metrics",
]

ENDPOINTS: Mapping[tuple[str, str], str] = {
    ("GET", "/services/[slug]"): "lookup",
    ("GET", "/services/[invalid]"): "lookup_invalid",
    ("POST", "/jobs"): "job_post",
    ("GET", "/jobs/[id]"): "job_read",
}
"""(method, Locust request name) → the endpoint's metric name."""


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """One Locust stats entry, copied out: counts and the ms histogram."""

    method: str
    name: str
    requests: int
    failures: int
    histogram_ms: Mapping[int, int] = field(default_factory=dict)
    """Rounded response time in ms → how many requests took that long."""


def endpoint_key(method: str, name: str, plain_names: Iterable[str] = ()) -> str:
    """The metric name of an endpoint (``name`` itself when it is one of ``plain_names``:
    an HTTP target's request names)."""
    if name in plain_names:
        return name
    known = ENDPOINTS.get((method.upper(), name))
    if known is not None:
        return known
    return re.sub(r"[\W_]+", "_", f"{method.lower()}_{name}").strip("_") or "unnamed"


def _samples_s(histogram_ms: Mapping[int, int]) -> list[float]:
    samples: list[float] = []
    for ms in sorted(histogram_ms):
        samples.extend([ms / 1000.0] * int(histogram_ms[ms]))
    return samples


def flatten_numbers(data: Any, prefix: str) -> dict[str, float]:
    """Every number (bools as 0/1) in nested mappings, keyed by its dotted path."""
    out: dict[str, float] = {}
    if isinstance(data, int | float):  # bools too, as 0/1
        out[prefix] = float(data)
    elif isinstance(data, Mapping):
        for key, value in data.items():
            name = re.sub(r"[^A-Za-z0-9_]+", "_", str(key)).strip("_") or "_"
            if name[0].isdigit():
                name = f"_{name}"
            out.update(flatten_numbers(value, f"{prefix}.{name}" if prefix else name))
    return out


def load_metrics(
    records: Iterable[EndpointRecord],
    *,
    window_s: float,
    service_stats: Mapping[str, Any] | None = None,
    plain_names: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The metric mapping for :func:`resilience.scenario.gates.evaluate`.

    ``plain_names``: request names used as endpoint names as they are
    (``http.<name>``), the requests of an HTTP target's profile.
    """
    metrics: dict[str, Any] = {"window_s": window_s}
    total_requests = total_failures = 0
    total_histogram: dict[int, int] = {}
    for record in records:
        key = f"http.{endpoint_key(record.method, record.name, plain_names)}"
        metrics[key] = _samples_s(record.histogram_ms)
        metrics[f"{key}.requests"] = record.requests
        metrics[f"{key}.failures"] = record.failures
        metrics[f"{key}.failure_ratio"] = (
            record.failures / record.requests if record.requests else None
        )
        total_requests += record.requests
        total_failures += record.failures
        for ms, count in record.histogram_ms.items():
            total_histogram[ms] = total_histogram.get(ms, 0) + count
    metrics["http.all"] = _samples_s(total_histogram)
    metrics["http.all.requests"] = total_requests
    metrics["http.all.failures"] = total_failures
    ratio = total_failures / total_requests if total_requests else None
    metrics["http.all.failure_ratio"] = ratio
    metrics["failure_ratio"] = ratio
    if service_stats:
        metrics.update(service_metrics(service_stats))
    return metrics


_RATES = {
    "cache.hit_rate": "hit_rate",
    "success_rate": "success_rate",
    "fallback_rate": "fallback_rate",
    "error_rate": "error_rate",
}


def service_metrics(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The service's ``/stats`` under gate names (see the module docstring)."""
    metrics: dict[str, Any] = dict(flatten_numbers(stats, "service"))
    lookups = stats.get("lookups")
    for name, key in _RATES.items():
        if key in stats:
            metrics[name] = float(stats[key]) if lookups != 0 else None
    breaker = stats.get("breaker")
    if isinstance(breaker, Mapping):
        if "opens" in breaker:
            metrics["breaker.opens"] = float(breaker["opens"])
        if "state" in breaker:
            metrics["breaker.open"] = 1.0 if breaker["state"] == "open" else 0.0
    latency = stats.get("latency_us")
    if isinstance(latency, Mapping):
        for path, figures in latency.items():
            if not isinstance(figures, Mapping) or not figures.get("count"):
                continue
            metrics[f"lookup.{path}"] = float(figures.get("mean", 0.0)) / 1e6
            for stat in ("p50", "p90", "p95", "p99", "max"):
                if stat in figures:
                    metrics[f"lookup.{path}.{stat}"] = float(figures[stat]) / 1e6
    return metrics
