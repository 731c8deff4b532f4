"""The toxics: one module per type, listed in one registry table.

:data:`REGISTRY` maps the wire type name to its :class:`ToxicSpec`. ``down``
is not a toxic: it is ``enabled: false`` on the proxy (as in Toxiproxy).
"""

from __future__ import annotations

from . import (
    bandwidth,
    http_abort,
    http_delay,
    http_error,
    latency,
    limit_data,
    noop,
    postgres_error,
    redis_error,
    reset_peer,
    slicer,
    slow_close,
    timeout,
)
from .base import Chunk, Item, LinkContext, Outlet, Stage, ToxicSpec
from .noop import NoopStage

__all__ = [
    "EXTENSION_TOXICS",
    "REGISTRY",
    "Chunk",
    "Item",
    "LinkContext",
    "NoopStage",
    "Outlet",
    "Stage",
    "ToxicSpec",
]

REGISTRY: dict[str, ToxicSpec] = {
    spec.type_name: spec
    for spec in (
        noop.SPEC,
        latency.SPEC,
        bandwidth.SPEC,
        slow_close.SPEC,
        timeout.SPEC,
        reset_peer.SPEC,
        slicer.SPEC,
        limit_data.SPEC,
        postgres_error.SPEC,
        redis_error.SPEC,
        http_error.SPEC,  # extensions: HTTP/1.1-aware toxics
        http_delay.SPEC,
        http_abort.SPEC,
    )
}

EXTENSION_TOXICS: tuple[str, ...] = (
    "postgres_error",
    "redis_error",
    "http_error",
    "http_delay",
    "http_abort",
)
"""Toxic types the real Toxiproxy does not have (``GET /toxic_types`` lists them)."""
