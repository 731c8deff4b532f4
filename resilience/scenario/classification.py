"""Per fault: how the target classified the failures it saw, from the history.

A target whose stats carry a ``classified`` section (``{kind: {category,
retryable, recovery, seen, recovered, gave_up}}``, cumulative; the reference
service's :mod:`resilience.service.classified`) gets, for each fault window,
the counts that grew between the last sample before the window and the first
sample :data:`SETTLE_S` after it (retries started in the window end there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from resilience.scenario.history import History

__all__ = ["SETTLE_S", "FaultClassification", "classify_faults"]

SETTLE_S = 2.0


@dataclass(frozen=True)
class FaultClassification:
    """One failure kind seen during one fault."""

    fault: str
    kind: str
    category: str
    retryable: bool
    recovery: str
    seen: int
    recovered: int
    gave_up: int

    @property
    def recovered_share(self) -> float | None:
        done = self.recovered + self.gave_up
        return self.recovered / done if done else None

    def text(self) -> str:
        """``40001 → SerializationFailure, retryable, retry: 14 failed attempts; 98% of ...``."""
        verdict = "retryable" if self.retryable else "not retryable"
        share = self.recovered_share
        tail = (
            f"{share:.0%} of {self.recovered + self.gave_up} operations recovered"
            if share is not None
            else "no operation finished"
        )
        return (
            f"{self.kind} → {self.category}, {verdict}, {self.recovery}: "
            f"{self.seen} failed attempts; {tail}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "category": self.category,
            "retryable": self.retryable,
            "recovery": self.recovery,
            "seen": self.seen,
            "recovered": self.recovered,
            "gave_up": self.gave_up,
        }


def _classified_at(samples: list[tuple[float, dict[str, Any]]], t_s: float, *, after: bool) -> Any:
    """The classified section of the last sample at or before t_s (first at or after)."""
    chosen: dict[str, Any] | None = None
    for when, section in samples:
        if after and when >= t_s:
            return section
        if not after and when <= t_s:
            chosen = section
    return chosen if not after else (samples[-1][1] if samples else None)


def classify_faults(history: History) -> dict[str, list[FaultClassification]]:
    """Fault name → the failure kinds the target classified during it (empty: none)."""
    samples = [
        (float(s["t_us"]) / 1e6, s["stats"].get("classified") or {})
        for s in history.samples
        if isinstance(s.get("stats"), dict) and s["stats"]
    ]
    if not samples:
        return {}
    out: dict[str, list[FaultClassification]] = {}
    for name, windows in history.fault_windows().items():
        totals: dict[str, dict[str, Any]] = {}
        for start_s, stop_s in windows:
            before = _classified_at(samples, start_s, after=False) or {}
            after = _classified_at(samples, stop_s + SETTLE_S, after=True) or {}
            for kind, row in after.items():
                base = before.get(kind, {})
                grown = totals.setdefault(kind, {**row, "seen": 0, "recovered": 0, "gave_up": 0})
                for count in ("seen", "recovered", "gave_up"):
                    grown[count] += int(row.get(count, 0)) - int(base.get(count, 0))
        rows = [
            FaultClassification(
                fault=name,
                kind=kind,
                category=str(row.get("category", "?")),
                retryable=bool(row.get("retryable")),
                recovery=str(row.get("recovery", "?")),
                seen=row["seen"],
                recovered=row["recovered"],
                gave_up=row["gave_up"],
            )
            for kind, row in sorted(totals.items())
            if row["seen"] or row["recovered"] or row["gave_up"]
        ]
        out[name] = rows
    return out
