"""What a wizard user asks for, as pure functions of a random generator.

The job-posting wizard looks a service up by slug, then posts a job carrying
the answers and an idempotency key, then reads the job back. Lookups follow a
Zipf distribution over the catalogue (a few services are asked for most of
the time, as in production); a small share uses a well-formed slug that is
not in the catalogue (fallback path) or a malformed one (refused).
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "INVALID_SLUGS",
    "SlugKind",
    "WorkloadMix",
    "ZipfSampler",
    "catalogue_slugs",
    "idempotency_key",
    "job_answers",
]

SlugKind = Literal["known", "unknown", "invalid"]

INVALID_SLUGS: tuple[str, ...] = (
    "Roof-Repair",  # upper case is refused, not lowercased
    "roof_repair",
    "roof--repair",
    "-roof",
    "x" * 101,  # longer than MAX_SLUG_LENGTH
    "plumbing!",
)
"""Slugs the service must refuse (400/422) without touching the database."""


class ZipfSampler:
    """Ranks ``0 .. n-1`` drawn with probability proportional to ``1 / (rank + 1) ** s``."""

    __slots__ = ("_cumulative", "n", "s")

    def __init__(self, n: int, *, s: float = 1.1) -> None:
        if n < 1:
            raise ValueError(f"need at least one item, got n={n}")
        if s < 0:
            raise ValueError(f"the exponent must be >= 0, got s={s}")
        self.n = n
        self.s = s
        self._cumulative: list[float] = list(
            itertools.accumulate(1.0 / float(k + 1) ** s for k in range(n))
        )

    def probability(self, rank: int) -> float:
        """Probability of ``rank`` (0 is the most popular)."""
        total = self._cumulative[-1]
        below = self._cumulative[rank - 1] if rank else 0.0
        return (self._cumulative[rank] - below) / total

    def sample(self, rng: random.Random) -> int:
        """One rank, drawn with ``rng``."""
        x = rng.random() * self._cumulative[-1]
        return min(bisect.bisect_right(self._cumulative, x), self.n - 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadMix:
    """Shares of the lookups that are unknown or invalid; the rest are Zipf-chosen known slugs."""

    unknown_ratio: float = 0.03
    invalid_ratio: float = 0.01
    zipf_s: float = 1.1

    def __post_init__(self) -> None:
        if self.unknown_ratio < 0 or self.invalid_ratio < 0:
            raise ValueError("ratios must be >= 0")
        if self.unknown_ratio + self.invalid_ratio > 1:
            raise ValueError("unknown_ratio + invalid_ratio must not exceed 1")

    def choose(
        self, rng: random.Random, slugs: Sequence[str], sampler: ZipfSampler
    ) -> tuple[SlugKind, str]:
        """One lookup: its kind and the slug to ask for."""
        x = rng.random()
        if x < self.invalid_ratio:
            return "invalid", rng.choice(INVALID_SLUGS)
        if x < self.invalid_ratio + self.unknown_ratio:
            return "unknown", f"no-such-service-{rng.randrange(1_000_000)}"
        return "known", slugs[sampler.sample(rng)]


def job_answers(rng: random.Random) -> dict[str, Any]:
    """The wizard's answers for one job (small, JSON-serialisable)."""
    return {
        "postcode": f"{rng.randrange(10_000, 99_999)}",
        "urgency": rng.choice(("asap", "this-week", "flexible")),
        "budget_eur": rng.choice((100, 250, 500, 1000)),
        "details": "load test",
    }


def idempotency_key(rng: random.Random) -> str:
    """A fresh key (UUID4 built from ``rng`` so a seeded run is reproducible)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def catalogue_slugs(*, seed: int, size: int) -> list[str]:
    """The slugs of the catalogue the service was seeded with, most popular first.

    Uses :func:`resilience.db.catalogue` so the load generator and the seeded
    database agree without a round trip.
    """
    from resilience.db.catalogue import catalogue  # lazy: this module stays importable alone

    return [entry.slug for entry in catalogue(seed=seed, size=size)]
