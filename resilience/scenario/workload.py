"""The open-model arrival schedule: when each operation starts and what it asks.

:func:`arrivals` is a pure function of the workload, the catalogue and the
seed: the same inputs give the same schedule, operation for operation. Times
are seconds since the workload started. Arrivals are Poisson (exponential
gaps with mean 1/rate) or evenly spaced; each is a lookup or a job post by
the mix; its slug is a known catalogue slug (Zipf or uniform over the
catalogue in rank order), a well-formed unknown slug, or a malformed one.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from resilience.scenario.model import WorkloadSpec

__all__ = ["INVALID_SLUGS", "Arrival", "KeyChooser", "arrivals", "unknown_slugs"]

INVALID_SLUGS: tuple[str, ...] = (
    "Roof-Repair",
    "roof repair",
    "../etc/passwd",
    "",
    "-leading-hyphen",
    "trailing-hyphen-",
    "double--hyphen",
    "x" * 101,
    "'; DROP TABLE micro_services; --",
    "émoji-ß",
    "UPPER",
    "tab\tslug",
)
"""Malformed slugs mixed in by ``invalid_share``: each breaks a different rule."""

UNKNOWN_POOL = 50
"""How many distinct well-formed unknown slugs ``unknown_share`` draws from."""


def unknown_slugs(count: int = UNKNOWN_POOL) -> list[str]:
    """Well-formed slugs that are not in any seeded catalogue."""
    return [f"no-such-service-{i}" for i in range(count)]


class Arrival(NamedTuple):
    """One scheduled operation. ``key`` is ``known``, ``unknown`` or ``invalid``.

    A named tuple: a schedule has one per operation (720 000 in a simulated hour).
    """

    seq: int
    t_s: float
    op: str
    key: str
    slug: str


class KeyChooser:
    """Draws slugs: known ones by Zipf (weight 1/rank^s) or uniformly; unknown/invalid by share."""

    def __init__(
        self, workload: WorkloadSpec, catalogue: Sequence[str], rng: random.Random
    ) -> None:
        keys = workload.keys
        listed = keys.values is not None or keys.file is not None  # every listed key counts
        known = catalogue if listed else catalogue[: keys.catalogue_size]
        self._known = list(known) or ["missing-catalogue"]
        self._rng = rng
        self._unknown_share = keys.unknown_share
        self._invalid_share = keys.invalid_share
        self._unknown = unknown_slugs()
        self._cumulative: list[float] | None = None
        if keys.distribution == "zipf":
            weights = [1.0 / (rank**keys.exponent) for rank in range(1, len(self._known) + 1)]
            self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1] if self._cumulative else 0.0
        self._last = len(self._known) - 1
        self._both_shares = self._invalid_share + self._unknown_share

    def choose(self) -> tuple[str, str]:
        """``(key kind, slug)``."""
        rng = self._rng
        u = rng.random()
        if u < self._invalid_share:
            return "invalid", rng.choice(INVALID_SLUGS)
        if u < self._both_shares:
            return "unknown", rng.choice(self._unknown)
        cumulative = self._cumulative
        if cumulative is None:
            return "known", self._known[rng.randrange(len(self._known))]
        index = bisect.bisect_right(cumulative, rng.random() * self._total)
        return "known", self._known[index if index < self._last else self._last]


def arrivals(workload: WorkloadSpec, catalogue: Sequence[str], seed: int) -> Iterator[Arrival]:
    """The arrivals of ``workload`` in time order, lazily (one per call to ``next``)."""
    rng = random.Random(f"arrivals:{seed}")
    keys = KeyChooser(workload, catalogue, random.Random(f"keys:{seed}"))
    mix_rng = random.Random(f"mix:{seed}")
    mix = workload.mix
    total = mix.lookup + mix.job + mix.booking
    job_share = mix.job / total
    booking_below = job_share + mix.booking / total  # draws in [job_share, this): booking
    names: list[str] = []
    cumulative: list[float] = []
    if workload.requests:  # an HTTP workload: the operations are the requests, by weight
        names = [r.name for r in workload.requests]
        cumulative = list(itertools.accumulate(r.weight for r in workload.requests))
    weight_total = cumulative[-1] if cumulative else 0.0
    last_name = len(names) - 1
    rate = workload.rate
    duration = workload.duration
    poisson = workload.arrivals == "poisson"
    gap_draw, mix_draw, choose, log = rng.random, mix_rng.random, keys.choose, math.log
    t = 0.0
    for seq in itertools.count():
        if poisson:
            t += -log(1.0 - gap_draw()) / rate  # random.expovariate(rate), inlined
        else:
            t = seq / rate
        if t >= duration:
            return
        if names:
            index = bisect.bisect_right(cumulative, mix_draw() * weight_total)
            op = names[index if index < last_name else last_name]
        else:
            draw = mix_draw()
            op = "job" if draw < job_share else "booking" if draw < booking_below else "lookup"
        kind, slug = choose()
        yield Arrival(seq, t, op, kind, slug)
