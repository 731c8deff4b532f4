"""Confidence bounds for event rates observed over simulated time.

A gate such as ``breaker.opens per_hour < 1`` compares an observed count
divided by the observed hours. When the count is small (0 opens in 2 hours
says "< 1 per hour" with little confidence), the tuner and the calibration
report also give the exact one-sided Poisson upper bound of the rate:
the largest rate λ for which seeing at most ``count`` events in the window
still has probability ``1 − confidence``. With 0 events at 95 % that is
about 3.0 events per window, so a "< 1 per hour" claim at 95 % needs at least
three clean simulated hours.

The scenario's gates (:mod:`resilience.scenario.gates`) compare the point
estimate; :func:`rate_upper_bound` is the bound the simulator reports beside it.
"""

from __future__ import annotations

import math

__all__ = ["hours_needed", "poisson_upper", "rate_upper_bound"]


def _poisson_cdf(k: int, lam: float) -> float:
    if lam <= 0:
        return 1.0
    term = math.exp(-lam)
    total = term
    for i in range(1, k + 1):
        term *= lam / i
        total += term
    return min(1.0, total)


def poisson_upper(count: int, confidence: float = 0.95) -> float:
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
    count: int, window_s: float, *, per_s: float = 3600.0, confidence: float = 0.95
) -> float:
    """Upper bound of the rate per ``per_s`` seconds (default: per hour)."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive (got {window_s})")
    return poisson_upper(count, confidence) * per_s / window_s


def hours_needed(limit_per_hour: float, *, confidence: float = 0.95) -> float:
    """Clean (zero-event) hours needed before the upper bound falls below the limit."""
    if limit_per_hour <= 0:
        raise ValueError("limit_per_hour must be positive")
    return poisson_upper(0, confidence) / limit_per_hour
