"""``noop``: passes data through unchanged (no attributes)."""

from __future__ import annotations

from .base import Stage, ToxicSpec

__all__ = ["SPEC", "NoopStage"]


class NoopStage(Stage):
    """Passes every item on; also stands in for a toxic whose toxicity roll missed."""

    __slots__ = ()


SPEC = ToxicSpec("noop", (), NoopStage, "passes data through")
