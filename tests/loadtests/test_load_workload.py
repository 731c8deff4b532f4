"""What wizard users ask for: Zipf-popular slugs, some unknown, some malformed."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from loadtests.workload import (
    INVALID_SLUGS,
    WorkloadMix,
    ZipfSampler,
    idempotency_key,
    job_answers,
)
from resilience.service.slug import is_valid_slug


def test_zipf_probabilities_sum_to_one_and_fall_with_rank() -> None:
    sampler = ZipfSampler(100, s=1.1)
    probabilities = [sampler.probability(r) for r in range(100)]
    assert sum(probabilities) == pytest.approx(1.0)
    assert probabilities == sorted(probabilities, reverse=True)


def test_zipf_samples_follow_the_distribution() -> None:
    sampler = ZipfSampler(50, s=1.0)
    rng = random.Random(1)
    counts = Counter(sampler.sample(rng) for _ in range(50_000))
    assert set(counts) <= set(range(50))
    for rank in (0, 1, 9):
        assert counts[rank] / 50_000 == pytest.approx(sampler.probability(rank), abs=0.01)


def test_mix_shares_match_the_ratios() -> None:
    mix = WorkloadMix(unknown_ratio=0.1, invalid_ratio=0.05)
    rng = random.Random(2)
    slugs = [f"service-{i}" for i in range(20)]
    kinds = Counter(mix.choose(rng, slugs, ZipfSampler(20))[0] for _ in range(20_000))
    assert kinds["invalid"] / 20_000 == pytest.approx(0.05, abs=0.01)
    assert kinds["unknown"] / 20_000 == pytest.approx(0.10, abs=0.01)


def test_slug_kinds_are_what_they_claim() -> None:
    """Invalid slugs really are refused by the service's rule; unknown ones are well-formed."""
    assert not any(is_valid_slug(slug) for slug in INVALID_SLUGS)
    mix = WorkloadMix(unknown_ratio=1.0, invalid_ratio=0.0)
    kind, slug = mix.choose(random.Random(3), ["a"], ZipfSampler(1))
    assert kind == "unknown"
    assert is_valid_slug(slug)


def test_seeded_generators_reproduce_jobs() -> None:
    assert idempotency_key(random.Random(5)) == idempotency_key(random.Random(5))
    assert job_answers(random.Random(5)) == job_answers(random.Random(5))


def test_mix_refuses_impossible_ratios() -> None:
    with pytest.raises(ValueError, match="exceed 1"):
        WorkloadMix(unknown_ratio=0.7, invalid_ratio=0.5)
