"""Scraping the target's Prometheus ``/metrics`` and the ``prom.*`` gate metrics.

A scrape is parsed with ``prometheus_client``'s own parser into a flat
mapping ``series → value``, where a series is the sample name followed by
its labels in sorted order (``http_requests_total{status="500"}``). The
runner writes each scrape into the history (``scrape`` records) at t = 0,
every ``sample_interval``, at each fault start and stop, and at the end.

Gate metrics, per phase (the windows of the gate's phase):

``prom.<name>``                 the last value scraped inside the windows,
                                summed over the series' label sets (a gauge)
``prom.<name>.delta``           how much it grew across the windows (a
                                counter); ``rate``/``per_s`` of it divide by
                                the phase's length
``prom.<name>{labels}`` (and ``.delta``)  one label set only, as written by
                                the parser (``prom.x{status="500"}``)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from resilience.targets.vocabulary import MetricValue

__all__ = ["ScrapeError", "parse_exposition", "scraped_metrics", "series_key"]


class ScrapeError(ValueError):
    """The target's metrics endpoint did not answer Prometheus text."""


def series_key(name: str, labels: Mapping[str, str]) -> str:
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def parse_exposition(text: str) -> dict[str, float]:
    """``series → value`` of a Prometheus text exposition; :class:`ScrapeError` if it is not one."""
    out: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[series_key(sample.name, sample.labels)] = float(sample.value)
    except Exception as exc:  # the parser raises ValueError, IndexError, ... on garbage
        first = text.strip().splitlines()[0][:80] if text.strip() else "(empty)"
        raise ScrapeError(
            f"not Prometheus text ({type(exc).__name__}: {exc}); starts {first!r}"
        ) from None
    if not out and text.strip():
        raise ScrapeError(f"no samples in {text.strip()[:80]!r}")
    return out


def _name_of(series: str) -> str:
    return series.split("{", 1)[0]


def _value_at(scrapes: Sequence[Mapping[str, Any]], t_us: float, series: str) -> float | None:
    """The value of ``series`` in the last scrape at or before ``t_us`` (``None``: none yet)."""
    value: float | None = None
    for rec in scrapes:
        if rec["t_us"] > t_us:
            break
        samples = rec.get("samples", {})
        if series in samples:
            value = float(samples[series])
    return value


_LABEL_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _labels_of(series: str) -> dict[str, str]:
    _, _, inner = series.partition("{")
    return dict(_LABEL_PAIR.findall(inner))


def scraped_metrics(
    scrapes: Sequence[Mapping[str, Any]],
    windows: Sequence[tuple[float, float]],
    *,
    labels: Mapping[str, str] | None = None,
) -> dict[str, MetricValue]:
    """``prom.*`` metrics of ``windows`` from the run's scrape records (sorted by time).

    ``labels`` (a gate's label filter, ``prom.x{status="500"}``) keeps only the
    series carrying every one of them in the per-name totals.
    """
    ordered = sorted(scrapes, key=lambda r: float(r["t_us"]))
    series = sorted({s for rec in ordered for s in rec.get("samples", {})})
    per_series: dict[str, tuple[float | None, float]] = {}
    for s in series:
        last: float | None = None
        delta = 0.0
        for a, b in windows:
            start = _value_at(ordered, a * 1e6, s)
            end = _value_at(ordered, b * 1e6, s)
            if end is not None:
                last = end
                base = start if start is not None else 0.0
                delta += max(0.0, end - base) if end >= base else end  # a reset counts from 0
        per_series[s] = (last, delta)
    out: dict[str, MetricValue] = {}
    totals: dict[str, tuple[float | None, float]] = {}
    wanted = {k: str(v) for k, v in (labels or {}).items()}
    for s, (last, delta) in per_series.items():
        out[f"prom.{s}"] = last
        out[f"prom.{s}.delta"] = delta
        name = _name_of(s)
        if wanted and any(_labels_of(s).get(k) != v for k, v in wanted.items()):
            continue
        if name != s or wanted:
            value, grown = totals.get(name, (None, 0.0))
            if last is not None:
                value = (value or 0.0) + last
            totals[name] = (value, grown + delta)
    for name, (value, grown) in totals.items():
        out.setdefault(f"prom.{name}", value)
        out.setdefault(f"prom.{name}.delta", grown)
    return out
