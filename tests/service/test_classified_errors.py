"""The service counts how it classified injected errors, and whether it recovered.

Real PostgreSQL and Redis behind our proxy; the errors come from the
postgres_error / redis_error toxics.
"""

from __future__ import annotations

from typing import Any

from service_support import FAST

from resilience.service.runtime import open_service


async def test_a_serialization_failure_on_a_job_write_is_counted_retryable_and_recovered(
    urls: Any, resilience_toxiproxy: Any
) -> None:
    # Attached before the service connects (at rate 0), as the scenario runner does: a
    # prefix matches only statements the toxic saw being prepared.
    resilience_toxiproxy.add_toxic(
        "postgres", "postgres_error", name="ser", stream="upstream", attributes={"rate": 0.0}
    )
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        await service.post_job("roof-repair", {"rooms": 1}, "warm-up")  # prepares the INSERT
        resilience_toxiproxy.update_toxic(
            "postgres",
            "ser",
            attributes={"sqlstate": "40001", "rate": 0.5, "prefix": "INSERT INTO jobs"},
        )
        for i in range(20):
            await service.post_job("roof-repair", {"rooms": 1}, f"key-{i}")
        resilience_toxiproxy.remove_toxic("postgres", "ser")
        row = service.stats()["classified"]["40001"]
    assert row["category"] == "SerializationFailure"
    assert row["retryable"] is True
    assert row["seen"] >= 1
    assert row["recovered"] + row["gave_up"] <= 20
    assert row["recovered"] >= 1


async def test_a_readonly_redis_write_is_counted_as_skipped_by_the_cache_tier(
    urls: Any, resilience_toxiproxy: Any
) -> None:
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        resilience_toxiproxy.add_toxic(
            "redis",
            "redis_error",
            name="ro",
            stream="upstream",
            attributes={"error": "READONLY", "commands": "SET"},
        )
        result = await service.lookup("roof-repair")  # a database answer, then a cache write
        resilience_toxiproxy.remove_toxic("redis", "ro")
        classified = service.stats().get("classified", {})
    assert result.outcome == "success"
    row = classified["ReadOnlyError"]
    assert row["recovery"] == "skipped by the cache tier"
    assert row["gave_up"] >= 1
