"""The reference service's side of a run's reconciliation: what its stores hold.

:func:`audit_jobs` waits (bounded) for the job outbox to drain, then reads
the jobs stored under the run's idempotency-key prefixes, the keys still
queued in the outbox and the dead-lettered keys. Not on any request path:
it runs once, after a scenario's workload (see
:mod:`resilience.targets.reconcile`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JobAudit", "audit_jobs"]


@dataclass(frozen=True, slots=True)
class JobAudit:
    """Stored rows (key, answers), outbox keys, dead-lettered keys, and whether it drained."""

    stored: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    queued: set[str] = field(default_factory=set)
    dead_lettered: set[str] = field(default_factory=set)
    drained: bool = True
    error: str | None = None
    """Why the store could not be read (the audit is then incomplete)."""


async def audit_jobs(
    service: Any, prefixes: Iterable[str], *, drain_timeout_s: float = 10.0, poll_s: float = 0.1
) -> JobAudit:
    """Audit ``service`` (a ``LookupService``) for the jobs under ``prefixes``.

    Waits up to ``drain_timeout_s`` (loop time) for its outbox to empty.
    """
    outbox = getattr(service, "outbox", None)
    loop = asyncio.get_running_loop()
    drained = True
    queued: set[str] = set()
    dead: set[str] = set()
    if outbox is not None:
        deadline = loop.time() + drain_timeout_s
        while True:
            try:
                queued = await outbox.queued_keys()
            except Exception:
                queued = set()  # Redis away: nothing readable is queued
            if not queued or loop.time() >= deadline:
                break
            await asyncio.sleep(poll_s)
        drained = not queued
        try:
            dead = set(await outbox.dead_letters())
        except Exception:
            dead = set()
    repository = getattr(service, "jobs", None)
    if repository is None or not hasattr(repository, "stored_with_key_prefix"):
        return JobAudit(queued=queued, dead_lettered=dead, drained=drained, error="no job store")
    stored: list[tuple[str, dict[str, Any]]] = []
    try:
        for prefix in sorted(set(prefixes)):
            stored.extend(await repository.stored_with_key_prefix(prefix))
    except Exception as exc:
        error = f"reading the stored jobs failed: {type(exc).__name__}: {exc}"[:300]
        return JobAudit(queued=queued, dead_lettered=dead, drained=drained, error=error)
    return JobAudit(stored, queued, dead, drained)
