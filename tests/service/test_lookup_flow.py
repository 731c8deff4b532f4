"""The lookup flow against in-memory dependencies and a manual clock (no servers)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from resilience.breaker import CircuitBreaker
from resilience.cache.memory import LookupCache
from resilience.clock import ManualClock
from resilience.errors import ConnectionFailure, DatabaseError, InvalidSlug
from resilience.retry import Retry
from resilience.service import LookupService, ServiceConfig
from resilience.service.repository import InMemoryJobRepository, InMemorySlugRepository
from resilience.service.slug import is_valid_slug, validate_slug

ROOF = uuid.UUID("00000000-0000-4000-8000-000000000001")


def make_service(
    repo: InMemorySlugRepository | None = None, *, clock: ManualClock | None = None
) -> tuple[LookupService, InMemorySlugRepository, ManualClock]:
    clock = clock or ManualClock()
    repo = repo or InMemorySlugRepository({"roof-repair": ROOF})
    service = LookupService(
        repository=repo,
        cache=LookupCache(clock=clock),
        redis_tier=None,
        breaker=CircuitBreaker("test-db", failure_threshold=5, reset_timeout_s=60, clock=clock),
        retry=Retry(clock=clock),
        metrics=None,
        clock=clock,
        jobs=InMemoryJobRepository(),
    )
    return service, repo, clock


@pytest.mark.parametrize(
    "slug",
    ["", "Roof", "roof_repair", "roof--repair", "-roof", "roof-", "a" * 101, "x'; DROP", "a\x00b"],
)
def test_malformed_slugs_are_refused_with_a_reason(slug: str) -> None:
    assert not is_valid_slug(slug)
    with pytest.raises(InvalidSlug) as info:
        validate_slug(slug)
    assert "slug" in info.value.message


async def test_invalid_slug_raises_from_lookup_and_is_a_result_from_lookup_result() -> None:
    service, repo, _ = make_service()
    with pytest.raises(InvalidSlug):
        await service.lookup("Bad Slug")
    result = await service.lookup_result("Bad Slug")
    assert (result.outcome, result.path, result.reason) == ("invalid", "invalid", "invalid_slug")
    assert repo.calls == 0
    assert service.stats()["invalid"] == 2


async def test_db_hit_then_cache_hit() -> None:
    service, repo, _ = make_service()
    first = await service.lookup("roof-repair")
    second = await service.lookup("roof-repair")
    assert (first.path, first.outcome, first.uuid, first.attempts) == ("db", "success", ROOF, 1)
    assert (second.path, second.outcome, second.uuid, second.attempts) == (
        "cache",
        "success",
        ROOF,
        0,
    )
    assert repo.calls == 1


async def test_not_found_is_a_negative_cached_fallback() -> None:
    service, repo, _ = make_service()
    first = await service.lookup("unknown-service")
    second = await service.lookup("unknown-service")
    assert (first.outcome, first.reason, first.uuid) == ("fallback", "not_found", None)
    assert (second.path, second.outcome) == ("cache", "fallback")
    assert repo.calls == 1


async def test_connection_failure_is_retried_then_falls_back() -> None:
    service, repo, clock = make_service()
    repo.fail_with = ConnectionRefusedError("refused")
    result = await service.lookup("roof-repair")
    assert (result.outcome, result.path, result.reason) == ("fallback", "fallback", "connection")
    assert result.attempts == 4
    assert clock.sleeps == [0.1, 0.2, 0.4]


async def test_breaker_opens_after_five_failed_lookups_and_skips_the_database() -> None:
    service, repo, clock = make_service()
    repo.fail_with = ConnectionRefusedError("refused")
    for i in range(5):
        await service.lookup(f"svc-{i}")
    calls = repo.calls
    result = await service.lookup("roof-repair")
    assert (result.outcome, result.reason, result.attempts) == ("fallback", "circuit_open", 0)
    assert repo.calls == calls
    assert service.stats()["breaker"] == {"state": "open", "opens": 1}
    repo.fail_with = None
    clock.advance(60)
    recovered = await service.lookup("roof-repair")
    assert (recovered.outcome, recovered.path) == ("success", "db")
    assert service.stats()["breaker"]["state"] == "closed"


async def test_a_half_open_trial_is_a_single_database_attempt() -> None:
    """Half-open: a trial is one attempt (no retries), so the database sees at most
    half_open_max_calls attempts per half-open window (docs/service.md)."""
    service, repo, clock = make_service()
    repo.fail_with = ConnectionRefusedError("refused")
    for i in range(5):
        await service.lookup(f"svc-{i}")
    assert service.breaker.state == "open"
    clock.advance(60)
    sleeps, calls = len(clock.sleeps), repo.calls
    trial = await service.lookup("roof-repair")
    assert (trial.outcome, trial.reason, trial.attempts) == ("fallback", "connection", 1)
    assert repo.calls == calls + 1
    assert len(clock.sleeps) == sleeps  # no backoff: the trial was not retried
    assert service.breaker.state == "open"  # the failed trial opened it again
    repo.fail_with = None
    clock.advance(60)
    recovered = await service.lookup("roof-repair")
    assert (recovered.outcome, recovered.attempts) == ("success", 1)
    repo.fail_with = ConnectionRefusedError("refused")
    closed = await service.lookup("svc-9")
    assert closed.attempts == 4  # closed again: the full retry policy


class SlowTier:
    """A Redis tier stand-in answering ``answers`` after ``delay_s`` (real loop time)."""

    def __init__(self, answers: dict[str, uuid.UUID], delay_s: float) -> None:
        self.answers = answers
        self.delay_s = delay_s
        self.reads = 0

    async def get(self, slug: str) -> uuid.UUID | None:
        self.reads += 1
        await asyncio.sleep(self.delay_s)
        return self.answers.get(slug)

    async def set(self, slug: str, value: uuid.UUID) -> bool:
        return True

    async def set_not_found(self, slug: str) -> bool:
        return True


def _open_breaker_service(tier: SlowTier, timeout_s: float | None) -> LookupService:
    service = make_service()[0]
    service.redis_tier = tier  # type: ignore[assignment]
    service.open_breaker_redis_timeout_s = timeout_s
    service.breaker.force_open()
    return service


async def test_open_breaker_does_not_wait_for_redis_but_its_answer_fills_memory() -> None:
    tier = SlowTier({"roof-repair": ROOF}, delay_s=0.05)
    service = _open_breaker_service(tier, 0.0)
    first = await service.lookup("roof-repair")
    again = await service.lookup("roof-repair")  # the read in flight is shared
    assert (first.path, first.reason, again.reason) == ("fallback", "circuit_open", "circuit_open")
    assert first.duration_us == 0  # manual clock: nothing waited on it
    await asyncio.sleep(0)  # the read starts
    assert tier.reads == 1
    await asyncio.sleep(0.1)
    later = await service.lookup("roof-repair")
    assert (later.path, later.outcome, later.uuid) == ("cache", "success", ROOF)


async def test_open_breaker_takes_a_redis_answer_within_its_timeout() -> None:
    tier = SlowTier({"roof-repair": ROOF}, delay_s=0.001)
    service = _open_breaker_service(tier, 5.0)
    hit = await service.lookup("roof-repair")
    miss = await service.lookup("other-service")
    assert (hit.path, hit.outcome, hit.uuid) == ("redis", "success", ROOF)
    assert (miss.path, miss.reason) == ("fallback", "circuit_open")


async def test_open_breaker_redis_reads_are_capped() -> None:
    from resilience.service.lookup import MAX_OPEN_READS

    tier = SlowTier({}, delay_s=0.05)
    service = _open_breaker_service(tier, 0.0)
    results = [await service.lookup(f"svc-{i}") for i in range(MAX_OPEN_READS + 10)]
    assert {r.reason for r in results} == {"circuit_open"}
    await asyncio.sleep(0)
    assert tier.reads == MAX_OPEN_READS
    await asyncio.sleep(0.1)
    assert not service._open_reads


async def test_non_recoverable_database_error_is_an_error_outcome() -> None:
    service, repo, _ = make_service()
    repo.fail_with = DatabaseError("syntax error", sqlstate="42601")
    result = await service.lookup("roof-repair")
    assert (result.outcome, result.reason, result.attempts) == ("error", "database", 1)


async def test_slow_database_times_out_per_attempt() -> None:
    class Hanging(InMemorySlugRepository):
        async def fetch_uuid(self, slug: str) -> uuid.UUID | None:
            self.calls += 1
            await asyncio.sleep(3600)
            return None

    service, _, _ = make_service(Hanging())
    service.db_timeout_s = 0.01
    result = await service.lookup("roof-repair")
    assert (result.outcome, result.reason, result.attempts) == ("fallback", "timeout", 4)


async def test_concurrent_misses_share_one_database_load() -> None:
    class Slow(InMemorySlugRepository):
        async def fetch_uuid(self, slug: str) -> uuid.UUID | None:
            self.calls += 1
            await asyncio.sleep(0.01)
            return self.catalogue.get(slug)

    service, repo, _ = make_service(Slow({"roof-repair": ROOF}))
    results = await asyncio.gather(*(service.lookup("roof-repair") for _ in range(10)))
    assert {r.uuid for r in results} == {ROOF}
    assert repo.calls == 1


async def test_lookup_many_uses_one_query_for_all_misses() -> None:
    repo = InMemorySlugRepository({"roof-repair": ROOF, "hvac": uuid.uuid4()})
    service, _, _ = make_service(repo)
    await service.lookup("hvac")
    results = await service.lookup_many(["roof-repair", "hvac", "nope", "Bad!"])
    assert [r.path for r in results.values()] == ["db", "cache", "db", "invalid"]
    assert [r.outcome for r in results.values()] == ["success", "success", "fallback", "invalid"]
    assert repo.calls == 2


async def test_jobs_are_stored_once_per_key_and_refused_for_invalid_slugs() -> None:
    service, _, _ = make_service()
    first = await service.post_job("roof-repair", {"size": 3}, "key-1")
    again = await service.post_job("roof-repair", {"size": 3}, "key-1")
    unknown = await service.post_job("unknown-service", {}, "key-2")
    assert first.created
    assert not again.created
    assert first.id == again.id
    assert first.micro_uuid == ROOF
    assert unknown.micro_uuid is None
    assert await service.get_job(first.id) == first
    with pytest.raises(InvalidSlug):
        await service.post_job("Not A Slug", {}, "key-3")


async def test_jobs_are_retried_on_connection_failures() -> None:
    service, _, clock = make_service()
    jobs = service.jobs
    assert isinstance(jobs, InMemoryJobRepository)
    jobs.fail_with = ConnectionFailure("down")
    with pytest.raises(ConnectionFailure):
        await service.post_job("roof-repair", {}, "key-1")
    assert len(clock.sleeps) == 3


def test_config_overrides_by_dotted_name() -> None:
    config = ServiceConfig().with_overrides(
        {"breaker.failure_threshold": 3, "cache.ttl_s": "5m", "retry.max_attempts": 2}
    )
    assert (config.breaker.failure_threshold, config.cache.ttl_s) == (3, 300.0)
    assert config.retry.max_attempts == 2
    with pytest.raises(ValueError, match="unknown setting"):
        ServiceConfig().with_overrides({"nope": 1})
    with pytest.raises(ValueError, match="failure_treshold"):
        ServiceConfig().with_overrides({"breaker.failure_treshold": 1})


def test_public_names_are_stable() -> None:
    """The facade other packages (simulator, scenarios, load tests) import from."""
    import resilience.service as facade

    assert facade.__all__ == sorted(facade.__all__, key=lambda n: (not n.isupper(), n))
    assert {
        "LookupService",
        "LookupResult",
        "Job",
        "ServiceConfig",
        "SlugRepository",
        "create_app",
        "open_service",
        "validate_slug",
    } <= set(facade.__all__)
    for name in facade.__all__:
        assert getattr(facade, name) is not None
