"""Metrics: per-call records, exact µs histograms, Prometheus text.

- :mod:`.histogram` — :class:`Histogram`, exact percentiles at µs resolution.
- :mod:`.recorder` — :class:`MetricsRecorder`, counters/rates/histograms per
  operation and path, with sinks.
- :mod:`.prometheus` — :func:`render`, the text exposition format.
"""

from resilience.metrics.histogram import SUMMARY_QUANTILES, Histogram, quantile_key
from resilience.metrics.prometheus import CONTENT_TYPE, MetricFamily, render
from resilience.metrics.recorder import (
    OUTCOMES,
    PATHS,
    MetricsRecorder,
    MetricsSink,
    OperationRecord,
    Outcome,
    Path,
)

__all__ = [
    "CONTENT_TYPE",
    "OUTCOMES",
    "PATHS",
    "SUMMARY_QUANTILES",
    "Histogram",
    "MetricFamily",
    "MetricsRecorder",
    "MetricsSink",
    "OperationRecord",
    "Outcome",
    "Path",
    "quantile_key",
    "render",
]
