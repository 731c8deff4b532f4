"""The HTTP target's gate metrics (its vocabulary; see docs/gates.md).

Measured at the client. Latencies are samples in seconds; rates ratios in
[0, 1]; counts numbers (``rate``/``per_s`` aggregations divide them by the
phase's length).

============================  ==============================================
``http``                      latency of every request
``http.<request>``            latency of the requests named so
``http.requests``             requests sent (count)
``http.errors``               requests with outcome ``error`` (5xx, undeclared
                              4xx, timeout, connection error)
``http.error_rate``           errors / requests
``http.degraded_rate``        ``degraded`` answers (``degraded_when``) / requests
``http.ok_rate``              ``ok`` answers / requests
``http.timeouts``             requests that timed out
``http.connection_errors``    requests that got no answer (refused, reset …)
``http.status.<code>``        answers with that status (count), e.g. ``http.status.503``
``http.status.<N>xx``         answers in that class (count), e.g. ``http.status.5xx``
``http.status.<x>.share``     those answers / requests
``prom.<series>``             scraped from the target's ``/metrics`` (see
                              :mod:`resilience.targets.http.prometheus`)
============================  ==============================================
"""

from __future__ import annotations

from collections import Counter

from resilience.targets.http.target import KIND
from resilience.targets.vocabulary import (
    MetricValue,
    Vocabulary,
    VocabularyInput,
    register_vocabulary,
)

__all__ = ["NAMES", "http_metrics"]

NAMES = frozenset(
    {
        "http",
        "http.requests",
        "http.errors",
        "http.error_rate",
        "http.degraded_rate",
        "http.ok_rate",
        "http.timeouts",
        "http.connection_errors",
    }
)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def http_metrics(data: VocabularyInput) -> dict[str, MetricValue]:
    ops = data.ops
    n = len(ops)
    outcomes = Counter(o.outcome for o in ops)
    metrics: dict[str, MetricValue] = {
        "http": [o.latency_us / 1e6 for o in ops],
        "http.requests": n,
        "http.errors": outcomes["error"],
        "http.error_rate": _ratio(outcomes["error"], n),
        "http.degraded_rate": _ratio(outcomes["degraded"], n),
        "http.ok_rate": _ratio(outcomes["ok"], n),
        "http.timeouts": sum(1 for o in ops if o.path == "timeout" and o.status == 0),
        "http.connection_errors": sum(1 for o in ops if o.path == "connection" and o.status == 0),
    }
    by_name: dict[str, list[float]] = {}
    for o in ops:
        by_name.setdefault(o.op, []).append(o.latency_us / 1e6)
    for name, samples in by_name.items():
        metrics[f"http.{name}"] = samples
    statuses = Counter(o.status for o in ops if o.status)
    classes: Counter[str] = Counter()
    for code, count in statuses.items():
        metrics[f"http.status.{code}"] = count
        metrics[f"http.status.{code}.share"] = _ratio(count, n)
        classes[f"{code // 100}xx"] += count
    for cls in ("2xx", "3xx", "4xx", "5xx"):
        metrics[f"http.status.{cls}"] = classes[cls]
        metrics[f"http.status.{cls}.share"] = _ratio(classes[cls], n)
    metrics.update(_prometheus(data))
    return metrics


def _prometheus(data: VocabularyInput) -> dict[str, MetricValue]:
    scrapes = data.records.get("scrape", ())
    if not scrapes:
        return {}
    from resilience.targets.http.prometheus import scraped_metrics

    return scraped_metrics(scrapes, data.windows, labels=data.labels)


register_vocabulary(Vocabulary(KIND, NAMES, http_metrics, prefixes=("http.", "prom.")))
