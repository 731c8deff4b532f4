"""/stats and /metrics over several workers: snapshots shared through real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from typing import Any

import httpx

from resilience.breaker import CircuitBreaker
from resilience.cache.memory import LookupCache
from resilience.metrics import MetricsRecorder
from resilience.retry import Retry
from resilience.service import LookupService, create_app
from resilience.service.repository import InMemoryJobRepository, InMemorySlugRepository
from resilience.service.shared_stats import SharedStats
from resilience.service.stats import ServiceStats, merge_states, percentiles_us, stats_from_state

ROOF = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _service() -> LookupService:
    return LookupService(
        repository=InMemorySlugRepository({"roof-repair": ROOF}),
        cache=LookupCache(),
        redis_tier=None,
        breaker=CircuitBreaker("shared-stats-test"),
        retry=Retry(),
        jobs=InMemoryJobRepository(),
    )


@contextlib.asynccontextmanager
async def _worker(
    url: str, prefix: str, name: str, **options: Any
) -> AsyncIterator[tuple[LookupService, SharedStats]]:
    """One service instance publishing under ``prefix`` (as ``open_service`` wires it)."""
    service = _service()
    shared = SharedStats.from_url(
        url, state=service.worker_state, prefix=prefix, worker_id=name, **options
    )
    service.shared_stats = shared
    shared.start()
    try:
        yield service, shared
    finally:
        await shared.aclose()


async def _stats(service: LookupService) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        response = await client.get("/stats")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def _lookups(service: LookupService, hits: int, unknown: int = 0) -> None:
    for _ in range(hits):
        await service.lookup("roof-repair")
    for i in range(unknown):
        await service.lookup(f"unknown-{i}")


def test_window_state_gives_the_same_figures_as_the_window() -> None:
    """state() → stats_from_state equals to_dict, also after the window dropped old values."""
    stats = ServiceStats(window=5)
    for value in (5, 1, 9, 3):
        stats.latency_us["db"].append(value)
        stats.paths["db"] += 1
    first = stats.state()
    for value in (7, 2, 8, 8):  # three old values leave the window
        stats.latency_us["db"].append(value)
        stats.paths["db"] += 1
    state = stats.state()
    assert first["latency_us"]["db"] == {"1": 1, "3": 1, "5": 1, "9": 1}
    assert Counter({int(v): n for v, n in state["latency_us"]["db"].items()}) == Counter(
        stats.latency_us["db"]
    )
    assert stats_from_state(state)["latency_us"] == stats.to_dict()["latency_us"]
    assert stats_from_state(merge_states([state, state]))["latency_us"]["db"] == percentiles_us(
        deque([*stats.latency_us["db"], *stats.latency_us["db"]])
    )


def test_recorder_state_merges_exactly() -> None:
    """Two recorders' states merged give the snapshot of one recorder that saw everything."""
    a, b, both, merged = (MetricsRecorder() for _ in range(4))
    for recorder, value in ((a, 10), (b, 20), (b, 30)):
        recorder.record(outcome="success", path="cache", duration_us=value)
        both.record(outcome="success", path="cache", duration_us=value)
    merged.merge_state(a.state())
    merged.merge_state(b.state())
    assert merged.snapshot()["operations"] == both.snapshot()["operations"]


async def test_two_workers_stats_show_the_sum(resilience_env: Any, resilience_clean: None) -> None:
    """Either worker's /stats and /metrics count both workers' lookups (scope: service)."""
    url, prefix = resilience_env.urls.redis, f"t{uuid.uuid4().hex[:6]}"
    # A long publish interval: the newest lookups are seen through the refresh request.
    async with (
        _worker(url, prefix, "a", publish_interval_s=30.0) as (a, _),
        _worker(url, prefix, "b", publish_interval_s=30.0) as (b, _),
    ):
        await asyncio.sleep(0.1)  # both subscribed to refresh requests
        await _lookups(a, 3)
        await _lookups(b, 4, unknown=2)
        from_a, from_b = await _stats(a), await _stats(b)
        metrics = await a.service_metrics_text()
    for stats in (from_a, from_b):
        assert stats["scope"] == "service"
        assert stats["workers"] == 2
        assert stats["stale_workers"] == 0
        assert stats["lookups"] == 9
        assert stats["reasons"] == {"not_found": 2}
        assert stats["latency_us"]["cache"]["count"] == 5  # first lookup per worker hit the db
    assert 'resilience_operations_total{operation="lookup",outcome="success"} 7' in metrics


async def test_stopped_worker_is_dropped_after_its_ttl(
    resilience_env: Any, resilience_clean: None
) -> None:
    """A stopped worker's final snapshot counts until its key expires, then it is gone."""
    url, prefix = resilience_env.urls.redis, f"t{uuid.uuid4().hex[:6]}"
    async with _worker(url, prefix, "a", ttl_s=0.5, publish_interval_s=0.1) as (a, _):
        async with _worker(url, prefix, "b", ttl_s=0.5, publish_interval_s=0.1) as (b, _):
            await _lookups(b, 4)
        await _lookups(a, 1)
        right_after = await _stats(a)
        await asyncio.sleep(0.7)
        later = await _stats(a)
    assert (right_after["workers"], right_after["lookups"]) == (2, 5)
    assert (later["scope"], later["workers"], later["lookups"]) == ("service", 1, 1)


async def test_redis_down_gives_local_stats(resilience_env: Any, redis_proxy: Any) -> None:
    """Redis unreachable: /stats answers 200 with this worker's own counts (scope: worker)."""
    url, prefix = resilience_env.urls.redis, f"t{uuid.uuid4().hex[:6]}"
    async with _worker(url, prefix, "a", timeout_s=0.2) as (a, shared):
        await _lookups(a, 2)
        redis_proxy.disable()
        try:
            stats = await _stats(a)
            failures = shared.failures
            metrics = await a.service_metrics_text()  # within retry_interval_s: no round trip
        finally:
            redis_proxy.enable()
    assert (stats["scope"], stats["workers"], stats["lookups"]) == ("worker", 1, 2)
    assert stats["shared_error"]
    assert 'outcome="success"} 2' in metrics
    assert failures >= 1


async def test_service_without_shared_stats_is_worker_scoped() -> None:
    """No Redis configured: /stats is the instance's own, labelled scope: worker."""
    service = _service()
    await _lookups(service, 2)
    stats = await _stats(service)
    assert (stats["scope"], stats["workers"], stats["lookups"]) == ("worker", 1, 2)


class _SwallowingClient:
    """A Redis client whose refresh subscription swallows one cancellation, then waits forever
    (what Python 3.11's ``wait_for`` race and redis-py's shielded ``PubSub.aclose`` did)."""

    def __init__(self) -> None:
        self.swallowed = 0

    def pipeline(self, transaction: bool = True) -> Any:
        class Pipe:
            def __getattr__(self, name: str) -> Any:
                return lambda *a, **k: None

            async def execute(self) -> list[Any]:
                return []

        return Pipe()

    def pubsub(self, ignore_subscribe_messages: bool = True) -> Any:
        client = self

        class PubSub:
            async def subscribe(self, channel: str) -> None:
                return None

            async def get_message(self, timeout: float) -> Any:  # noqa: ASYNC109 (redis-py's)
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    client.swallowed += 1
                await asyncio.get_running_loop().create_future()  # nobody resolves it

            async def aclose(self) -> None:
                return None

        return PubSub()


async def test_aclose_ends_a_publisher_that_swallowed_a_cancellation() -> None:
    """The publishing task is cancelled until it ends, so the event loop can shut down."""
    client = _SwallowingClient()
    shared = SharedStats(client, state=dict, timeout_s=0.2, publish_interval_s=60.0)
    shared.start()
    await asyncio.sleep(0.05)  # subscribed, waiting in get_message
    task = shared._task
    await shared.aclose()
    assert client.swallowed == 1
    assert task is not None
    assert task.done()
