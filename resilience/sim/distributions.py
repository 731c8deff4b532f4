"""Service-time distributions of the modelled dependencies (seconds).

Each distribution draws from a caller-supplied :class:`random.Random`, so a
run's randomness is one seeded stream per model. Three shapes:

* :class:`Fixed` — always the same time;
* :class:`LogNormal` — set by its median and 99th percentile, the usual shape
  of a loopback query's latency;
* :class:`Empirical` — inverse-CDF sampling through equally spaced quantiles,
  e.g. calibrated from a real run's history (:meth:`Empirical.from_samples`).
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["Distribution", "Empirical", "Fixed", "LogNormal"]

_Z99 = 2.3263478740408408  # standard normal 99th percentile
MAX_POINTS = 2001
"""Most quantile points :meth:`Empirical.from_samples` keeps (one per sample below that)."""


@runtime_checkable
class Distribution(Protocol):
    """Draws a non-negative duration in seconds."""

    def sample(self, rng: random.Random) -> float: ...

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 ≤ q ≤ 1) in seconds."""
        ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """A constant duration ``value_s``."""

    value_s: float

    def sample(self, rng: random.Random) -> float:
        return self.value_s

    def quantile(self, q: float) -> float:
        return self.value_s


@dataclass(frozen=True, slots=True)
class LogNormal:
    """A log-normal duration with the given median and 99th percentile (seconds)."""

    median_s: float
    p99_s: float
    sigma: float = field(init=False, repr=False, compare=False)
    """The underlying normal's standard deviation (computed once: sampled per command)."""

    def __post_init__(self) -> None:
        if not 0 < self.median_s <= self.p99_s:
            raise ValueError(
                f"LogNormal needs 0 < median_s <= p99_s (got {self.median_s}, {self.p99_s})"
            )
        object.__setattr__(self, "sigma", math.log(self.p99_s / self.median_s) / _Z99)

    def sample(self, rng: random.Random) -> float:
        return self.median_s * math.exp(self.sigma * rng.gauss())  # gauss() is gauss(0.0, 1.0)

    def quantile(self, q: float) -> float:
        from statistics import NormalDist

        q = min(max(q, 1e-9), 1 - 1e-9)
        return self.median_s * math.exp(self.sigma * NormalDist().inv_cdf(q))


@dataclass(frozen=True, slots=True)
class Empirical:
    """Inverse-CDF sampling: ``points_s[i]`` is the ``i/(n-1)`` quantile (sorted)."""

    points_s: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.points_s) < 2:
            raise ValueError("Empirical needs at least two quantile points")
        if any(b < a for a, b in zip(self.points_s, self.points_s[1:], strict=False)):
            raise ValueError("Empirical quantile points must be sorted ascending")
        if self.points_s[0] < 0:
            raise ValueError("Empirical durations must not be negative")

    @classmethod
    def from_samples(cls, samples_s: Sequence[float], *, points: int | None = None) -> Empirical:
        """The observed durations' quantiles (seconds), evenly spaced from 0 to 1.

        By default one point per sample, up to :data:`MAX_POINTS`: every
        segment between two neighbouring points then holds at most 1/2000 of
        the probability. Few points put the rare slow samples' weight on a
        whole segment: with 101, the last 1 % would spread evenly up to the
        slowest sample (one 11 ms stall among 2 000 sub-0.1 ms cache hits made
        1 % of simulated clock reads cost milliseconds).
        """
        data = sorted(samples_s)
        if not data:
            raise ValueError("Empirical.from_samples needs at least one sample")
        if len(data) == 1:
            return cls((data[0], data[0]))
        count = min(len(data), MAX_POINTS) if points is None else points
        if count < 2:
            raise ValueError(f"Empirical.from_samples needs at least 2 points (got {count})")
        step = (len(data) - 1) / (count - 1)
        out = []
        for i in range(count):
            pos = i * step
            lo = int(pos)
            hi = min(lo + 1, len(data) - 1)
            out.append(data[lo] + (data[hi] - data[lo]) * (pos - lo))
        return cls(tuple(out))

    def quantile(self, q: float) -> float:
        q = min(max(q, 0.0), 1.0)
        pos = q * (len(self.points_s) - 1)
        lo = int(pos)
        if lo >= len(self.points_s) - 1:
            return self.points_s[-1]
        a, b = self.points_s[lo], self.points_s[lo + 1]
        return a + (b - a) * (pos - lo)

    def sample(self, rng: random.Random) -> float:
        return self.quantile(rng.random())

    def cdf(self, value_s: float) -> float:
        """Share of the distribution at or below ``value_s`` (approximate)."""
        i = bisect.bisect_right(self.points_s, value_s)
        return min(1.0, i / len(self.points_s))
