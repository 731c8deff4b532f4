"""A deterministic catalogue of construction micro services, and historical jobs.

:func:`catalogue` is pure: the same ``seed`` and ``size`` always give the same
slugs, categories and UUIDs, so the simulator can use it without a database
and a seeded database agrees with it. Slugs come from a fixed table of trade
services (``roof-repair``, ``kitchen-tiling``...); past the table's end they
repeat with a suffix (``kitchen-tiling-2``). UUIDs are version-4 UUIDs drawn
from ``random.Random(seed)``.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CatalogueEntry",
    "HistoricalJob",
    "catalogue",
    "generate_jobs",
    "insert_jobs",
    "seed_catalogue",
    "seed_catalogue_async",
]

# category -> subcategory -> services (slug stems)
_TRADES: dict[str, dict[str, tuple[str, ...]]] = {
    "roofing": {
        "repair": ("roof-repair", "leak-repair", "chimney-repair", "gutter-repair"),
        "install": (
            "roof-replacement",
            "flat-roof-installation",
            "skylight-installation",
            "gutter-installation",
            "roof-insulation",
        ),
        "maintenance": ("gutter-cleaning", "moss-removal", "roof-inspection"),
    },
    "kitchen": {
        "renovation": (
            "kitchen-renovation",
            "kitchen-tiling",
            "worktop-installation",
            "kitchen-cabinet-fitting",
            "splashback-installation",
        ),
        "appliances": (
            "oven-installation",
            "hob-installation",
            "extractor-fan-installation",
            "dishwasher-installation",
        ),
    },
    "bathroom": {
        "renovation": (
            "bathroom-renovation",
            "bathroom-tiling",
            "wet-room-installation",
            "shower-installation",
            "bath-installation",
        ),
        "repair": ("shower-repair", "toilet-repair", "grout-repair", "sealant-replacement"),
    },
    "plumbing": {
        "repair": (
            "pipe-repair",
            "burst-pipe-repair",
            "tap-repair",
            "drain-unblocking",
            "leak-detection",
        ),
        "install": (
            "radiator-installation",
            "water-heater-installation",
            "sink-installation",
            "outdoor-tap-installation",
        ),
    },
    "heating": {
        "boilers": ("boiler-repair", "boiler-installation", "boiler-service", "gas-safety-check"),
        "systems": (
            "underfloor-heating",
            "heat-pump-installation",
            "power-flush",
            "thermostat-installation",
        ),
    },
    "electrical": {
        "repair": ("fault-finding", "socket-repair", "fuse-box-replacement", "rewiring"),
        "install": (
            "light-fitting",
            "socket-installation",
            "ev-charger-installation",
            "outdoor-lighting",
            "solar-panel-installation",
        ),
        "safety": ("electrical-inspection", "smoke-alarm-installation"),
    },
    "painting": {
        "interior": ("interior-painting", "wallpapering", "ceiling-painting", "woodwork-painting"),
        "exterior": ("exterior-painting", "fence-painting", "render-painting"),
    },
    "flooring": {
        "install": (
            "laminate-flooring",
            "hardwood-flooring",
            "vinyl-flooring",
            "carpet-fitting",
            "floor-tiling",
        ),
        "repair": ("floor-sanding", "floorboard-repair", "screed-levelling"),
    },
    "carpentry": {
        "joinery": (
            "door-fitting",
            "staircase-renovation",
            "built-in-wardrobes",
            "shelving-installation",
            "skirting-boards",
        ),
        "structural": ("stud-wall-construction", "loft-boarding", "decking-installation"),
    },
    "masonry": {
        "brickwork": ("bricklaying", "repointing", "garden-wall-construction", "chimney-rebuild"),
        "stone": ("stone-cleaning", "patio-laying", "paving-repair"),
    },
    "windows-doors": {
        "install": (
            "window-installation",
            "double-glazing",
            "front-door-installation",
            "bifold-door-installation",
            "conservatory-installation",
        ),
        "repair": ("window-repair", "lock-replacement", "glass-replacement"),
    },
    "landscaping": {
        "garden": (
            "garden-design",
            "lawn-turfing",
            "hedge-trimming",
            "tree-surgery",
            "artificial-grass",
        ),
        "hardscape": (
            "driveway-paving",
            "fencing-installation",
            "retaining-wall",
            "garden-drainage",
        ),
    },
    "building": {
        "extensions": (
            "house-extension",
            "loft-conversion",
            "garage-conversion",
            "basement-conversion",
        ),
        "structural": (
            "underpinning",
            "steel-beam-installation",
            "damp-proofing",
            "demolition",
            "plastering",
            "dry-lining",
        ),
        "insulation": ("cavity-wall-insulation", "loft-insulation", "external-wall-insulation"),
    },
}

BASE_SERVICES: tuple[tuple[str, str, str], ...] = tuple(
    (slug, category, sub)
    for category, subs in _TRADES.items()
    for sub, slugs in subs.items()
    for slug in slugs
)
"""``(slug, category, subcategory)`` of every distinct service stem, in catalogue order."""


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One micro service: its slug (what users post), UUID and classification."""

    slug: str
    uuid: uuid.UUID
    category: str
    subcategory: str

    @property
    def name(self) -> str:
        return self.slug.replace("-", " ").capitalize()


def catalogue(*, seed: int = 42, size: int = 300) -> list[CatalogueEntry]:
    """The first ``size`` micro services of the catalogue for ``seed`` (pure, deterministic)."""
    if size < 0:
        raise ValueError(f"size must be >= 0; got {size}")
    rng = random.Random(seed)
    entries = []
    n = len(BASE_SERVICES)
    for i in range(size):
        stem, category, sub = BASE_SERVICES[i % n]
        slug = stem if i < n else f"{stem}-{i // n + 1}"
        entries.append(
            CatalogueEntry(slug, uuid.UUID(int=rng.getrandbits(128), version=4), category, sub)
        )
    return entries


@dataclass(frozen=True, slots=True)
class HistoricalJob:
    """A job as posted before UUIDs existed: ``micro_uuid`` unknown (``None``)."""

    micro_id: str
    idempotency_key: str
    answers: dict[str, Any]
    status: str
    micro_uuid: uuid.UUID | None = None


_STATUSES = ("pending", "open", "quoted", "completed", "cancelled")


def generate_jobs(
    entries: Sequence[CatalogueEntry],
    *,
    count: int = 1000,
    unknown_share: float = 0.1,
    seed: int = 42,
) -> list[HistoricalJob]:
    """``count`` historical jobs without UUIDs; about ``unknown_share`` of them name a slug
    that is not in ``entries`` (retired services) and so will be *skipped* by the migration.

    Deterministic for a given ``seed``. Unknown slugs look valid (``retired-...``).
    """
    if not 0.0 <= unknown_share <= 1.0:
        raise ValueError(f"unknown_share must be within [0, 1]; got {unknown_share}")
    if count and not entries and unknown_share < 1.0:
        raise ValueError("generate_jobs needs catalogue entries unless unknown_share is 1")
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        if rng.random() < unknown_share or not entries:
            slug = f"retired-service-{rng.randrange(1, 50)}"
        else:
            slug = rng.choice(entries).slug
        jobs.append(
            HistoricalJob(
                micro_id=slug,
                idempotency_key=f"hist-{seed}-{i}",
                answers={
                    "postcode_area": rng.choice(("N", "E", "SW", "M", "B", "LS")),
                    "budget_gbp": rng.randrange(100, 20_000, 50),
                    "urgent": rng.random() < 0.2,
                },
                status=rng.choice(_STATUSES),
            )
        )
    return jobs


_INSERT_SERVICE = (
    "INSERT INTO micro_services (id, slug, name, category, subcategory) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (slug) DO NOTHING"
)


def _service_rows(entries: Sequence[CatalogueEntry]) -> list[tuple[Any, ...]]:
    return [(e.uuid, e.slug, e.name, e.category, e.subcategory) for e in entries]


def seed_catalogue(dsn: str, *, seed: int = 42, size: int = 300) -> list[CatalogueEntry]:
    """Insert the catalogue (existing slugs are left alone); returns the entries."""
    import psycopg

    entries = catalogue(seed=seed, size=size)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            b"INSERT INTO micro_services (id, slug, name, category, subcategory) "
            b"VALUES (%s, %s, %s, %s, %s) ON CONFLICT (slug) DO NOTHING",
            _service_rows(entries),
        )
    return entries


async def seed_catalogue_async(
    conn_or_dsn: Any, *, seed: int = 42, size: int = 300
) -> list[CatalogueEntry]:
    """:func:`seed_catalogue` with asyncpg, on a given connection or a DSN."""
    import asyncpg

    entries = catalogue(seed=seed, size=size)
    conn = await asyncpg.connect(conn_or_dsn) if isinstance(conn_or_dsn, str) else conn_or_dsn
    try:
        await conn.executemany(_INSERT_SERVICE, _service_rows(entries))
    finally:
        if isinstance(conn_or_dsn, str):
            await conn.close()
    return entries


def insert_jobs(dsn: str, jobs: Sequence[HistoricalJob]) -> None:
    """Insert historical jobs (an existing idempotency key is left alone)."""
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            b"INSERT INTO jobs (micro_id, micro_uuid, answers, status, idempotency_key) "
            b"VALUES (%s, %s, %s::jsonb, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING",
            [
                (j.micro_id, j.micro_uuid, json.dumps(j.answers), j.status, j.idempotency_key)
                for j in jobs
            ],
        )
