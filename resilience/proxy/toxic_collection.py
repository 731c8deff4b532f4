"""The toxics of one proxy and the live links they run on.

Each direction has an ordered chain. Every change is applied at once to the
chain and to every live link of that direction (synchronously, so no byte is
lost or reordered). Names are unique per proxy across both directions. The
API lists the upstream chain first, then the downstream chain. A stage that
restarts (its toxic updated, or its successor added or removed) rolls its
toxicity again, as in Toxiproxy.
"""

from __future__ import annotations

from typing import Any

from .errors import ErrToxicNotFound
from .link import Direction, Link
from .toxic import Toxic, parse_new_toxic, parse_toxic_update

__all__ = ["ToxicCollection"]


class ToxicCollection:
    """Ordered toxic chains per direction plus the links to keep in step."""

    def __init__(self) -> None:
        self.chains: dict[Direction, list[Toxic]] = {d: [] for d in Direction.ALL}
        self.links: dict[Direction, set[Link]] = {d: set() for d in Direction.ALL}

    def all(self) -> list[Toxic]:
        return self.chains[Direction.UPSTREAM] + self.chains[Direction.DOWNSTREAM]

    def find(self, name: str) -> Toxic | None:
        for toxic in self.all():
            if toxic.name == name:
                return toxic
        return None

    def get(self, name: str) -> Toxic:
        toxic = self.find(name)
        if toxic is None:
            raise ErrToxicNotFound()
        return toxic

    # -- links -------------------------------------------------------------
    def attach(self, link: Link) -> None:
        """Start tracking a new link and give it the current chain."""
        self.links[link.direction].add(link)
        for toxic in self.chains[link.direction]:
            link.add_stage(toxic)

    def detach(self, link: Link) -> None:
        self.links[link.direction].discard(link)

    # -- changes ---------------------------------------------------------------
    def add_json(self, body: Any) -> Toxic:
        toxic = parse_new_toxic(body, lambda name: self.find(name) is not None)
        self.add(toxic)
        return toxic

    def add(self, toxic: Toxic) -> None:
        self.chains[toxic.direction].append(toxic)
        for link in list(self.links[toxic.direction]):
            link.add_stage(toxic)

    def update_json(self, name: str, body: Any) -> Toxic:
        toxic = self.get(name)
        toxic.toxicity, toxic.attributes = parse_toxic_update(body, toxic)
        index = self.chains[toxic.direction].index(toxic)
        for link in list(self.links[toxic.direction]):
            if index < len(link.stages):
                link.replace_stage(index, toxic)
        return toxic

    def remove(self, name: str) -> None:
        toxic = self.get(name)
        chain = self.chains[toxic.direction]
        index = chain.index(toxic)
        chain.pop(index)
        close = toxic.spec.closes_on_remove
        for link in list(self.links[toxic.direction]):
            if index < len(link.stages):
                link.remove_stage(index, close)

    def reset(self) -> None:
        """Remove every toxic, as a delete of each would."""
        for toxic in self.all():
            self.remove(toxic.name)
