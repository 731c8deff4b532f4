"""The public names of classify, retry, detector, degradation and metrics stay put."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "resilience.classify": {"classify", "parse_retry_after", "SQLSTATE_EXACT", "ERRNO_CLASSES"},
    "resilience.retry": {
        "Retry",
        "RetryAttempt",
        "RetryBudget",
        "LOOKUP_RETRY",
        "HTTP_API_RETRY",
        "STORAGE_RETRY",
    },
    "resilience.detector": {"FailureDetector", "HealthStatus"},
    "resilience.degradation": {"Degradation", "DegradationEvent", "with_fallback"},
    "resilience.metrics": {
        "Histogram",
        "MetricsRecorder",
        "OperationRecord",
        "MetricsSink",
        "MetricFamily",
        "render",
    },
}


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_sorted_complete_and_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = list(module.__all__)
    # isort-style order (as ruff's RUF022 keeps it): CONSTANTS, Classes, functions
    assert exported == sorted(exported, key=_isort_key)
    assert PUBLIC[module_name] <= set(exported)
    for name in exported:
        assert hasattr(module, name), name
