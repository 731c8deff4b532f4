"""Health probes of the system under test: the steady-state check and breaker readers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from resilience.scenario.stack import Stack

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
) -> tuple[bool, str]:
    """Look up ``probes`` known slugs; ok when all succeed and the breaker is closed.

    Retried every ``interval_s`` until it holds or ``timeout_s`` has passed.
    ``from_tail`` probes the least popular slugs (fresh ones on every try), which
    are unlikely to be cached, so the probes reach the database and give an open
    breaker its trial call.
    """
    clock = stack.clock
    deadline = clock.monotonic() + timeout_s
    slugs = list(stack.slugs) or ["missing-catalogue"]
    detail = ""
    attempt = 0
    while True:
        failures: list[str] = []
        for i in range(probes):
            k = attempt * probes + i
            slug = slugs[-1 - (k % len(slugs))] if from_tail else slugs[k % len(slugs)]
            try:
                result = await stack.target.lookup(slug)
                if result.outcome != "success":
                    failures.append(f"{slug}: {result.outcome} ({result.reason})")
            except Exception as exc:
                failures.append(f"{slug}: {type(exc).__name__}: {exc}")
        state = breaker_state_of(stack.target.stats())
        if not failures and state in (None, "closed", "unknown"):
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
