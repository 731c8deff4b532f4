"""The lookup flow: slug → UUID through cache, Redis, breaker, retry and PostgreSQL.

::

    validate ─► in-memory cache ─► Redis tier ─► breaker ─► retry ─► repository
       │              │ hit            │ hit        │ open      (timeout per attempt)
     invalid        cache            redis       fallback

:class:`LookupService` receives every dependency as a constructor argument
(repository, cache, Redis tier, breaker, retry, metrics, clock), so the
virtual-time simulator runs this very class against modelled dependencies.
It reads time only from the injected clock, and bounds each database attempt
with :func:`~resilience.service.timeouts.bounded` (loop time, virtual under
the simulator), which gives up without waiting for the cancelled query.

Contract of :meth:`LookupService.lookup`: an invalid slug raises
:class:`~resilience.errors.InvalidSlug` (not recoverable, never retried, not
a breaker failure); everything else returns a :class:`LookupResult`, never
raises. :meth:`LookupService.lookup_result` never raises at all: an invalid
slug gives ``outcome="invalid"``. Both record metrics.

Outcomes: a UUID → ``success``; not found (negative-cached) or a recoverable
failure (connection, timeout, breaker open, retryable database error) →
``fallback`` with the reason; anything else → ``error``. Redis never fails a
lookup: :class:`~resilience.cache.redis_tier.RedisTier` degrades by itself.

Over 500 lines because the flow, batches, jobs and reporting share the
service's state and seams; the parts with an idea of their own live beside
it (stats, shared_stats, health, outbox, timeouts).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from resilience.breaker import CircuitBreaker
from resilience.cache import MISSING, NEGATIVE, CacheTier, LookupCache
from resilience.cache.redis_tier import NOT_FOUND, NotFoundMarker, TierValue
from resilience.classify import classify
from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.errors import (
    CircuitOpenError,
    ConnectionFailure,
    DatabaseError,
    Recovery,
    ResilienceError,
    TimeoutFailure,
)
from resilience.metrics import MetricsRecorder
from resilience.retry import Retry
from resilience.service.classified import ClassifiedCounts
from resilience.service.health import HealthProbes, LookupFailureWindow, check_health
from resilience.service.model import Job, LookupOutcome, LookupPath, LookupResult
from resilience.service.outbox import JobOutbox
from resilience.service.prometheus import render_service_metrics
from resilience.service.repository import JobRepository, SlugRepository
from resilience.service.shared_stats import SharedStats, SharedStatsUnavailable
from resilience.service.slug import is_valid_slug, validate_slug
from resilience.service.stats import ServiceStats, combine_workers
from resilience.service.timeouts import bounded

__all__ = ["LookupService", "fallback_reason"]

LookupListener = Callable[[LookupResult], None]
MAX_OPEN_READS = 32
"""Redis reads in flight at once on behalf of lookups answered by an open breaker."""
T = TypeVar("T")
_new_tuple = tuple.__new__


def fallback_reason(error: ResilienceError) -> str:
    """The short ``reason`` recorded for a classified failure."""
    if isinstance(error, CircuitOpenError):
        return "circuit_open"
    if isinstance(error, TimeoutFailure):
        return "timeout"
    if isinstance(error, ConnectionFailure):
        return "connection"
    if isinstance(error, DatabaseError):
        return "database"
    return type(error).__name__


class LookupService:
    """Slug → UUID lookups and job posting over injected dependencies.

    ``cache`` is the in-memory tier (negative entries for "not found").
    ``redis_tier`` may be ``None`` (in-memory only).
    ``retry`` wraps each database attempt, the breaker wraps the whole retried
    call (one failed lookup = one breaker failure). ``db_timeout_s`` bounds
    each attempt, capped by what is left of the retry's ``deadline_s``
    (:meth:`Retry.attempt_timeout_s`; the retry shares ``clock``).
    ``open_breaker_redis_timeout_s``, when set, bounds the Redis tier read
    while the breaker is open (a later answer fills the memory tier); ``None``
    waits for the tier as usual (it has its own timeout).
    ``listeners`` get every :class:`LookupResult` (analytics, error tracking);
    they must not block or raise.
    """

    def __init__(
        self,
        *,
        repository: SlugRepository,
        cache: LookupCache[str, uuid.UUID],
        redis_tier: CacheTier[str, uuid.UUID, NotFoundMarker] | None,
        breaker: CircuitBreaker,
        retry: Retry,
        metrics: MetricsRecorder | None = None,
        clock: Clock = SYSTEM_CLOCK,
        db_timeout_s: float = 1.0,
        jobs: JobRepository | None = None,
        job_retry: Retry | None = None,
        listeners: Iterable[LookupListener] = (),
        probes: HealthProbes | None = None,
        outbox: JobOutbox | None = None,
        open_breaker_redis_timeout_s: float | None = None,
    ) -> None:
        self.repository = repository
        self.cache = cache
        self.redis_tier = redis_tier
        self.breaker = breaker
        self.retry = retry
        self.metrics = metrics if metrics is not None else MetricsRecorder(clock=clock)
        self.clock = clock
        self.db_timeout_s = db_timeout_s
        self.jobs = jobs
        self.job_retry = job_retry if job_retry is not None else retry
        self.counters = ServiceStats()
        self.failure_window = LookupFailureWindow(clock=clock)
        self.listeners: list[LookupListener] = [self.failure_window, *listeners]
        self.probes = probes if probes is not None else HealthProbes()
        self.outbox = outbox
        self.config: Any = None
        """The :class:`ServiceConfig` it was built from, when built by ``open_service``."""
        self.analytics: Any = None
        self.error_tracker: Any = None
        self.classified = ClassifiedCounts()
        if hasattr(redis_tier, "on_error"):  # the Redis tier skips what fails: say what it was
            redis_tier.on_error = self._redis_failed  # type: ignore[union-attr]
        self.notifications: Any = None
        """Set by ``open_service``: the :class:`~resilience.service.notify.EventHub` of
        ``/ws/events``; with ``supervisor`` (background components), ``monitor``
        (alerts and health transitions) and ``alerts`` (the alert evaluator)."""
        self.supervisor: Any = None
        self.monitor: Any = None
        self.alerts: Any = None
        self.backfill: Any = None
        """Set by ``open_service`` with ``migration.enabled``: the ``micro_uuid`` backfill."""
        self.shared_stats: SharedStats | None = None
        """Set by ``open_service`` with Redis: ``/stats`` and ``/metrics`` then cover every
        worker publishing to the same Redis (see :meth:`service_stats`)."""
        self.bookings: Any = None
        """Set by ``open_service`` when a booking API is configured: the booking flow."""
        self.open_breaker_redis_timeout_s = open_breaker_redis_timeout_s
        self._inflight: dict[str, asyncio.Future[LookupResult]] = {}
        self._open_reads: dict[str, asyncio.Task[TierValue | None]] = {}
        self._trial_retries: dict[int, Retry] = {}

    # -- single lookups ------------------------------------------------------------

    async def lookup(self, slug: str) -> LookupResult:
        """Look ``slug`` up; raises :class:`InvalidSlug` for a malformed slug, else never."""
        started = self.clock.monotonic()
        result = self._answer_at_once(started, slug)
        if result is None:
            result = await self._answer_from_tiers(started, slug)
        elif result.outcome == "invalid":
            validate_slug(slug)  # raises with the precise message
        return result

    async def lookup_result(self, slug: str) -> LookupResult:
        """Look ``slug`` up and always return a result (``outcome="invalid"`` when malformed)."""
        started = self.clock.monotonic()
        result = self._answer_at_once(started, slug)
        if result is None:
            result = await self._answer_from_tiers(started, slug)
        return result

    def refused(self, slug: str) -> LookupResult:
        """Record ``slug`` as refused before any lookup (e.g. by HTTP request validation):
        counted as an ``invalid`` lookup like one :meth:`lookup_result` refuses."""
        return self._finish(
            self.clock.monotonic(), slug, None, "invalid", "invalid", "invalid_slug", 0
        )

    def _answer_at_once(self, started: float, slug: str) -> LookupResult | None:
        """The result of an invalid slug or a memory-tier answer, else ``None``.

        Synchronous, so that :meth:`lookup` answers most lookups without
        awaiting a second coroutine.
        """
        if not is_valid_slug(slug):
            return self._finish(started, slug, None, "invalid", "invalid", "invalid_slug", 0)
        cached = self.cache.get(slug)
        if cached is MISSING:
            return None
        if cached is NEGATIVE:
            return self._finish(started, slug, None, "cache", "fallback", "not_found", 0)
        return self._finish(started, slug, cached, "cache", "success", None, 0)

    async def _answer_from_tiers(self, started: float, slug: str) -> LookupResult:
        """The rest of a lookup the memory tier could not answer: Redis, then the database."""
        if self.redis_tier is not None:
            if self.open_breaker_redis_timeout_s is not None and self.breaker.state == "open":
                shared = await self._redis_while_open(slug, self.open_breaker_redis_timeout_s)
            else:
                shared = await self.redis_tier.get(slug)
            if shared is not None:
                self._remember(slug, shared)
                if shared is NOT_FOUND:
                    return self._finish(started, slug, None, "redis", "fallback", "not_found", 0)
                return self._finish(started, slug, shared, "redis", "success", None, 0)
        leader = self._inflight.get(slug)
        if leader is not None:  # single flight: share the running database load
            try:
                shared_result = await asyncio.shield(leader)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if leader.cancelled() and (task is None or not task.cancelling()):
                    return await self.lookup_result(slug)  # the leader was cancelled, not us
                raise
            return self._finish(
                started,
                slug,
                shared_result.uuid,
                shared_result.path,
                shared_result.outcome,
                shared_result.reason,
                0,
            )
        future: asyncio.Future[LookupResult] = asyncio.get_running_loop().create_future()
        self._inflight[slug] = future
        try:
            result = await self._load(started, slug)
            future.set_result(result)
            return result
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: followers may not exist
            raise
        finally:
            del self._inflight[slug]

    async def _redis_while_open(self, slug: str, timeout_s: float) -> TierValue | None:
        """The Redis tier's answer if it comes within ``timeout_s``, else ``None`` (a miss).

        Only while the breaker is open, when the alternative to Redis is an
        immediate fallback rather than a query. The read is started but never
        waited for longer than ``timeout_s`` (0: not at all) and never
        cancelled: whenever it answers, a hit goes into the memory tier, so the
        next lookup of ``slug`` gets the real UUID from memory. One read per
        slug at a time and at most :data:`MAX_OPEN_READS` at once (beyond that a
        storm of fallbacks must not exhaust the Redis connection pool).
        """
        fetch = self._open_reads.get(slug)
        if fetch is None:
            if len(self._open_reads) >= MAX_OPEN_READS:
                return None
            assert self.redis_tier is not None
            fetch = asyncio.ensure_future(self.redis_tier.get(slug))
            self._open_reads[slug] = fetch
            fetch.add_done_callback(functools.partial(self._open_read_done, slug))
        if timeout_s > 0 and not fetch.done():
            await asyncio.wait((fetch,), timeout=timeout_s)  # does not cancel it
        if fetch.done() and not fetch.cancelled():
            return fetch.result()
        return None

    def _open_read_done(self, slug: str, fetch: asyncio.Task[TierValue | None]) -> None:
        if self._open_reads.get(slug) is fetch:
            del self._open_reads[slug]
        if not fetch.cancelled():
            value = fetch.result()  # RedisTier.get never raises
            if value is not None:
                self._remember(slug, value)

    def _redis_failed(self, exc: BaseException) -> None:
        error = classify(exc)
        self.classified.seen(error, action="skipped by the cache tier")
        self.classified.finished([error], succeeded=False)  # the tier skips, never retries

    async def _guarded(
        self, query: Callable[[], Awaitable[T]], *, retry: Retry, what: str
    ) -> tuple[T | None, ResilienceError | None, int]:
        """Run ``query`` through the breaker and ``retry``, each attempt bounded.

        Returns ``(value, None, attempts)`` or ``(None, error, attempts)``; an
        open breaker is ``(None, CircuitOpenError, 0)``. Cancellation propagates
        (the breaker permit is released, counting neither way).
        """
        attempts = 0
        failures: list[ResilienceError] = []

        async def attempt() -> T:
            nonlocal attempts
            attempts += 1
            # capped by what is left of the retry deadline (same clock): a real bound
            timeout_s = retry.attempt_timeout_s(called, self.db_timeout_s)
            try:
                return await bounded(query(), timeout_s, what=what)
            except ResilienceError as exc:
                self.classified.seen(exc)
                failures.append(exc)
                raise
            except Exception as exc:
                error = classify(exc)
                self.classified.seen(error)
                failures.append(error)
                raise error from exc

        try:
            permit = self.breaker.before_call()
        except CircuitOpenError as exc:
            return None, exc, 0
        called = self.clock.monotonic()
        if self.breaker.state == "half_open":
            # A half-open trial is one database attempt, not a retried call: the
            # breaker's half_open_max_calls then bounds the attempts per window.
            retry = self._trial_retry(retry)
        try:
            value: T = await retry.acall(attempt)
        except Exception as exc:
            error = exc if isinstance(exc, ResilienceError) else classify(exc)
            self.breaker.on_failure(permit, error, self.clock.monotonic() - called)
            self.classified.finished(failures or [error], succeeded=False)
            return None, error, attempts
        except BaseException:
            self.breaker.on_ignored(permit)
            raise
        self.breaker.on_success(permit, self.clock.monotonic() - called)
        if failures:
            self.classified.finished(failures, succeeded=True)
        return value, None, attempts

    def _trial_retry(self, retry: Retry) -> Retry:
        """``retry`` with a single attempt (memoised per policy)."""
        single = self._trial_retries.get(id(retry))
        if single is None:
            single = self._trial_retries[id(retry)] = retry.replace(max_attempts=1)
        return single

    def _failed(
        self, started: float, slug: str, error: ResilienceError, attempts: int
    ) -> LookupResult:
        """The result of a lookup whose query failed: fallback if recoverable, else error."""
        recoverable = error.retryable or error.recovery is not Recovery.ABORT
        return self._finish(
            started,
            slug,
            None,
            "fallback" if recoverable else "db",
            "fallback" if recoverable else "error",
            fallback_reason(error),
            attempts,
            error=None if isinstance(error, CircuitOpenError) else error,
        )

    async def _load(self, started: float, slug: str) -> LookupResult:
        found, error, attempts = await self._guarded(
            lambda: self.repository.fetch_uuid(slug), retry=self.retry, what="slug query"
        )
        if error is not None:
            return self._failed(started, slug, error, attempts)
        if found is None:
            self.cache_not_found(slug)
            if self.redis_tier is not None:
                await self.redis_tier.set_not_found(slug)
            return self._finish(started, slug, None, "db", "fallback", "not_found", attempts)
        self.cache.set(slug, found)
        if self.redis_tier is not None:
            await self.redis_tier.set(slug, found)
        return self._finish(started, slug, found, "db", "success", None, attempts)

    def warm(self, pairs: Iterable[tuple[str, uuid.UUID]]) -> int:
        """Load known (slug, UUID) pairs into the in-memory tier; returns how many."""
        return self.cache.warm(pairs)

    def cache_not_found(self, slug: str) -> None:
        """Negative-cache ``slug`` in the in-memory tier."""
        self.cache.set_negative(slug)

    def _remember(self, slug: str, value: uuid.UUID | Any) -> None:
        if value is NOT_FOUND:
            self.cache_not_found(slug)
        else:
            self.cache.set(slug, value)

    def _finish(
        self,
        started: float,
        slug: str,
        found: uuid.UUID | None,
        path: LookupPath,
        outcome: LookupOutcome,
        reason: str | None,
        attempts: int,
        *,
        error: ResilienceError | None = None,
    ) -> LookupResult:
        # Every lookup ends here, so: the result built as the named tuple's own
        # __new__ builds it (without that Python-level frame), positional calls,
        # and the recorder's unchecked add() (the values are valid by construction).
        duration_us = round((self.clock.monotonic() - started) * 1_000_000)
        if duration_us < 0:
            duration_us = 0
        result = _new_tuple(
            LookupResult,
            (
                slug,
                found,
                path,
                outcome,
                reason,
                duration_us,
                attempts,
                None if error is None else error.correlation_id,
            ),
        )
        self.metrics.add(
            "lookup", outcome, "none" if path == "invalid" else path, duration_us, attempts
        )
        self.counters.observe(result)
        for listener in self.listeners:
            listener(result)
        return result

    # -- batches ---------------------------------------------------------------------

    async def lookup_many(self, slugs: Iterable[str]) -> dict[str, LookupResult]:
        """Look many slugs up with one Redis round trip and one database query.

        Returns a result per distinct slug (invalid ones with ``outcome="invalid"``);
        never raises.
        """
        started = self.clock.monotonic()
        ordered = list(dict.fromkeys(slugs))
        results: dict[str, LookupResult] = {}
        pending: list[str] = []
        for slug in ordered:
            if not is_valid_slug(slug):
                results[slug] = self._finish(
                    started, slug, None, "invalid", "invalid", "invalid_slug", 0
                )
                continue
            cached = self.cache.get(slug)
            if cached is MISSING:
                pending.append(slug)
            elif cached is NEGATIVE:
                results[slug] = self._finish(
                    started, slug, None, "cache", "fallback", "not_found", 0
                )
            else:
                results[slug] = self._finish(started, slug, cached, "cache", "success", None, 0)
        if pending and self.redis_tier is not None:
            shared = await self.redis_tier.get_many(pending)
            for slug, value in shared.items():
                self._remember(slug, value)
                if value is NOT_FOUND:
                    results[slug] = self._finish(
                        started, slug, None, "redis", "fallback", "not_found", 0
                    )
                else:
                    results[slug] = self._finish(started, slug, value, "redis", "success", None, 0)
            pending = [slug for slug in pending if slug not in shared]
        if pending:
            results.update(await self._load_many(started, pending))
        return {slug: results[slug] for slug in ordered}

    async def _load_many(self, started: float, slugs: list[str]) -> dict[str, LookupResult]:
        answer, error, attempts = await self._guarded(
            lambda: self.repository.fetch_many(slugs), retry=self.retry, what="batch query"
        )
        if error is not None:
            return {slug: self._failed(started, slug, error, attempts) for slug in slugs}
        found: Mapping[str, uuid.UUID] = answer or {}
        missing = [s for s in slugs if s not in found]
        for slug, value in found.items():
            self.cache.set(slug, value)
        for slug in missing:
            self.cache_not_found(slug)
        tier = self.redis_tier
        if tier is not None:
            set_many = getattr(tier, "set_many", None)
            if set_many is not None:
                await set_many(found, missing)
            else:
                for slug, value in found.items():
                    await tier.set(slug, value)
                for slug in missing:
                    await tier.set_not_found(slug)
        out: dict[str, LookupResult] = {}
        for slug in slugs:
            known = found.get(slug)
            if known is None:
                out[slug] = self._finish(
                    started, slug, None, "db", "fallback", "not_found", attempts
                )
            else:
                out[slug] = self._finish(started, slug, known, "db", "success", None, attempts)
        return out

    # -- jobs --------------------------------------------------------------------------

    async def post_job(
        self, micro_id: str, answers: Mapping[str, Any], idempotency_key: str
    ) -> Job:
        """Store a job for ``micro_id`` exactly once per ``idempotency_key``.

        Raises :class:`InvalidSlug` (job refused) for a malformed ``micro_id``.
        ``micro_uuid`` is the lookup's UUID, ``None`` when the lookup fell back.
        The write goes through the breaker and the storage-write retry; a reply
        lost after the commit is harmless because the retry finds the stored
        row (``Job.created`` is then ``False``). When PostgreSQL is unavailable
        (breaker open, or every attempt failed recoverably) and an ``outbox`` is
        configured, the job is queued there and returned with
        ``status="queued"`` and no id; otherwise the classified error is raised.
        """
        if self.jobs is None:
            raise RuntimeError("this LookupService was built without a job repository")
        jobs = self.jobs
        validate_slug(micro_id)
        result = await self.lookup_result(micro_id)
        fields: dict[str, Any] = {
            "micro_id": micro_id,
            "micro_uuid": result.uuid,
            "answers": answers,
            "idempotency_key": idempotency_key,
        }

        job, error, _ = await self._guarded(
            lambda: jobs.insert_job(**fields), retry=self.job_retry, what="job write"
        )
        if error is not None:
            if error.retryable or error.recovery is not Recovery.ABORT:
                return await self._queue_job(fields, error, result.path)
            raise error
        assert job is not None  # _guarded gives a value or an error
        self.counters.jobs_stored += int(job.created)
        self.counters.jobs_replayed += int(not job.created)
        return _with_path(job, result.path)

    async def _queue_job(self, fields: dict[str, Any], error: ResilienceError, path: str) -> Job:
        """Put a job that could not be written into the outbox, or raise ``error``."""
        outbox = self.outbox
        if outbox is None or not await outbox.put(**fields):
            raise error
        self.counters.jobs_queued += 1
        return _with_path(outbox.queued_job(**fields), path)

    async def get_job(self, job_id: int) -> Job | None:
        """The job with ``job_id`` (``None`` if unknown); raises the classified error on failure."""
        if self.jobs is None:
            raise RuntimeError("this LookupService was built without a job repository")
        try:
            return await bounded(self.jobs.get_job(job_id), self.db_timeout_s, what="job read")
        except ResilienceError:
            raise
        except Exception as exc:
            raise classify(exc) from exc

    # -- reporting ---------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """The JSON of ``GET /health`` (see :mod:`resilience.service.health`).

        With an outbox, ``components.outbox`` gives its counts; any dead letter
        makes it ``degraded`` (a job needs a person: see ``{prefix}:jobs:dead``).
        """
        extra = {"bookings": self.bookings.health()} if self.bookings is not None else None
        body = await check_health(
            self.probes, breaker=self.breaker, lookups=self.failure_window, extra=extra
        )
        if self.outbox is not None:
            counts = self.outbox.stats()
            body.setdefault("components", {})["outbox"] = {
                "status": "degraded" if counts["dead_lettered"] else "healthy",
                **counts,
            }
        return body

    def metrics_text(self) -> str:
        """The Prometheus text of this instance alone."""
        return render_service_metrics(self.metrics.snapshot(), self.stats())

    def stats(self) -> dict[str, Any]:
        """This instance's figures (``scope: "worker"``): rates, latency by path (µs), breaker."""
        stats = self.counters.to_dict(breaker=self.breaker, redis_tier=self.redis_tier)
        stats.update(self._sections())
        if self.bookings is not None:
            stats["bookings"] = self.bookings.stats()
        stats["scope"] = "worker"
        stats["workers"] = 1
        return stats

    def worker_state(self) -> dict[str, Any]:
        """This instance's mergeable counts, JSON-ready: what :class:`SharedStats` publishes."""
        sections = self._sections()
        tier_stats = getattr(self.redis_tier, "stats", None)
        if callable(tier_stats):
            sections["redis"] = tier_stats()
        return {
            "stats": self.counters.state(),
            "recorder": self.metrics.state(),
            "sections": sections,
        }

    async def service_stats(self, *, fresh: bool = True) -> dict[str, Any]:
        """The JSON of ``GET /stats``: every live worker's counts summed.

        ``scope`` says what the figures cover: ``"service"`` (merged from
        ``workers`` live workers through Redis, this one included; ``stale_workers``
        did not answer the refresh in time and count with their last snapshot) or
        ``"worker"`` (this instance only: no shared statistics configured, or
        Redis unreachable — then ``shared_error`` says why).
        """
        merged = await self._merged_states(fresh)
        if isinstance(merged, str):
            stats = self.stats()
            stats["shared_error"] = merged
            return stats
        if merged is None:
            return self.stats()
        states, stale = merged
        return combine_workers(states, breaker=self.breaker, stale=stale)

    async def service_metrics_text(self, *, fresh: bool = True) -> str:
        """The Prometheus text of ``GET /metrics``: the workers of :meth:`service_stats`."""
        merged = await self._merged_states(fresh)
        if not isinstance(merged, tuple):
            return self.metrics_text()
        states, stale = merged
        recorder = MetricsRecorder(clock=self.clock)
        for state in states:
            recorder.merge_state(state["recorder"])
        return render_service_metrics(
            recorder.snapshot(), combine_workers(states, breaker=self.breaker, stale=stale)
        )

    async def _merged_states(self, fresh: bool) -> tuple[list[dict[str, Any]], int] | str | None:
        """(own state first, then the others'; stale count), an error text, or ``None``."""
        shared = self.shared_stats
        if shared is None:
            return None
        try:
            others, stale = await shared.collect(fresh=fresh)
        except SharedStatsUnavailable as exc:
            return str(exc)
        return [self.worker_state(), *(o["state"] for o in others)], stale

    def _sections(self) -> dict[str, dict[str, Any]]:
        sections: dict[str, dict[str, Any]] = {}
        if self.analytics is not None:
            sections["analytics"] = self.analytics.stats()
        if self.error_tracker is not None:
            sections["error_tracking"] = self.error_tracker.stats()
        classified = self.classified.stats()
        if classified:
            sections["classified"] = classified
        if self.outbox is not None:
            sections["outbox"] = self.outbox.stats()
        if self.notifications is not None:
            sections["notifications"] = self.notifications.stats()
        if self.monitor is not None:
            sections["alerts"] = self.monitor.stats()
        if self.backfill is not None:
            sections["migration"] = self.backfill.stats()
        return sections


def _with_path(job: Job, path: str) -> Job:
    return Job(
        id=job.id,
        micro_id=job.micro_id,
        micro_uuid=job.micro_uuid,
        answers=job.answers,
        idempotency_key=job.idempotency_key,
        status=job.status,
        created_at=job.created_at,
        lookup_path=path,
        created=job.created,
    )
