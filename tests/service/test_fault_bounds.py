"""What a fault may cost a lookup, measured on the real stack through the proxies.

- Behind a latency toxic of L ms a database lookup (and a job write) is one
  round trip: it takes L, not 2 L (no connection reset on release, cached
  statements).
- A hung PostgreSQL (``timeout`` toxic) costs at most ``db.timeout_s`` per
  attempt plus the backoff, on every path: a pooled connection whose query
  hangs, a new connection whose setup hangs, a pool whose slots are all taken,
  job writes, the background writers and the health probe.
- With the breaker open, a fallback does not wait for Redis; the Redis read
  goes on and fills the memory tier (see also test_lookup_flow.py).

Timing assertions compare against the fault's own scale with wide margins
(one round trip against two; the bound against a hang that lasts until the
toxic is removed), so a loaded machine does not make them flaky.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from service_support import FAST

from resilience.cache import MISSING
from resilience.service.runtime import open_service

LATENCY_MS = 250


def _no_background_writes(**overrides: Any) -> Any:
    """FAST without the analytics writer, so only the test's queries use the pool."""
    return FAST.with_overrides({"analytics.enabled": False, **overrides})


def _attempts_bound_s(config: Any) -> float:
    """db.timeout_s per attempt plus every backoff delay of one lookup."""
    retry = config.retry
    delays = sum(
        min(retry.initial_delay_s * retry.multiplier**i, retry.max_delay_s)
        for i in range(retry.max_attempts - 1)
    )
    return config.db.timeout_s * retry.max_attempts + delays


async def test_db_lookup_and_job_write_are_one_round_trip_behind_latency(
    urls: Any, known: dict[str, uuid.UUID], postgres_proxy: Any
) -> None:
    """Latency L on every reply: a database lookup takes about L (two round trips: 2 L)."""
    config = _no_background_writes(**{"db.pool_max_size": 1, "db.timeout_s": 5.0})
    slugs = list(known)[:6]
    latency_s = LATENCY_MS / 1000
    async with open_service(config, postgres_url=urls.postgres, redis_url=None) as service:
        # One connection, its statements prepared (steady state), before the toxic.
        await service.lookup(slugs[0])
        await service.post_job(slugs[0], {"rooms": 1}, "warm-up")
        service.cache.clear()
        postgres_proxy.add_toxic(
            name="slow", type="latency", stream="downstream", attributes={"latency": LATENCY_MS}
        )
        lookups = [await service.lookup(slug) for slug in slugs[1:]]
        started = time.perf_counter()
        job = await service.post_job(slugs[1], {"rooms": 2}, "one-round-trip")  # slug cached
        job_s = time.perf_counter() - started
        postgres_proxy.destroy_toxic("slow")
    assert [(r.path, r.outcome, r.attempts) for r in lookups] == [("db", "success", 1)] * 5
    assert job.created
    assert job.micro_uuid == known[slugs[1]]
    for result in lookups:
        assert latency_s <= result.duration_us / 1e6 < 1.6 * latency_s, result
    assert latency_s <= job_s < 1.6 * latency_s


async def test_hung_connection_setup_is_cut_off_by_the_attempt_timeout(
    urls: Any, known: dict[str, uuid.UUID], postgres_proxy: Any
) -> None:
    """No pooled connection and PostgreSQL hangs: connecting counts against the attempt."""
    config = _no_background_writes(
        **{"db.timeout_s": 0.2, "retry.max_attempts": 2, "breaker.failure_threshold": 100}
    )
    slugs = list(known)
    postgres_proxy.add_toxic(
        name="hang", type="timeout", stream="downstream", attributes={"timeout": 0}
    )
    async with open_service(config, postgres_url=urls.postgres, redis_url=None) as service:
        started = time.perf_counter()
        results = await asyncio.gather(*(service.lookup(s) for s in slugs[:8]))
        elapsed = time.perf_counter() - started
        postgres_proxy.destroy_toxic("hang")
        recovered = await _first_success(service, slugs[8:])
    assert {(r.outcome, r.reason, r.attempts) for r in results} == {("fallback", "timeout", 2)}
    assert elapsed < _attempts_bound_s(config) + 0.5
    assert recovered.path == "db"


async def test_hang_under_load_bounds_lookups_jobs_writers_and_health(
    urls: Any, known: dict[str, uuid.UUID], postgres_proxy: Any
) -> None:
    """Queries hang mid-flight on a small pool: every caller returns within its bound."""
    config = FAST.with_overrides(
        {
            "db.timeout_s": 0.2,
            "db.pool_max_size": 3,
            "retry.max_attempts": 2,
            "jobs.max_attempts": 2,
            "breaker.failure_threshold": 100,
            "analytics.flush_interval_s": 60,
        }
    )
    slugs = list(known)
    async with open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        await asyncio.gather(*(service.lookup(s) for s in slugs[:3]))  # three pooled connections
        postgres_proxy.add_toxic(
            name="hang", type="timeout", stream="downstream", attributes={"timeout": 0}
        )
        lookup_bound = _attempts_bound_s(config)
        job_bound = lookup_bound + config.db.timeout_s * 2 + config.jobs.initial_delay_s

        async def timed(coro: Any) -> tuple[Any, float]:
            started = time.perf_counter()
            value = await coro
            return value, time.perf_counter() - started

        fresh = slugs[20:32]  # never looked up: in neither cache tier
        lookups, jobs, health, flushed = await asyncio.wait_for(
            asyncio.gather(
                asyncio.gather(*(timed(service.lookup(s)) for s in fresh)),
                asyncio.gather(
                    *(
                        timed(service.post_job(s, {"n": i}, f"hang-{i}"))
                        for i, s in enumerate(fresh[:3])
                    )
                ),
                timed(service.health()),
                timed(service.analytics.flush()),
            ),
            20.0,
        )
        postgres_proxy.destroy_toxic("hang")
    assert {(r.outcome, r.reason) for r, _ in lookups} == {("fallback", "timeout")}
    assert max(t for _, t in lookups) < lookup_bound + 0.5
    assert {j.status for j, _ in jobs} == {"queued"}  # the Redis outbox took them
    assert max(t for _, t in jobs) < lookup_bound + job_bound + 0.5
    status, health_s = health
    assert status["components"]["postgres"]["status"] == "down"
    assert health_s < config.db.timeout_s + 0.5
    written, flush_s = flushed
    assert written == 0
    assert flush_s < config.db.timeout_s * 5 + 0.5


async def test_open_breaker_falls_back_at_once_and_redis_fills_the_memory_tier(
    urls: Any, known: dict[str, uuid.UUID], postgres_proxy: Any
) -> None:
    """Breaker open: no wait for Redis; its answer arrives later and the next lookup uses it."""
    config = FAST.with_overrides({"retry.max_attempts": 1, "breaker.failure_threshold": 2})
    slugs = list(known)[:3]
    async with open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as writer:
        for slug in slugs:
            await writer.lookup(slug)  # now in Redis
    async with open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        postgres_proxy.disable()
        for i in range(2):
            await service.lookup(f"missing-{i}")
        assert service.breaker.state == "open"
        durations_us = []
        for i in range(300):
            fallback = await service.lookup(f"not-in-redis-{i % 30}")
            assert (fallback.path, fallback.reason) == ("fallback", "circuit_open")
            durations_us.append(fallback.duration_us)
        first = await service.lookup(slugs[0])
        for _ in range(100):  # the Redis read started by the fallback answers
            if service.cache.peek(slugs[0]) is not MISSING:
                break
            await asyncio.sleep(0.01)
        second = await service.lookup(slugs[0])
        postgres_proxy.enable()
    assert (first.path, first.reason) == ("fallback", "circuit_open")
    assert (second.path, second.outcome, second.uuid) == ("cache", "success", known[slugs[0]])
    durations_us.sort()
    assert durations_us[len(durations_us) // 2] < 1000  # TARGETS: immediate fallback, < 1 ms


async def _first_success(service: Any, slugs: list[str], *, limit_s: float = 10.0) -> Any:
    """Look slugs up until one succeeds (PostgreSQL recovering); bounded."""
    deadline = time.monotonic() + limit_s
    for slug in slugs * 10:
        result = await service.lookup(slug)
        if result.outcome == "success":
            return result
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    raise AssertionError("no lookup succeeded after the hang ended")


async def test_a_hang_never_holds_a_lookup_past_the_retry_deadline(
    urls: Any, known: dict[str, uuid.UUID], postgres_proxy: Any
) -> None:
    """Each attempt is capped by what is left of ``retry.deadline_s`` (issue 15, defect 5).

    0.9 s per attempt and a 1 s deadline: uncapped, the second attempt (after the
    0.1 s backoff) would run to 1.9 s; capped, the lookup gives up at 1 s.
    """
    config = _no_background_writes(
        **{"db.timeout_s": 0.9, "retry.deadline_s": 1.0, "breaker.failure_threshold": 100}
    )
    slugs = list(known)
    async with open_service(config, postgres_url=urls.postgres, redis_url=None) as service:
        await asyncio.gather(*(service.lookup(s) for s in slugs[:2]))  # pooled connections
        postgres_proxy.add_toxic(
            name="hang", type="timeout", stream="downstream", attributes={"timeout": 0}
        )
        started = time.perf_counter()
        results = await asyncio.gather(*(service.lookup(s) for s in slugs[10:16]))
        elapsed = time.perf_counter() - started
        postgres_proxy.destroy_toxic("hang")
    assert {(r.outcome, r.reason) for r in results} == {("fallback", "timeout")}
    assert max(r.attempts for r in results) == 2  # the second attempt ran, cut short
    uncapped_s = 0.9 + 0.1 + 0.9
    assert elapsed < 1.0 + 0.45 < uncapped_s  # the deadline plus scheduling slack
