"""The reference service as a :class:`~resilience.targets.base.Target` (in process).

:class:`ReferenceTarget` wraps anything shaped like
``resilience.service.LookupService`` — the real service, the simulator's
service over modelled dependencies, the fake of
:mod:`resilience.scenario.testing` — and gives it two operations:

``lookup``  slug → UUID; outcome ``success``/``fallback``/``error``, path
            ``cache``/``redis``/``db``/``fallback``, or ``invalid`` (path
            ``invalid``, reason ``invalid_slug``) for a malformed slug.
``job``     post a job for the slug; outcome ``accepted`` (path ``uuid`` or
            ``null_uuid``), ``refused`` (path ``invalid``) or ``failed``
            (reason: the error's class).
``booking`` one booking through the booking API (:mod:`resilience.targets.booking`).

Other operations can be registered (:func:`register_operation`), e.g. a
``booking`` operation, so a scenario's ``mix`` may name them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from resilience.errors import InvalidInput, ResilienceError
from resilience.targets.base import Call, Observation

__all__ = [
    "KIND",
    "OPERATIONS",
    "ReferenceService",
    "ReferenceTarget",
    "as_target",
    "register_operation",
]

KIND = "reference"


class ReferenceService(Protocol):
    """What the reference target needs of the service it wraps."""

    async def lookup(self, slug: str) -> Any: ...
    async def post_job(
        self, micro_id: str, answers: Mapping[str, Any], idempotency_key: str
    ) -> Any: ...
    def stats(self) -> Mapping[str, Any]: ...


Handler = Callable[[Any, Call], Awaitable[Observation]]
"""``handler(service, call)``: one operation against the service."""


async def _lookup(service: Any, call: Call) -> Observation:
    try:
        result = await service.lookup(call.key)
    except InvalidInput:
        return Observation("invalid", "invalid", "invalid_slug", None, 0)
    return Observation(
        result.outcome, result.path, result.reason, int(result.duration_us), int(result.attempts)
    )


def job_answers(call: Call) -> dict[str, Any]:
    """The answers a scenario's job post sends (what reconciliation expects stored)."""
    return {"seq": call.seq, "source": "scenario"}


async def _job(service: Any, call: Call) -> Observation:
    try:
        job = await service.post_job(call.key, job_answers(call), call.idempotency_key)
    except InvalidInput:
        return Observation("refused", "invalid", "invalid_slug", None, 0)
    except ResilienceError as exc:
        return Observation("failed", "", type(exc).__name__, None, 0)
    path = "uuid" if job.micro_uuid is not None else "null_uuid"
    return Observation("accepted", path, None, None, 0)


def _booking(service: Any, call: Call) -> Awaitable[Observation]:
    from resilience.targets.booking import booking_operation  # the service's booking flow

    return booking_operation(service, call)


OPERATIONS: dict[str, Handler] = {"lookup": _lookup, "job": _job, "booking": _booking}
"""The operation table (name → handler); :func:`register_operation` adds to it."""


def register_operation(name: str, handler: Handler) -> None:
    """Make ``name`` an operation of every reference target (e.g. ``booking``)."""
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"operation names are words (letters, digits, _): {name!r}")
    OPERATIONS[name] = handler


class ReferenceTarget:
    """The in-process reference service with operations ``lookup``, ``job`` (and registered ones).

    ``slugs`` are the catalogue's slugs in rank order (the steady-state
    probes look them up).
    """

    kind = KIND

    def __init__(self, service: Any, slugs: Sequence[str] = ()) -> None:
        self.service = service
        self._slugs = list(slugs) or ["missing-catalogue"]
        self._handlers = OPERATIONS
        self.breaker = getattr(service, "breaker", None)
        self.hit_paths = frozenset({"cache", "redis"})
        self.degraded_outcomes = frozenset({"fallback"})
        self.live_op = "lookup"
        """The operation the live display's hit and fallback rates count."""
        self.acknowledged: dict[str, dict[str, Any]] = {}
        """Idempotency key → answers of every job acknowledged (``accepted``) this run."""
        self.jobs_posted = 0

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    async def call(self, call: Call) -> Observation:
        try:
            handler = self._handlers[call.op]
        except KeyError:
            return Observation("error", "", f"no operation {call.op!r}", 0, 0)
        observation = await handler(self.service, call)
        if call.op == "job":
            self.jobs_posted += 1
            if observation.outcome == "accepted":
                self.acknowledged[call.idempotency_key] = job_answers(call)
        return observation

    async def end_of_run(self) -> list[dict[str, Any]]:
        """Reconcile the acknowledged jobs with the store (after the outbox drained,
        bounded): one ``check`` record; none when the run posted no job or the service
        has no job store to audit (e.g. a test fake)."""
        store = getattr(self.service, "jobs", None)
        if not self.jobs_posted or not hasattr(store, "stored_with_key_prefix"):
            return []
        from resilience.targets.reconcile import reconcile_service

        return [await reconcile_service(self.service, self.acknowledged)]

    def stats(self) -> Mapping[str, Any]:
        return self.service.stats()  # type: ignore[no-any-return]

    async def probe(self, count: int, *, attempt: int, from_tail: bool) -> list[str]:
        """Look up ``count`` known slugs (the least popular ones with ``from_tail``)."""
        slugs = self._slugs
        failures: list[str] = []
        for i in range(count):
            k = attempt * count + i
            slug = slugs[-1 - (k % len(slugs))] if from_tail else slugs[k % len(slugs)]
            try:
                result = await self.service.lookup(slug)
                if result.outcome != "success":
                    failures.append(f"{slug}: {result.outcome} ({result.reason})")
            except Exception as exc:
                failures.append(f"{slug}: {type(exc).__name__}: {exc}")
        return failures

    def __repr__(self) -> str:
        return f"ReferenceTarget({type(self.service).__name__})"


def as_target(obj: Any, slugs: Sequence[str] = ()) -> Any:
    """``obj`` if it already is a target (has ``kind``, ``operations`` and ``call``),
    else the reference service ``obj`` wrapped in a :class:`ReferenceTarget`."""
    if all(hasattr(obj, name) for name in ("kind", "operations", "call")):
        return obj
    return ReferenceTarget(obj, slugs)
