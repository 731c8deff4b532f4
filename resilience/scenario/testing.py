"""A fake stack that ships with the package: scenario runs without any server.

:func:`fake_stack` wires :class:`FakeTarget` (an in-memory lookup service with
a cache, a breaker and a pretend database) to a
:class:`~resilience.scenario.faults.RecordingFaultController`, so that the
faults a scenario applies change what the target does: ``disable`` on
``postgres`` makes database lookups fail, a ``latency`` toxic on ``postgres``
slows them. Use it to test scenario files, gates and reports quickly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.errors import ConnectionFailure, InvalidSlug
from resilience.scenario.faults import RecordingFaultController
from resilience.scenario.model import FaultSpec
from resilience.scenario.stack import StaticStack

__all__ = ["FakeJob", "FakeLookup", "FakeTarget", "ToxicAwareController", "fake_stack"]

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class FakeLookup:
    slug: str
    uuid: uuid.UUID | None
    path: str
    outcome: str
    reason: str | None
    duration_us: int
    attempts: int


@dataclass(frozen=True, slots=True)
class FakeJob:
    micro_id: str
    micro_uuid: uuid.UUID | None


class ToxicAwareController(RecordingFaultController):
    """A recording controller that also remembers each active toxic's spec."""

    def __init__(self) -> None:
        super().__init__()
        self.toxics: dict[str, FaultSpec] = {}

    async def apply(self, fault: FaultSpec) -> None:
        await super().apply(fault)
        if fault.toxic is not None:
            self.toxics[fault.name] = fault

    async def clear(self, fault: FaultSpec) -> None:
        await super().clear(fault)
        self.toxics.pop(fault.name, None)

    async def clear_all(self) -> None:
        await super().clear_all()
        self.toxics.clear()


class FakeTarget:
    """An in-memory lookup service shaped like ``resilience.service.LookupService``.

    Cache hits cost nothing; database lookups sleep ``db_latency_s`` (plus any
    ``latency`` toxic on ``postgres``) on ``clock``; with ``postgres`` disabled
    they fail, and ``failure_threshold`` consecutive failures open the breaker
    for ``reset_timeout_s``. ``crash_after`` makes the n-th lookup raise
    :class:`RuntimeError` (to test that the runner survives and cleans up).
    """

    def __init__(
        self,
        slugs: Sequence[str],
        controller: ToxicAwareController,
        *,
        clock: Clock = SYSTEM_CLOCK,
        db_latency_s: float = 0.002,
        cache_size: int = 100,
        failure_threshold: int = 5,
        reset_timeout_s: float = 2.0,
        crash_after: int | None = None,
    ) -> None:
        self._uuids = {s: uuid.uuid5(uuid.NAMESPACE_DNS, s) for s in slugs}
        self._controller = controller
        self._clock = clock
        self._db_latency_s = db_latency_s
        self._cache: dict[str, uuid.UUID | None] = {}
        self._cache_size = cache_size
        self._threshold = failure_threshold
        self._reset_timeout_s = reset_timeout_s
        self._failures = 0
        self._open_until: float | None = None
        self.opens = 0
        self.lookups = 0
        self._crash_after = crash_after

    def _breaker_state(self) -> str:
        if self._open_until is None:
            return "closed"
        return "open" if self._clock.monotonic() < self._open_until else "half_open"

    async def _db(self, slug: str) -> uuid.UUID | None:
        if "proxy:postgres" in self._controller.active:
            raise ConnectionFailure("postgres is disabled")
        extra = 0.0
        for toxic in self._controller.toxics.values():
            if toxic.target == "postgres" and toxic.toxic == "latency":
                extra += float(toxic.attributes.get("latency", 0)) / 1000.0
        await self._clock.sleep_async(self._db_latency_s + extra)
        return self._uuids.get(slug)

    async def lookup(self, slug: str) -> FakeLookup:
        self.lookups += 1
        if self._crash_after is not None and self.lookups >= self._crash_after:
            raise RuntimeError("injected crash")
        start = self._clock.monotonic()

        def done(
            u: uuid.UUID | None, path: str, outcome: str, reason: str | None, n: int
        ) -> FakeLookup:
            took = int((self._clock.monotonic() - start) * 1e6)
            return FakeLookup(slug, u, path, outcome, reason, took, n)

        if not (0 < len(slug) <= 100 and _SLUG.match(slug)):
            raise InvalidSlug(f"malformed slug {slug!r}")
        if slug in self._cache:
            cached = self._cache[slug]
            return done(
                cached,
                "cache",
                "success" if cached else "fallback",
                None if cached else "not_found",
                0,
            )
        if self._breaker_state() == "open":
            return done(None, "fallback", "fallback", "circuit_open", 0)
        try:
            found = await self._db(slug)
        except ConnectionFailure:
            self._failures += 1
            if self._failures >= self._threshold or self._breaker_state() == "half_open":
                if self._breaker_state() != "open":
                    self.opens += 1
                self._open_until = self._clock.monotonic() + self._reset_timeout_s
            return done(None, "fallback", "fallback", "connection", 1)
        self._failures = 0
        self._open_until = None
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[slug] = found
        return done(
            found, "db", "success" if found else "fallback", None if found else "not_found", 1
        )

    async def post_job(
        self, micro_id: str, answers: Mapping[str, Any], idempotency_key: str
    ) -> FakeJob:
        del answers, idempotency_key
        result = await self.lookup(micro_id)
        return FakeJob(micro_id, result.uuid)

    def stats(self) -> dict[str, Any]:
        return {
            "breaker": {"state": self._breaker_state(), "opens": self.opens},
            "cache_size": len(self._cache),
        }


def fake_stack(
    slugs: Sequence[str] | None = None, *, clock: Clock = SYSTEM_CLOCK, **options: Any
) -> StaticStack:
    """A :class:`StaticStack` of a :class:`FakeTarget` and its controller."""
    names = list(slugs) if slugs is not None else [f"service-{i}" for i in range(200)]
    controller = ToxicAwareController()
    target = FakeTarget(names, controller, clock=clock, **options)
    return StaticStack(target=target, faults=controller, clock=clock, slugs=names, mode="fake")
