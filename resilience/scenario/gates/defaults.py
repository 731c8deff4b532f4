"""The default gates: the lookup targets of TARGETS.md, used when a scenario has none."""

from __future__ import annotations

from resilience.scenario.gates.grammar import ScopedGate, parse_scoped_gate

__all__ = ["DEFAULT_GATES", "default_gates"]

DEFAULT_GATES: tuple[str, ...] = (
    "cache.hit_rate >= 0.70",  # cache hit rate > 70 %
    # a run may have no cache hit or no database lookup (cache.hit_rate judges that):
    "lookup.cache avg < 1ms if any",  # lookup time, cache hit (mean) < 1 ms
    "lookup.db avg < 50ms if any",  # lookup time, database (mean) < 50 ms
    "success_rate >= 0.95",  # lookup success rate > 95 %
    "fallback_rate < 0.10",  # fallback rate < 10 %
    "breaker.opens per_hour < 1",  # circuit-breaker opens < 1 per hour
    "error_rate < 0.01",  # error rate < 1 %
)
"""One gate per documented lookup target, in the order TARGETS.md lists them."""


def default_gates() -> list[ScopedGate]:
    """The :data:`DEFAULT_GATES`, parsed (phase ``all``)."""
    return [parse_scoped_gate(text) for text in DEFAULT_GATES]
