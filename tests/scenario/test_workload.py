"""The open-model arrival scheduler: seeded, on schedule, with the configured mix and keys."""

from __future__ import annotations

import collections
import itertools
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from resilience.scenario.model import WorkloadSpec
from resilience.scenario.workload import INVALID_SLUGS, arrivals, unknown_slugs

CATALOGUE = [f"svc-{i}" for i in range(200)]


def _spec(**kw: object) -> WorkloadSpec:
    base: dict[str, object] = {"duration": 10.0, "rate": 500.0}
    base.update(kw)
    return WorkloadSpec.model_validate(base)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.sampled_from(["poisson", "uniform"]))
def test_same_seed_same_schedule(seed: int, kind: str) -> None:
    spec = _spec(
        duration=2.0,
        arrivals=kind,
        keys={"unknown_share": 0.1, "invalid_share": 0.1},
        mix={"lookup": 3, "job": 1},
    )
    assert list(arrivals(spec, CATALOGUE, seed)) == list(arrivals(spec, CATALOGUE, seed))


def test_different_seeds_differ() -> None:
    spec = _spec(duration=1.0)
    assert list(arrivals(spec, CATALOGUE, 1)) != list(arrivals(spec, CATALOGUE, 2))


def test_poisson_arrivals_match_the_rate_and_stay_in_the_window() -> None:
    spec = _spec(duration=20.0, rate=500.0)
    times = [a.t_s for a in arrivals(spec, CATALOGUE, 7)]
    assert abs(len(times) - 10_000) < 400  # ~4 sigma of a Poisson count
    assert times == sorted(times)
    assert times[0] > 0
    assert times[-1] < 20.0
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert abs(statistics.mean(gaps) - 1 / 500) < 1e-4
    assert statistics.stdev(gaps) > 0.8 / 500  # exponential gaps, not a metronome


def test_uniform_arrivals_are_evenly_spaced() -> None:
    times = [
        a.t_s for a in arrivals(_spec(duration=1.0, rate=100.0, arrivals="uniform"), CATALOGUE, 0)
    ]
    assert len(times) == 100
    assert all(abs((b - a) - 0.01) < 1e-9 for a, b in itertools.pairwise(times))


def test_the_schedule_is_open_model_independent_of_any_service() -> None:
    """Arrival times are a function of the seed alone: nothing waits for a reply."""
    spec = _spec(duration=1.0)
    first = [a.t_s for a in arrivals(spec, CATALOGUE, 3)]
    other_catalogue = [a.t_s for a in arrivals(spec, [f"x-{i}" for i in range(200)], 3)]
    assert first == other_catalogue


def test_shares_of_unknown_invalid_and_jobs() -> None:
    spec = _spec(
        duration=40.0,
        keys={"unknown_share": 0.2, "invalid_share": 0.1},
        mix={"lookup": 0.75, "job": 0.25},
    )
    drawn = list(arrivals(spec, CATALOGUE, 11))
    kinds = collections.Counter(a.key for a in drawn)
    n = len(drawn)
    assert abs(kinds["unknown"] / n - 0.2) < 0.02
    assert abs(kinds["invalid"] / n - 0.1) < 0.02
    assert abs(sum(a.op == "job" for a in drawn) / n - 0.25) < 0.02
    assert all(a.slug in INVALID_SLUGS for a in drawn if a.key == "invalid")
    assert all(a.slug in unknown_slugs() for a in drawn if a.key == "unknown")
    assert all(a.slug in CATALOGUE for a in drawn if a.key == "known")


def test_zipf_favours_low_ranks_and_uniform_does_not() -> None:
    zipf = collections.Counter(a.slug for a in arrivals(_spec(duration=40.0), CATALOGUE, 5))
    flat = collections.Counter(
        a.slug
        for a in arrivals(_spec(duration=40.0, keys={"distribution": "uniform"}), CATALOGUE, 5)
    )
    assert zipf["svc-0"] > 10 * zipf["svc-100"]
    assert max(flat.values()) < 3 * min(flat.values())


def test_catalogue_size_limits_the_known_keys() -> None:
    spec = _spec(duration=10.0, keys={"catalogue_size": 10})
    assert {a.slug for a in arrivals(spec, CATALOGUE, 1)} <= set(CATALOGUE[:10])
