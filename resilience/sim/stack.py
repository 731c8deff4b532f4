"""The modelled stack: the real service over modelled PostgreSQL and Redis.

:func:`build_sim_stack` wires the very classes the real stack uses —
:class:`~resilience.service.lookup.LookupService`, the in-memory cache, the
:class:`~resilience.cache.redis_tier.RedisTier`, the circuit breaker and the
retries, built by :mod:`resilience.service.runtime` from the same
:class:`~resilience.service.config.ServiceConfig` — on a
:class:`~resilience.sim.clock.LoopClock`, against
:class:`~resilience.sim.postgres.ModelSlugRepository`,
:class:`~resilience.sim.jobs.ModelJobRepository` and
:class:`~resilience.sim.redis.ModelRedisClient` behind two
:class:`~resilience.sim.proxy.ModelProxy` objects driven by a
:class:`~resilience.sim.faults.ModelFaultController`.

Every random stream is seeded from ``seed`` and the stream's name, so the
same seed gives the same run. The service's analytics batch writer runs too
(:mod:`resilience.sim.analytics`): it shares the lookups' pool, so it decides
which connections they get. Not modelled: the rarer background writers
(error events, breaker events, failure metrics) and the breaker's Redis
store (one simulated process shares nothing).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from resilience.sim.clock import LoopClock
from resilience.sim.distributions import Distribution, LogNormal
from resilience.sim.faults import ModelFaultController
from resilience.sim.jobs import DEFAULT_INSERT_TIME, ModelJobRepository
from resilience.sim.postgres import (
    DEFAULT_CONNECT_TIME,
    DEFAULT_QUERY_TIME,
    POSTGRES_ERRORS,
    ModelSlugRepository,
)
from resilience.sim.proxy import ModelProxy
from resilience.sim.redis import DEFAULT_COMMAND_TIME, REDIS_ERRORS, ModelRedisClient

__all__ = ["ModelSettings", "SimStack", "build_sim_stack"]


DEFAULT_BOOKING_API_TIME: Distribution = LogNormal(median_s=0.005, p99_s=0.03)
"""A booking API exchange on loopback through the proxy (measured: p50 4–9 ms, p99 ≈ 30 ms
besides the odd stall, on two busy cores); ``calibrate`` fits it from a real run."""


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """The dependency models' parameters (defaults: loopback PostgreSQL and Redis).

    ``clock_read_cost_s`` is the CPU time charged per clock read, so in-process
    paths (cache hits, breaker-open fallbacks) take microseconds, not zero.
    """

    db_query: Distribution = DEFAULT_QUERY_TIME
    db_connect: Distribution = DEFAULT_CONNECT_TIME
    db_insert: Distribution = DEFAULT_INSERT_TIME
    redis_command: Distribution = DEFAULT_COMMAND_TIME
    redis_pool_size: int = 50
    clock_read_cost_s: float = 2e-6
    clock_read_cost: Distribution | None = None
    """When set, each clock read costs a draw from it (replaces ``clock_read_cost_s``)."""
    booking_api: Distribution = DEFAULT_BOOKING_API_TIME
    """One exchange with the booking API through its proxy (client, proxy, stub, back)."""
    db_reset_on_release: bool = False
    """asyncpg's default pool reset round trip (the service's pool skips it)."""
    wall_start_s: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z: records stay deterministic
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> ModelSettings:
        return replace(self, **changes)


@dataclass
class SimStack:
    """A :class:`~resilience.scenario.stack.Stack` made of models (``mode="simulated"``)."""

    target: Any
    faults: ModelFaultController
    clock: LoopClock
    slugs: Sequence[str]
    proxies: dict[str, ModelProxy]
    repository: ModelSlugRepository
    redis: ModelRedisClient | None
    jobs: ModelJobRepository
    config: Any
    mode: str = "simulated"


def _rng(seed: int, stream: str) -> random.Random:
    return random.Random(f"sim:{seed}:{stream}")


def build_sim_stack(
    *,
    config: Any,
    catalogue: Mapping[str, uuid.UUID],
    slugs: Sequence[str] | None = None,
    seed: int = 0,
    models: ModelSettings | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> SimStack:
    """Wire a :class:`SimStack` (call inside the virtual loop, or pass ``loop``).

    ``config`` is a :class:`~resilience.service.config.ServiceConfig`;
    ``catalogue`` maps known slugs to UUIDs, ``slugs`` gives them in rank
    order (default: the catalogue's order).
    """
    from resilience.cache.redis_tier import RedisTier
    from resilience.service.analytics import AnalyticsBatcher
    from resilience.service.lookup import LookupService
    from resilience.service.runtime import (
        analytics_listener,
        build_breaker,
        build_cache,
        build_metrics,
        build_retries,
    )
    from resilience.sim.analytics import ModelAnalyticsTable
    from resilience.sim.stats import CountedServiceStats

    models = models or ModelSettings()
    loop = loop or asyncio.get_running_loop()
    costs: tuple[float, ...] = ()
    if models.clock_read_cost is not None:
        cost_rng = _rng(seed, "clock")
        costs = tuple(models.clock_read_cost.sample(cost_rng) for _ in range(4096))
    clock = LoopClock(
        loop,
        wall_start_s=models.wall_start_s,
        read_cost_s=models.clock_read_cost_s,
        read_costs_s=costs,
    )
    pg_proxy = ModelProxy(
        "postgres", errors=POSTGRES_ERRORS, rng=_rng(seed, "proxy:postgres"), loop=loop
    )
    redis_proxy = ModelProxy("redis", errors=REDIS_ERRORS, rng=_rng(seed, "proxy:redis"), loop=loop)
    repository = ModelSlugRepository(
        pg_proxy,
        catalogue,
        rng=_rng(seed, "postgres"),
        pool_size=config.db.pool_max_size,
        # The service warms one connection even with a lazy pool (runtime.open_service).
        pool_min_size=min(max(config.db.pool_min_size, 1), config.db.pool_max_size),
        query_time=models.db_query,
        connect_time=models.db_connect,
        reset_on_release=models.db_reset_on_release,
    )
    jobs = ModelJobRepository(
        pg_proxy, repository.pool, rng=_rng(seed, "jobs"), insert_time=models.db_insert
    )
    redis_client: ModelRedisClient | None = None
    tier: Any = None
    if config.redis.enabled:
        redis_client = ModelRedisClient(
            redis_proxy,
            rng=_rng(seed, "redis"),
            pool_size=models.redis_pool_size,
            command_time=models.redis_command,
            loop=loop,
        )
        tier = RedisTier(
            redis_client,
            prefix=config.redis.key_prefix,
            ttl_s=config.redis.ttl_s,
            negative_ttl_s=config.redis.negative_ttl_s,
            timeout_s=config.redis.timeout_s,
            retry_interval_s=config.redis.retry_interval_s,
            clock=clock,
        )
    outbox: Any = None
    if redis_client is not None and getattr(config.jobs, "outbox", False):
        from resilience.service.outbox import JobOutbox

        outbox = JobOutbox(
            redis_client,
            jobs,
            prefix=config.redis.key_prefix,
            timeout_s=max(config.redis.timeout_s, 0.2),
            drain_interval_s=config.jobs.outbox_drain_interval_s,
            write_timeout_s=config.db.timeout_s,
        )
    extra: dict[str, Any] = {}
    if outbox is not None:
        extra["outbox"] = outbox
    if hasattr(config.redis, "open_breaker_timeout_s"):
        extra["open_breaker_redis_timeout_s"] = config.redis.open_breaker_timeout_s
    analytics: AnalyticsBatcher | None = None
    if config.analytics.enabled:
        table = ModelAnalyticsTable(
            pg_proxy,
            repository.pool,
            rng=_rng(seed, "analytics"),
            insert_time=models.db_insert,
            timeout_s=config.db.timeout_s * 5,  # the real writers' BoundedPool
        )
        analytics = AnalyticsBatcher(
            table.write,
            batch_size=config.analytics.batch_size,
            max_buffer=config.analytics.max_buffer,
            flush_interval_s=config.analytics.flush_interval_s,
        )
        extra["listeners"] = [analytics_listener(analytics, clock)]
    lookup_retry, job_retry = build_retries(config, clock)
    service = LookupService(
        repository=repository,
        cache=build_cache(config, clock),
        redis_tier=tier,
        breaker=build_breaker(config, clock),
        retry=lookup_retry,
        metrics=build_metrics(clock),
        clock=clock,
        db_timeout_s=config.db.timeout_s,
        jobs=jobs,
        job_retry=job_retry,
        **extra,
    )
    if outbox is not None:
        outbox.start()  # the drainer runs on virtual time like the real one
    service.analytics = analytics
    if analytics is not None:
        analytics.start()  # the batch writer too: it shares the lookups' pool
    service.counters = CountedServiceStats()  # same figures, cheap to sample every 0.5 s
    proxies = {"postgres": pg_proxy, "redis": redis_proxy}
    # the booking API's proxy takes faults but is not a TCP-level ModelProxy
    booking_proxy = _booking_api(service, config, clock, seed, models)
    faulted: dict[str, Any] = {**proxies, "booking-api": booking_proxy}
    return SimStack(
        target=service,
        faults=ModelFaultController(faulted),
        clock=clock,
        slugs=list(slugs if slugs is not None else catalogue),
        proxies=proxies,
        repository=repository,
        redis=redis_client,
        jobs=jobs,
        config=config,
    )


def _booking_api(service: Any, config: Any, clock: Any, seed: int, models: ModelSettings) -> Any:
    """The modelled booking API behind proxy ``booking-api``, as ``service.bookings``."""
    from resilience.service.booking import BookingService
    from resilience.service.booking.client import BookingApiClient
    from resilience.service.booking.service import build_booking_breaker, build_booking_retry
    from resilience.sim.booking import ModelBookingApi, ModelHttpProxy

    proxy = ModelHttpProxy("booking-api", _rng(seed, "proxy:booking-api"))
    api = ModelBookingApi(
        proxy,
        seed=seed,
        wall=clock.wall,
        service_time=models.booking_api,
        rng=_rng(seed, "booking-api"),
    )
    client = BookingApiClient(
        "http://booking-api.sim", attempt_timeout_s=config.booking.attempt_timeout_s, transport=api
    )
    bookings = BookingService(
        client,
        retry=build_booking_retry(config.booking, clock),
        breaker=build_booking_breaker(config.booking, clock),
        clock=clock,
    )
    bookings.upstream.follow(api.snapshot)
    service.bookings = bookings
    return proxy
