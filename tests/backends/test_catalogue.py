"""The seed catalogue is pure and deterministic; historical jobs too."""

from __future__ import annotations

import re

import pytest

from resilience.db.catalogue import catalogue, generate_jobs


def test_same_seed_same_catalogue() -> None:
    assert catalogue(seed=7, size=300) == catalogue(seed=7, size=300)


def test_seed_changes_uuids_not_slugs() -> None:
    a, b = catalogue(seed=1, size=50), catalogue(seed=2, size=50)
    assert [e.slug for e in a] == [e.slug for e in b]
    assert all(x.uuid != y.uuid for x, y in zip(a, b, strict=True))


def test_slugs_are_unique_valid_and_suffixed_past_the_base_table() -> None:
    entries = catalogue(size=300)
    slugs = [e.slug for e in entries]
    assert len(set(slugs)) == 300
    assert slugs[0] == "roof-repair"
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", s) for s in slugs)
    assert any(s.endswith("-2") for s in slugs)
    assert all(e.uuid.version == 4 for e in entries)


def test_size_is_a_prefix() -> None:
    assert catalogue(size=10) == catalogue(size=300)[:10]
    assert catalogue(size=0) == []
    with pytest.raises(ValueError, match="size"):
        catalogue(size=-1)


def test_generated_jobs_are_deterministic_with_the_requested_unknown_share() -> None:
    entries = catalogue(size=100)
    jobs = generate_jobs(entries, count=2000, unknown_share=0.2, seed=3)
    assert jobs == generate_jobs(entries, count=2000, unknown_share=0.2, seed=3)
    known = {e.slug for e in entries}
    unknown = sum(j.micro_id not in known for j in jobs)
    assert 0.15 < unknown / 2000 < 0.25
    assert len({j.idempotency_key for j in jobs}) == 2000
    assert all(j.micro_uuid is None for j in jobs)
