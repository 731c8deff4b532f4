"""Records the service hands out: lookup results and jobs (immutable)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

__all__ = ["Job", "LookupOutcome", "LookupPath", "LookupResult"]

LookupPath = Literal["cache", "redis", "db", "fallback", "invalid"]
"""Where the answer came from. ``fallback``: no tier answered (dependency failure)."""

LookupOutcome = Literal["success", "fallback", "error", "invalid"]
"""``success``: a UUID; ``fallback``: slug only (not found or a recoverable failure);
``error``: a non-recoverable failure; ``invalid``: the slug was refused."""

_UUID_TEXT: dict[int, str] = {}
_UUID_TEXT_MAX = 65_536


def uuid_text(value: uuid.UUID) -> str:
    """``str(value)``, remembered by the UUID's integer (at most 65 536, then forgotten).

    Every lookup's analytics event carries its UUID as text, and the same few
    thousand UUIDs come back again and again; ``UUID.__str__`` is Python code
    (about a microsecond), a dictionary hit on an integer key is C.
    """
    key = value.int
    text = _UUID_TEXT.get(key)
    if text is None:
        if len(_UUID_TEXT) >= _UUID_TEXT_MAX:
            _UUID_TEXT.clear()
        text = _UUID_TEXT[key] = str(value)
    return text


class LookupResult(NamedTuple):
    """What one lookup produced.

    ``reason`` is ``None`` on success; otherwise a short machine-readable
    cause: ``not_found``, ``circuit_open``, ``connection``, ``timeout``,
    ``database``, ``invalid_slug`` or the classified error's type name.
    ``attempts`` counts database attempts (0 when a cache tier answered or
    the breaker refused).

    A named tuple rather than a frozen dataclass: every lookup builds one, and
    a tuple is built about four times faster.
    """

    slug: str
    uuid: uuid.UUID | None
    path: LookupPath
    outcome: LookupOutcome
    reason: str | None
    duration_us: int
    attempts: int = 0
    correlation_id: str | None = None

    @property
    def is_fallback(self) -> bool:
        return self.outcome == "fallback"

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "uuid": None if self.uuid is None else uuid_text(self.uuid),
            "path": self.path,
            "outcome": self.outcome,
            "reason": self.reason,
            "duration_us": self.duration_us,
            "attempts": self.attempts,
        }


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job. ``micro_uuid`` is ``None`` when the lookup fell back.

    ``id`` is ``None`` (and ``status`` is ``"queued"``) for a job accepted into
    the outbox while PostgreSQL was unavailable; it gets an id once written.
    """

    id: int | None
    micro_id: str
    micro_uuid: uuid.UUID | None
    answers: dict[str, Any]
    idempotency_key: str
    status: str = "pending"
    created_at: datetime | None = None
    lookup_path: str | None = field(default=None, compare=False)
    created: bool = field(default=True, compare=False)
    """False when this call found the job stored by an earlier call with the same key."""
