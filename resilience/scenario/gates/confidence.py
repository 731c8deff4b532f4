"""Rate gates judged with a confidence bound when the observed count is small.

A gate such as ``breaker.opens per_hour < 1`` divides a count of events by the
time observed. Zero opens in five minutes gives the estimate 0 per hour, yet
says little: at 95 % confidence the true rate may be as high as 36 per hour.
So an *upper-limited rate gate* — aggregation ``per_s``, ``per_min``,
``per_hour`` or ``rate`` on a count (or the number of samples), compared with
``<`` or ``<=`` — is judged like this:

* fewer than :data:`SMALL_COUNT` events: on the exact one-sided Poisson
  upper bound of the rate (:func:`rate_upper_bound`, 95 %). It passes when
  the bound meets the limit, fails when the estimate already misses it, and
  is inconclusive in between — status ``nodata``, too little data to judge
  (the run was too short to show the limit; that does not fail a run, and
  :attr:`RateBound.window_needed_s` says how long a clean run must be);
* :data:`SMALL_COUNT` events or more: on the estimate, as any other gate
  (the bound is still reported).

The bound is the largest rate λ for which seeing at most ``count`` events in
the window still has probability ``1 − confidence``: with 0 events at 95 %
that is about 3.0 events per window, so "< 1 per hour" needs three clean
hours — a few seconds of simulation (:func:`hours_needed`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CONFIDENCE",
    "PER_SECONDS",
    "SMALL_COUNT",
    "RateBound",
    "hours_needed",
    "poisson_upper",
    "rate_bound",
    "rate_upper_bound",
]

CONFIDENCE = 0.95
"""Confidence of the bounds gates report and small counts are judged on."""

SMALL_COUNT = 20
"""Below this many events a rate gate is judged on its upper bound (the bound is
then more than ~40 % above the estimate)."""

PER_SECONDS: dict[str, float] = {"per_s": 1.0, "per_min": 60.0, "per_hour": 3600.0, "rate": 1.0}
"""Seconds per unit of each rate aggregation."""


def _poisson_cdf(k: int, lam: float) -> float:
    if lam <= 0:
        return 1.0
    term = math.exp(-lam)
    total = term
    for i in range(1, k + 1):
        term *= lam / i
        total += term
    return min(1.0, total)


def poisson_upper(count: int, confidence: float = CONFIDENCE) -> float:
    """Exact one-sided upper bound of a Poisson mean after observing ``count`` events."""
    if count < 0:
        raise ValueError(f"count must not be negative (got {count})")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence})")
    alpha = 1 - confidence
    if count == 0:
        return -math.log(alpha)
    lo, hi = float(count), float(count) + 10 * math.sqrt(count + 1) + 10
    while _poisson_cdf(count, hi) > alpha:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _poisson_cdf(count, mid) > alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-9 * hi:
            break
    return hi


def rate_upper_bound(
    count: int, window_s: float, *, per_s: float = 3600.0, confidence: float = CONFIDENCE
) -> float:
    """Upper bound of the rate per ``per_s`` seconds (default: per hour)."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive (got {window_s})")
    return poisson_upper(count, confidence) * per_s / window_s


def hours_needed(limit_per_hour: float, *, confidence: float = CONFIDENCE) -> float:
    """Clean (zero-event) hours needed before the upper bound falls below the limit."""
    if limit_per_hour <= 0:
        raise ValueError("limit_per_hour must be positive")
    return poisson_upper(0, confidence) / limit_per_hour


@dataclass(frozen=True, slots=True)
class RateBound:
    """A rate gate's count, window, estimate and upper bound, and which one judged it.

    ``estimate`` and ``upper`` are in the gate's unit (events per second, per
    minute or per hour, as the aggregation says).
    """

    count: int
    window_s: float
    estimate: float
    upper: float
    confidence: float
    verdict_on: Literal["estimate", "upper_bound"]
    window_needed_s: float | None
    """Clean (zero-event) seconds after which the bound would meet the limit (``None``:
    never, e.g. a limit of 0)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "window_s": self.window_s,
            "estimate": self.estimate,
            "upper": self.upper,
            "confidence": self.confidence,
            "verdict_on": self.verdict_on,
            "window_needed_s": self.window_needed_s,
        }


def rate_bound(
    count: int,
    window_s: float,
    *,
    per_s: float,
    limit: float,
    confidence: float = CONFIDENCE,
    small_count: int = SMALL_COUNT,
) -> RateBound:
    """The :class:`RateBound` of ``count`` events in ``window_s`` against an upper ``limit``."""
    upper = rate_upper_bound(count, window_s, per_s=per_s, confidence=confidence)
    needed = poisson_upper(0, confidence) * per_s / limit if limit > 0 else None
    return RateBound(
        count=count,
        window_s=window_s,
        estimate=count * per_s / window_s,
        upper=upper,
        confidence=confidence,
        verdict_on="upper_bound" if count < small_count else "estimate",
        window_needed_s=needed,
    )
