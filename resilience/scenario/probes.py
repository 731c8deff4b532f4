"""Health probes of the system under test: the steady-state check and breaker readers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from resilience.scenario.stack import Stack
from resilience.targets.base import SteadyStateTarget
from resilience.targets.reference import as_target

__all__ = ["breaker_opens_of", "breaker_state_of", "quick_breaker_state", "steady_state_check"]


def breaker_state_of(stats: Mapping[str, Any]) -> str | None:
    breaker = stats.get("breaker") if isinstance(stats, Mapping) else None
    if isinstance(breaker, Mapping):
        state = breaker.get("state")
        return str(state) if state is not None else None
    return None


async def steady_state_check(
    stack: Stack,
    probes: int,
    *,
    timeout_s: float = 0.0,
    interval_s: float = 1.0,
    from_tail: bool = False,
    target: Any = None,
) -> tuple[bool, str]:
    """Run the target's own ``probes``; ok when all hold and its breaker (if any) is closed.

    The probes are the target's :class:`~resilience.targets.base.SteadyStateTarget`
    capability (the reference service looks up known slugs); a target
    without it only has its breaker checked. Retried every ``interval_s``
    until it holds or ``timeout_s`` has passed. ``from_tail`` asks for
    rarely used keys (the reference service's least popular slugs, fresh
    ones on every try), which are unlikely to be cached, so the probes reach
    the database and give an open breaker its trial call. ``target``
    defaults to the stack's target (wrapped as a target when it is a bare
    reference service).
    """
    clock = stack.clock
    deadline = clock.monotonic() + timeout_s
    if target is None:
        target = as_target(stack.target, stack.slugs)
    probe = target.probe if isinstance(target, SteadyStateTarget) else None
    attempt = 0
    while True:
        failures = await probe(probes, attempt=attempt, from_tail=from_tail) if probe else []
        state = breaker_state_of(target.stats())
        if not failures and state in (None, "closed", "unknown"):
            if probe is None:
                return True, f"breaker {state or 'n/a'}"
            return True, f"{probes} probes succeeded, breaker {state or 'n/a'}"
        detail = (
            f"{len(failures)}/{probes} probes failed"
            + (f" (first: {failures[0]})" if failures else "")
            + f", breaker {state}"
        )
        if clock.monotonic() >= deadline:
            return False, detail
        attempt += 1
        await clock.sleep_async(interval_s)


def quick_breaker_state(target: object) -> Callable[[], str] | None:
    """A cheap reader of the target's breaker state, if it exposes ``breaker.state``."""
    breaker = getattr(target, "breaker", None)
    if breaker is None or not hasattr(breaker, "state"):
        return None

    def read() -> str:
        state = breaker.state
        return str(getattr(state, "value", state))

    return read


def breaker_opens_of(stats: Mapping[str, Any]) -> int | None:
    breaker = stats.get("breaker") if isinstance(stats, Mapping) else None
    if isinstance(breaker, Mapping) and isinstance(breaker.get("opens"), int):
        return int(breaker["opens"])
    return None
