"""Reconciliation: is every job acknowledged to the client stored exactly once?

Jepsen's "nothing acknowledged is lost", as a pure function over what the
client was told and what the store holds after the run. Each job
acknowledged (HTTP 200/201/202, ``outcome="accepted"``) is exactly one of:

``stored``          one row under its idempotency key with the answers it was sent
``queued``          not stored yet, still in the outbox when the drain timed out
``dead_lettered``   moved aside by the outbox (kept, with the error), not stored
``lost``            none of the above (or stored with other answers)

and ``duplicated`` when more than one row holds it (under its key or another
key of the run, recognised by its answers). The reference target calls this
at the end of every run that posted jobs (:meth:`ReferenceTarget.end_of_run`);
the gates ``jobs.lost == 0`` and ``jobs.duplicated == 0`` follow in every report.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IMPLICIT_GATES", "Reconciliation", "reconcile", "reconcile_service"]

IMPLICIT_GATES = ("jobs.lost == 0", "jobs.duplicated == 0")
"""Gates every run that posted jobs gets."""

LISTED = 20
"""At most this many keys are listed per problem (the counts are exact)."""


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The counts of :func:`reconcile` and the first keys of each problem."""

    acknowledged: int
    stored: int
    queued: int
    dead_lettered: int
    lost: int
    duplicated: int
    lost_keys: list[str] = field(default_factory=list)
    duplicated_keys: list[str] = field(default_factory=list)
    drained: bool = True
    """False: the outbox still held jobs when the bounded wait ended."""

    def metrics(self) -> dict[str, int]:
        """The gate metrics ``jobs.<name>`` (whole run)."""
        return {
            "jobs.acknowledged": self.acknowledged,
            "jobs.stored": self.stored,
            "jobs.queued": self.queued,
            "jobs.dead_lettered": self.dead_lettered,
            "jobs.lost": self.lost,
            "jobs.duplicated": self.duplicated,
        }


def _canonical(answers: Mapping[str, Any]) -> str:
    return json.dumps(answers, sort_keys=True, separators=(",", ":"), default=str)


def reconcile(
    acknowledged: Mapping[str, Mapping[str, Any]],
    stored: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    queued: Collection[str] = (),
    dead_lettered: Collection[str] = (),
    drained: bool = True,
) -> Reconciliation:
    """Compare ``acknowledged`` (idempotency key → answers sent) with ``stored`` rows
    (key, answers) of the run, given the keys still ``queued`` and ``dead_lettered``."""
    rows = list(stored)
    by_key: dict[str, list[str]] = {}
    copies: Counter[str] = Counter()
    for key, answers in rows:
        text = _canonical(answers)
        by_key.setdefault(key, []).append(text)
        copies[text] += 1
    counts = Counter[str]()
    lost_keys: list[str] = []
    duplicated_keys: list[str] = []
    for key, answers in acknowledged.items():
        sent = _canonical(answers)
        under_key = by_key.get(key, [])
        if sent in under_key:
            counts["stored"] += 1
            if copies[sent] > 1:
                counts["duplicated"] += 1
                duplicated_keys.append(key)
        elif key in queued:
            counts["queued"] += 1
        elif key in dead_lettered:
            counts["dead_lettered"] += 1
        else:
            counts["lost"] += 1
            lost_keys.append(key)
            if copies[sent] > 1:  # stored twice elsewhere, never under its own key
                counts["duplicated"] += 1
                duplicated_keys.append(key)
    return Reconciliation(
        acknowledged=len(acknowledged),
        stored=counts["stored"],
        queued=counts["queued"],
        dead_lettered=counts["dead_lettered"],
        lost=counts["lost"],
        duplicated=counts["duplicated"],
        lost_keys=sorted(lost_keys)[:LISTED],
        duplicated_keys=sorted(duplicated_keys)[:LISTED],
        drained=drained,
    )


async def reconcile_service(
    service: Any, acknowledged: Mapping[str, Mapping[str, Any]], *, drain_timeout_s: float = 10.0
) -> dict[str, Any]:
    """The ``check`` history record of the reference service's reconciliation.

    ``acknowledged`` maps idempotency keys (``<run prefix>-<seq>``) to answers.
    """
    from resilience.service.job_audit import audit_jobs

    prefixes = {key.rsplit("-", 1)[0] + "-" for key in acknowledged}
    audit = await audit_jobs(service, prefixes, drain_timeout_s=drain_timeout_s)
    result = reconcile(
        acknowledged,
        audit.stored,
        queued=audit.queued,
        dead_lettered=audit.dead_lettered,
        drained=audit.drained,
    )
    return {
        "type": "check",
        "name": "reconcile",
        "metrics": result.metrics() if audit.error is None else {},
        "gates": list(IMPLICIT_GATES),
        "detail": {
            "lost_keys": result.lost_keys,
            "duplicated_keys": result.duplicated_keys,
            "drained": result.drained,
            "error": audit.error,
        },
    }
