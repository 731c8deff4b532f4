"""How the service classified the failures it saw, and whether it recovered.

Per failure *kind* (the SQLSTATE of a database error, else the driver's
exception type, else the error class), :class:`ClassifiedCounts` keeps the
classifier's verdict (``category`` = error class, ``retryable``,
``recovery``) and counts: ``seen`` (failed attempts), ``recovered``
(operations that had that failure and then succeeded, on a retry) and
``gave_up`` (operations that ended with it). The scenario reports turn the
counts of a fault's window into "40001 → retryable, retry: 98 % recovered".
"""

from __future__ import annotations

from typing import Any

from resilience.errors import ResilienceError

__all__ = ["ClassifiedCounts", "failure_kind"]


def failure_kind(error: ResilienceError) -> str:
    """The SQLSTATE, else the short name of the original exception type, else the class."""
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate
    origin = error.context.get("exception_type")
    if isinstance(origin, str) and origin:
        return origin.rsplit(".", 1)[-1]
    return type(error).__name__


class ClassifiedCounts:
    """Counts per failure kind; :meth:`stats` is the ``classified`` stats section."""

    def __init__(self) -> None:
        self._kinds: dict[str, dict[str, Any]] = {}

    def _row(self, error: ResilienceError, action: str | None = None) -> dict[str, Any]:
        kind = failure_kind(error)
        row = self._kinds.get(kind)
        if row is None:
            row = self._kinds[kind] = {
                "category": type(error).__name__,
                "retryable": bool(error.retryable),
                "recovery": action or str(getattr(error.recovery, "value", error.recovery)),
                "seen": 0,
                "recovered": 0,
                "gave_up": 0,
            }
        return row

    def seen(self, error: ResilienceError, *, action: str | None = None) -> None:
        """One attempt failed with error; ``action`` names what the caller does about it
        when that is not the error's own ``recovery`` (the Redis tier skips)."""
        self._row(error, action)["seen"] += 1

    def finished(self, errors: list[ResilienceError], *, succeeded: bool) -> None:
        """An operation that met errors (one count per kind) ended, well or not."""
        outcome = "recovered" if succeeded else "gave_up"
        done: set[str] = set()
        for error in errors:
            kind = failure_kind(error)
            if kind not in done:
                done.add(kind)
                self._row(error)[outcome] += 1

    def stats(self) -> dict[str, dict[str, Any]]:
        """``{kind: {category, retryable, recovery, seen, recovered, gave_up}}`` (a copy)."""
        return {kind: dict(row) for kind, row in self._kinds.items()}
