"""Cheap statistics give exactly the service's own figures."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from resilience.service.model import LookupResult
from resilience.service.stats import ServiceStats, percentiles_us
from resilience.sim.stats import CountedServiceStats, counted_percentiles_us


@given(st.lists(st.integers(min_value=0, max_value=5000), max_size=300))
def test_counted_percentiles_match_sorting(samples: list[int]) -> None:
    assert counted_percentiles_us(Counter(samples)) == percentiles_us(samples)


@given(
    st.lists(
        st.tuples(st.sampled_from(["cache", "redis", "db", "fallback"]), st.integers(0, 300)),
        max_size=200,
    )
)
def test_counted_stats_equal_service_stats_with_a_sliding_window(
    ops: list[tuple[str, int]],
) -> None:
    plain, counted = ServiceStats(window=17), CountedServiceStats(window=17)
    for i, (path, duration) in enumerate(ops):
        result = LookupResult(
            slug="s",
            uuid=None,
            path=path,
            outcome="success",
            reason=None,
            duration_us=duration,  # type: ignore[arg-type]
        )
        plain.observe(result)
        counted.observe(result)
        if i % 25 == 0:
            assert counted.to_dict() == plain.to_dict()
    assert counted.to_dict() == plain.to_dict()
