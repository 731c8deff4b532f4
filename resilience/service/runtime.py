"""Build a running :class:`LookupService` from URLs: pools, tiers, breaker, writers.

::

    async with open_service(ServiceConfig(), postgres_url=..., redis_url=...) as service:
        result = await service.lookup("roof-repair")

On entry: an asyncpg pool, a Redis client and :class:`RedisTier` (when
``redis_url`` is given and ``redis.enabled``), a breaker sharing its state
through :class:`RedisBreakerStore` (``redis.shared_breaker``), and the
background writers (``analytics_events``, ``error_events``,
``circuit_breaker_events``, ``failure_metrics``), and, with Redis, the
:class:`SharedStats` publisher that makes ``/stats`` cover every worker. On
exit the final statistics snapshot is published, the writers are flushed
(analytics first), then everything is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from resilience.breaker import CircuitBreaker
from resilience.breaker.redis_store import RedisBreakerStore
from resilience.cache.memory import LookupCache
from resilience.cache.redis_tier import RedisTier
from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.errors import ResilienceError
from resilience.metrics import MetricsRecorder
from resilience.retry import Retry
from resilience.service.alerts import AlertEvaluator
from resilience.service.analytics import (
    AnalyticsBatcher,
    AnalyticsEvent,
    postgres_analytics_writer,
)
from resilience.service.backfill import BackfillTask
from resilience.service.booking.service import BookingService
from resilience.service.components import Supervisor
from resilience.service.config import ServiceConfig
from resilience.service.error_events import ErrorEvent, ErrorEventRepository, ErrorTracker
from resilience.service.events import BreakerEventRecorder, FailureAggregator
from resilience.service.health import HealthProbes
from resilience.service.lookup import LookupService
from resilience.service.model import LookupResult
from resilience.service.monitor import Monitor, alert_row_writer
from resilience.service.notify import EventHub, breaker_listener, error_payload
from resilience.service.outbox import JobOutbox, dead_letter_event
from resilience.service.repository import (
    BoundedPool,
    PostgresJobRepository,
    PostgresSlugRepository,
    on_connection,
)
from resilience.service.shared_stats import SharedStats
from resilience.service.timeouts import bounded

__all__ = ["analytics_listener", "build_breaker", "build_cache", "build_retries", "open_service"]


def build_cache(config: ServiceConfig, clock: Clock) -> LookupCache[str, uuid.UUID]:
    """The in-memory tier from the config."""
    return LookupCache(
        max_size=config.cache.max_size,
        ttl_s=config.cache.ttl_s,
        negative_ttl_s=config.cache.negative_ttl_s,
        sweep_interval_s=config.cache.sweep_interval_s,
        clock=clock,
        name="lookup",
    )


def build_metrics(clock: Clock) -> MetricsRecorder:
    return MetricsRecorder(clock=clock)


def build_retries(config: ServiceConfig, clock: Clock) -> tuple[Retry, Retry]:
    """(lookup retry, job-write retry) from the config."""
    lookup = Retry(
        name="lookup",
        max_attempts=config.retry.max_attempts,
        initial_delay_s=config.retry.initial_delay_s,
        multiplier=config.retry.multiplier,
        max_delay_s=config.retry.max_delay_s,
        deadline_s=config.retry.deadline_s,
        clock=clock,
    )
    jobs = Retry(
        name="job-write",
        max_attempts=config.jobs.max_attempts,
        initial_delay_s=config.jobs.initial_delay_s,
        multiplier=config.jobs.multiplier,
        max_delay_s=config.jobs.max_delay_s,
        clock=clock,
    )
    return lookup, jobs


def build_breaker(config: ServiceConfig, clock: Clock, store: Any = None) -> CircuitBreaker:
    """The lookup breaker from the config (``store=None``: in-memory)."""
    return CircuitBreaker(
        config.breaker.name,
        failure_threshold=config.breaker.failure_threshold,
        reset_timeout_s=config.breaker.reset_timeout_s,
        half_open_max_calls=config.breaker.half_open_max_calls,
        clock=clock,
        store=store,
    )


def analytics_listener(batcher: AnalyticsBatcher, clock: Clock) -> Any:
    """A lookup listener queueing each result as an ``analytics_events`` row."""

    def listen(result: LookupResult) -> None:
        batcher.add(AnalyticsEvent(clock.wall(), result.to_dict()))

    return listen


def _error_listener(tracker: ErrorTracker) -> Any:
    def listen(result: LookupResult) -> None:
        if result.outcome == "error" or (
            result.outcome == "fallback" and result.reason not in ("not_found", "circuit_open")
        ):
            tracker.track(
                ErrorEvent(
                    severity="error" if result.outcome == "error" else "warning",
                    component="lookup",
                    error_type=result.reason or "unknown",
                    message=f"lookup of {result.slug!r} fell back: {result.reason}",
                    correlation_id=result.correlation_id,
                    context={"slug": result.slug, "attempts": result.attempts},
                )
            )

    return listen


@contextlib.asynccontextmanager
async def open_service(
    config: ServiceConfig | None = None,
    *,
    postgres_url: str,
    redis_url: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    booking_api_url: str | None = None,
    booking_stats_url: str | None = None,
) -> AsyncIterator[LookupService]:
    """A fully wired service on real PostgreSQL (and Redis, if ``redis_url``), with the
    booking flow when ``booking_api_url`` (or ``config.booking.url``) is given;
    ``booking_stats_url``: the booking stub's direct URL, whose ``/_stats`` the
    service then reports under ``stats()["bookings"]["upstream"]``."""
    import asyncpg

    config = config or ServiceConfig()
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        pool = await asyncpg.create_pool(
            postgres_url,
            min_size=config.db.pool_min_size,
            max_size=config.db.pool_max_size,
            timeout=config.db.timeout_s * 5,  # connection setup (also when its attempt gave up)
            reset=_keep_session,
        )
        stack.push_async_callback(_close_pool, pool)
        # Background writers, error events and the health probe: bounded, and an
        # abandoned query terminates its connection instead of holding a slot.
        writes = BoundedPool(pool, config.db.timeout_s * 5)
        if config.db.pool_min_size == 0:
            # Lazy pool: the service starts even while PostgreSQL is away (lookups fall
            # back until it answers); warm one connection when it is there.
            with contextlib.suppress(Exception):
                await bounded(
                    on_connection(pool, "fetchval", "SELECT 1"),
                    config.db.timeout_s,
                    what="warm-up",
                )

        redis_client: Any = None
        tier: RedisTier | None = None
        store: RedisBreakerStore | None = None
        if redis_url is not None and config.redis.enabled:
            import redis.asyncio as aioredis

            timeout_s = config.redis.timeout_s
            redis_client = aioredis.Redis.from_url(
                redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
            stack.push_async_callback(redis_client.aclose)
            tier = RedisTier(
                redis_client,
                prefix=config.redis.key_prefix,
                ttl_s=config.redis.ttl_s,
                negative_ttl_s=config.redis.negative_ttl_s,
                timeout_s=timeout_s,
                retry_interval_s=config.redis.retry_interval_s,
                clock=clock,
            )
            if config.redis.shared_breaker:
                store = RedisBreakerStore.from_url(
                    redis_url,
                    timeout_s=max(timeout_s, 0.2),
                    prefix=f"{config.redis.key_prefix}:breaker",
                    sync_interval_s=config.redis.breaker_sync_interval_s,
                    retry_interval_s=config.redis.retry_interval_s,
                    clock=clock,
                )
                stack.callback(store.close)

        breaker = build_breaker(config, clock, store)
        recorder = BreakerEventRecorder(writes, loop)
        breaker.add_listener(recorder)
        lookup_retry, job_retry = build_retries(config, clock)

        errors_repo = ErrorEventRepository(writes)
        tracker = ErrorTracker(errors_repo)
        hub = EventHub()
        hub.bind(loop)
        tracker.on_event = lambda event: hub.publish_error(error_payload(event))
        breaker.add_listener(breaker_listener(hub))
        alerts = AlertEvaluator(
            window_s=config.alerts.window_s, min_samples=config.alerts.min_samples
        )
        breaker.add_listener(alerts)
        supervisor = Supervisor(tracker.track)
        holder: list[LookupService] = []
        failures = FailureAggregator(
            writes,
            clock=clock,
            health=lambda: (
                str(holder[0].failure_window.status()["status"]) if holder else "healthy"
            ),
        )
        listeners: list[Any] = [_error_listener(tracker), failures, alerts]
        analytics: AnalyticsBatcher | None = None
        if config.analytics.enabled:
            analytics = AnalyticsBatcher(
                postgres_analytics_writer(writes),
                batch_size=config.analytics.batch_size,
                max_buffer=config.analytics.max_buffer,
                flush_interval_s=config.analytics.flush_interval_s,
            )
            listeners.append(analytics_listener(analytics, clock))

        async def postgres_ping() -> None:
            await on_connection(pool, "fetchval", "SELECT 1")

        async def redis_ping() -> None:
            if not await redis_client.ping():
                raise ConnectionError("Redis did not answer PING")

        jobs_repo = PostgresJobRepository(pool)
        outbox: JobOutbox | None = None
        if redis_client is not None and config.jobs.outbox:
            outbox = JobOutbox(
                redis_client,
                jobs_repo,
                prefix=config.redis.key_prefix,
                timeout_s=max(config.redis.timeout_s, 0.2),
                drain_interval_s=config.jobs.outbox_drain_interval_s,
                write_timeout_s=config.db.timeout_s,
                max_failures=config.jobs.outbox_max_failures,
                probe=postgres_ping,
                on_dead_letter=lambda letter: tracker.track(dead_letter_event(letter)),
            )

        service = LookupService(
            repository=PostgresSlugRepository(pool),
            cache=build_cache(config, clock),
            redis_tier=tier,
            breaker=breaker,
            retry=lookup_retry,
            metrics=build_metrics(clock),
            clock=clock,
            db_timeout_s=config.db.timeout_s,
            jobs=jobs_repo,
            outbox=outbox,
            open_breaker_redis_timeout_s=config.redis.open_breaker_timeout_s,
            job_retry=job_retry,
            listeners=listeners,
            probes=HealthProbes(
                postgres=postgres_ping,
                redis=redis_ping if redis_client is not None else None,
                error_stats=errors_repo.stats,
                timeout_s=config.db.timeout_s,
                background=supervisor.states,
                notifications=hub.stats,
            ),
        )
        holder.append(service)
        service.config = config
        booking_url = booking_api_url or config.booking.url
        if booking_url:
            bookings = BookingService.from_config(
                config.booking, url=booking_url, clock=clock, track=tracker.track
            )
            bookings.breaker.add_listener(recorder)  # circuit_breaker_events rows
            bookings.breaker.add_listener(breaker_listener(hub))  # and /ws/events
            stack.push_async_callback(bookings.aclose)
            if booking_stats_url:
                bookings.upstream.start(booking_stats_url)
            service.bookings = bookings
        service.error_tracker = tracker
        service.analytics = analytics

        alert_rows = alert_row_writer(writes)
        monitor = Monitor(
            hub,
            alerts,
            service.health,
            rows=alert_rows,
            interval_s=config.alerts.interval_s,
            health_interval_s=config.alerts.health_interval_s,
        )
        service.notifications = hub
        service.supervisor = supervisor
        service.monitor = monitor
        service.alerts = alerts

        # Background loops run supervised (a failure is reported, the loop restarts
        # after 1 s). On exit the supervisor stops them all first; then each
        # writer's aclose flushes, in reverse order: analytics first.
        background: list[tuple[str, Any]] = [
            ("error_tracker", tracker),
            ("breaker_events", recorder.writer),
            ("failure_metrics", failures.writer),
            ("alert_events", alert_rows),
        ]
        if outbox is not None:
            background.append(("outbox", outbox))
        if analytics is not None:
            background.append(("analytics", analytics))
        if config.migration.enabled:
            backfill = BackfillTask(
                writes,
                batch_size=config.migration.batch_size,
                interval_s=config.migration.interval_s,
                on_batch=alerts.record_migration,
                on_failed_job=_failed_job_reporter(tracker),
            )
            service.backfill = backfill
            background.append(("migration", backfill))
        for name, component in background:
            if name != "error_tracker":  # its own failures cannot be reported through itself
                component.on_write = _report_writes(supervisor, name)
            supervisor.run(name, component.run)
            stack.push_async_callback(component.aclose)
            if name == "alert_events":
                stack.callback(failures.roll)
        supervisor.run("monitor", monitor.run)
        stack.push_async_callback(supervisor.aclose)
        if redis_url is not None and config.redis.enabled and config.stats.shared:
            service.shared_stats = await _share_stats(stack, service, config, redis_url)
        yield service


def _failed_job_reporter(tracker: ErrorTracker) -> Any:
    """The backfill's ``on_failed_job``: an error event carrying the job's id."""

    def report(job_id: int, micro_id: str, message: str) -> None:
        tracker.track(
            ErrorEvent(
                severity="error",
                component="migration",
                error_type="MigrationFailed",
                message=f"job {job_id} ({micro_id!r}) could not be migrated: {message}"[:2000],
                job_id=job_id,
                context={"micro_id": micro_id},
            )
        )

    return report


def _report_writes(supervisor: Supervisor, name: str) -> Any:
    """A writer's ``on_write`` hook: failures and recoveries of component ``name``."""

    def on_write(error: BaseException | None) -> None:
        if error is None:
            supervisor.success(name)
        else:
            supervisor.failure(name, error)

    return on_write


async def _share_stats(
    stack: contextlib.AsyncExitStack, service: LookupService, config: ServiceConfig, url: str
) -> SharedStats:
    """Publish this worker's counts to Redis (stopped first on exit, with a final snapshot)."""
    # Its own client: snapshots are larger than cache entries and the refresh
    # subscription holds a connection; every command is bounded by SharedStats.
    shared = SharedStats.from_url(
        url,
        state=service.worker_state,
        prefix=config.redis.key_prefix,
        publish_interval_s=config.stats.publish_interval_s,
        ttl_s=config.stats.ttl_s,
        refresh_timeout_s=config.stats.refresh_timeout_s,
        timeout_s=max(config.redis.timeout_s, 0.5),
        retry_interval_s=config.redis.retry_interval_s,
    )
    shared.start()
    stack.push_async_callback(shared.aclose)
    return shared


async def _keep_session(connection: Any) -> None:
    """The pool's ``reset``: nothing beyond asyncpg's own clean-up, so no round trip.

    asyncpg's default reset runs ``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` on every release, one more round trip that the
    caller awaits: behind a 300 ms latency a one-statement lookup took 600 ms.
    Skipping it is safe for this pool because only this service uses it and
    none of its statements leave session state: single autocommit statements
    (SELECT, INSERT … ON CONFLICT, UPDATE, DELETE), no SET, LISTEN, advisory
    locks, cursors or temporary tables. asyncpg still rolls back a transaction
    left open and drops listeners before calling this (no round trip unless a
    transaction is open), a cancelled query terminates its connection
    (:func:`~resilience.service.repository.on_connection`), and prepared
    statements are kept on purpose: the statement cache is what makes a
    repeated query one round trip (bind + execute) instead of two.
    """


async def _close_pool(pool: Any) -> None:
    try:
        await bounded(pool.close(), 2.0, what="closing the PostgreSQL pool")
    except (ResilienceError, OSError):
        pool.terminate()
