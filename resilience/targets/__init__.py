"""Services under test: the :class:`~resilience.targets.base.Target` seam and its kinds.

:mod:`.base` (``Call``, ``Observation``, the ``Target`` protocol and its
optional capabilities), :mod:`.reference` (the in-process reference
service), :mod:`.reference_metrics` (its gate vocabulary),
:mod:`.vocabulary` (the registry of per-kind metric vocabularies),
:mod:`.reconcile` (the reference service's "nothing acknowledged is lost").
The scenario runner sits above this package; the service and the backends
below it.
"""

from __future__ import annotations

from resilience.targets.base import (
    BreakerTarget,
    Call,
    EndOfRunTarget,
    LiveCounters,
    Observation,
    SteadyStateTarget,
    Target,
    TargetLoss,
    WatchedTarget,
)
from resilience.targets.reference import ReferenceTarget, as_target, register_operation
from resilience.targets.vocabulary import Vocabulary, VocabularyInput, vocabulary_of

__all__ = [
    "BreakerTarget",
    "Call",
    "EndOfRunTarget",
    "LiveCounters",
    "Observation",
    "ReferenceTarget",
    "SteadyStateTarget",
    "Target",
    "TargetLoss",
    "Vocabulary",
    "VocabularyInput",
    "WatchedTarget",
    "as_target",
    "register_operation",
    "vocabulary_of",
]
