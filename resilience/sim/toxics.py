"""Each Toxiproxy toxic as a model: what it does to one message on one link.

A modelled exchange sends one request (upstream) and gets one reply
(downstream); each is one chunk. For every toxic active on a link,
:data:`TOXIC_MODELS` gives a function that folds the toxic's effect into an
:class:`Effect`, with the toxic's wire attributes and units (ms, except
bandwidth ``rate`` in KB/s with KB = 1000 B, slicer ``delay`` in µs, sizes in
bytes), following TOXIPROXY.md §7:

=============  ==============================================================
``latency``    delay uniform in [latency − jitter, latency + jitter) ms, ≥ 0
``bandwidth``  delay size / (rate × 1000) s
``slicer``     the chunk is halved until pieces ≤ average_size + size_variation;
               ``delay`` µs after each piece
``timeout``    data dropped; the connection closes ``timeout`` ms later (EOF),
               never when ``timeout`` is 0 (the caller's own timeout fires)
``reset_peer`` the first chunk is dropped; ``timeout`` ms later the connection
               closes, with a TCP RST on connections created after the toxic
``limit_data`` at most ``bytes`` pass per link (counted since attach); the chunk
               that crosses is cut and the connection closes
``slow_close`` data untouched; a close on this link is seen ``delay`` ms later
``noop``       nothing
=============  ==============================================================
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["TOXIC_MODELS", "Effect", "LinkState", "ModelToxic", "apply_chain"]


@dataclass(slots=True)
class ModelToxic:
    """A toxic as the Toxiproxy API describes it (attributes in wire units)."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    def attr(self, key: str) -> int:
        return int(self.attributes.get(key, 0))


@dataclass(slots=True)
class LinkState:
    """One connection's direction: which toxics act here (rolled), and counters."""

    active: dict[str, bool] = field(default_factory=dict)
    """Toxic name → whether its toxicity roll made it act on this link."""
    limit_sent: dict[str, int] = field(default_factory=dict)
    """limit_data toxic name → bytes passed since it was attached."""


@dataclass(slots=True)
class Effect:
    """What the chain does to one chunk (seconds relative to the chunk's arrival)."""

    delay_s: float = 0.0
    stalled: bool = False
    """The chunk (or the rest of it) never arrives."""
    close_after_s: float | None = None
    """The connection closes this long after the chunk arrived (``None``: it does not)."""
    reset: bool = False
    """The close is a TCP RST (ECONNRESET) rather than EOF."""
    close_delay_s: float = 0.0
    """slow_close: the peer sees a close this much later."""


ToxicModel = Callable[[ModelToxic, LinkState, int, Effect, random.Random, bool], None]


def _latency(
    toxic: ModelToxic, link: LinkState, size: int, eff: Effect, rng: random.Random, rst: bool
) -> None:
    latency, jitter = toxic.attr("latency"), toxic.attr("jitter")
    delay_ms = latency + (rng.uniform(-jitter, jitter) if jitter else 0.0)
    eff.delay_s += max(0.0, delay_ms) / 1000.0


def _bandwidth(
    toxic: ModelToxic, link: LinkState, size: int, eff: Effect, rng: random.Random, rst: bool
) -> None:
    rate = toxic.attr("rate")
    if rate <= 0:  # Toxiproxy passes no data at all at rate 0
        eff.stalled = True
        return
    eff.delay_s += size / (rate * 1000.0)


def _slicer(
    toxic: ModelToxic, link: LinkState, size: int, eff: Effect, rng: random.Random, rst: bool
) -> None:
    limit = max(1, toxic.attr("average_size") + toxic.attr("size_variation"))
    pieces = 1 if size <= limit else 2 ** math.ceil(math.log2(size / limit))
    eff.delay_s += pieces * toxic.attr("delay") / 1_000_000.0


def _timeout(
    toxic: ModelToxic, link: LinkState, size: int, eff: Effect, rng: random.Random, rst: bool
) -> None:
    eff.stalled = True
    timeout = toxic.attr("timeout")
    if timeout > 0:
        eff.close_after_s = eff.delay_s + timeout / 1000.0


def _reset_peer(
    toxic: ModelToxic, link: LinkState, size: int, eff: Effect, rng: random.Random, rst: bool
) -> None:
    eff.stalled = True
    eff.close_after_s = eff.delay_s + max(0, toxic.attr("timeout")) / 1000.0
    eff.reset = rst


def _limit_data(
    toxic: ModelToxic, link: LinkState, size: int, eff: Effect, rng: random.Random, rst: bool
) -> None:
    limit = max(0, toxic.attr("bytes"))
    sent = link.limit_sent.get(toxic.name, 0)
    if sent + size > limit:
        link.limit_sent[toxic.name] = limit
        eff.stalled = True
        eff.close_after_s = eff.delay_s
    else:
        link.limit_sent[toxic.name] = sent + size


def _slow_close(
    toxic: ModelToxic, link: LinkState, size: int, eff: Effect, rng: random.Random, rst: bool
) -> None:
    eff.close_delay_s += max(0, toxic.attr("delay")) / 1000.0


def _noop(
    toxic: ModelToxic, link: LinkState, size: int, eff: Effect, rng: random.Random, rst: bool
) -> None:
    return


TOXIC_MODELS: Mapping[str, ToxicModel] = {
    "latency": _latency,
    "bandwidth": _bandwidth,
    "slicer": _slicer,
    "timeout": _timeout,
    "reset_peer": _reset_peer,
    "limit_data": _limit_data,
    "slow_close": _slow_close,
    "noop": _noop,
}
"""Toxic type → its model (one table, like Toxiproxy's registry)."""


def apply_chain(
    toxics: list[ModelToxic], link: LinkState, size: int, rng: random.Random, *, rst: bool
) -> Effect:
    """Fold the active toxics of one direction, in chain order, over one chunk."""
    eff = Effect()
    active = link.active
    for toxic in toxics:
        if not active.get(toxic.name, False):
            continue
        TOXIC_MODELS[toxic.type](toxic, link, size, eff, rng, rst)
        if eff.stalled:
            break  # nothing reaches the toxics further down the chain
    if eff.close_after_s is not None:
        eff.close_after_s += eff.close_delay_s
    return eff
