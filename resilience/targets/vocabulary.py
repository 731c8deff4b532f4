"""Metric vocabularies: the gate metrics a target kind adds to the generic ones.

The core (:mod:`resilience.scenario.metrics`) computes what every target has
(per-operation latencies, counts, outcome rates, errors, throughput, late
starts). A target kind may add its own names — the reference service's
``cache.hit_rate``, ``success_rate``, ``jobs.*`` …, an HTTP service's
``http.*`` — by registering a :class:`Vocabulary`. Its values replace a
generic metric of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from resilience.targets.base import OpLike

__all__ = [
    "VOCABULARIES",
    "MetricValue",
    "Vocabulary",
    "VocabularyInput",
    "register_vocabulary",
    "vocabulary_of",
]

MetricValue = float | int | Sequence[float] | None


@dataclass(frozen=True, slots=True)
class VocabularyInput:
    """What a vocabulary computes from: the window's operations and the run's records.

    ``ops`` started inside the windows (filtered by ``where`` when the gate
    asks); ``records`` maps a history record type (``migration``,
    ``sample``, ``scrape`` …) to all of the run's records of that type;
    ``windows`` are the (start_s, end_s) spans measured.
    """

    ops: Sequence[OpLike]
    records: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    windows: Sequence[tuple[float, float]] = ()
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """A target kind's metric names and how to compute them.

    ``prefixes``: name prefixes the kind owns beyond the fixed ``names``
    (``http.`` and ``prom.`` for HTTP targets: request names and scraped
    series are known only from the scenario).
    """

    kind: str
    names: frozenset[str]
    compute: Callable[[VocabularyInput], dict[str, MetricValue]]
    prefixes: tuple[str, ...] = ()

    def knows(self, name: str) -> bool:
        return name in self.names or any(name.startswith(p) for p in self.prefixes)


VOCABULARIES: dict[str, Vocabulary] = {}
"""Target kind → its vocabulary (each kind's module registers its own)."""


def register_vocabulary(vocabulary: Vocabulary) -> None:
    VOCABULARIES[vocabulary.kind] = vocabulary


def vocabulary_of(kind: str) -> Vocabulary | None:
    """The vocabulary of target kind ``kind`` (``None``: only the generic metrics)."""
    if kind not in VOCABULARIES:
        _load_builtin(kind)
    return VOCABULARIES.get(kind)


def _load_builtin(kind: str) -> None:
    import importlib

    module = {"reference": "resilience.targets.reference_metrics"}.get(kind)
    if module is not None:
        importlib.import_module(module)
