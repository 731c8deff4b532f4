"""Each toxic's model against its Toxiproxy definition (TOXIPROXY.md §6–§7)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from resilience.sim import run_virtual
from resilience.sim.postgres import POSTGRES_ERRORS
from resilience.sim.proxy import ModelProxy
from resilience.sim.redis import REDIS_ERRORS


def _proxy(seed: int = 1) -> ModelProxy:
    return ModelProxy("postgres", errors=POSTGRES_ERRORS, rng=random.Random(seed))


def _timed(fn: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    """Run ``fn`` on a virtual loop; (result or exception, virtual seconds taken)."""

    async def main() -> tuple[Any, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            value: Any = await fn()
        except BaseException as exc:
            value = exc
        return value, loop.time() - start

    return run_virtual(main())


def _exchange(
    proxy: ModelProxy,
    req: int = 100,
    rep: int = 100,
    service: float = 0.001,
    timeout: float | None = None,
) -> tuple[Any, float]:
    async def go() -> None:
        conn = proxy.connect()
        call = proxy.exchange(conn, req, rep, service)
        if timeout is None:
            await call
        else:
            await asyncio.wait_for(call, timeout)

    return _timed(go)


def test_no_toxic_costs_the_service_time() -> None:
    value, took = _exchange(_proxy(), service=0.004)
    assert value is None
    assert took == pytest.approx(0.004)


def test_latency_downstream_adds_latency_once() -> None:
    proxy = _proxy()
    proxy.add_toxic("lat", "latency", attributes={"latency": 100})
    _, took = _exchange(proxy, service=0.001)
    assert took == pytest.approx(0.101)


def test_latency_on_both_streams_adds_twice() -> None:
    proxy = _proxy()
    proxy.add_toxic("down", "latency", attributes={"latency": 100})
    proxy.add_toxic("up", "latency", stream="upstream", attributes={"latency": 100})
    _, took = _exchange(proxy, service=0.0)
    assert took == pytest.approx(0.2)


def test_latency_jitter_stays_within_bounds() -> None:
    """Delay is uniform in [latency − jitter, latency + jitter), never negative."""
    proxy = _proxy()
    proxy.add_toxic("lat", "latency", attributes={"latency": 50, "jitter": 50})

    async def many() -> list[float]:
        loop = asyncio.get_running_loop()
        out = []
        for _ in range(300):
            conn = proxy.connect()
            start = loop.time()
            await proxy.exchange(conn, 10, 10, 0.0)
            out.append(loop.time() - start)
        return out

    took, _ = _timed(many)
    assert min(took) >= 0.0
    assert max(took) < 0.100 + 1e-9
    assert 0.035 < sum(took) / len(took) < 0.065


def test_bandwidth_times_by_payload_size() -> None:
    """rate is KB/s with KB = 1000 B: 100 000 B at 100 KB/s take 1 s."""
    proxy = _proxy()
    proxy.add_toxic("bw", "bandwidth", attributes={"rate": 100})
    _, took = _exchange(proxy, req=10, rep=100_000, service=0.0)
    assert took == pytest.approx(1.0)


def test_slicer_waits_delay_per_piece() -> None:
    """1000 bytes with average_size 10: halved into 128 pieces, delay µs after each."""
    proxy = _proxy()
    proxy.add_toxic("sl", "slicer", attributes={"average_size": 10, "delay": 1000})
    _, took = _exchange(proxy, req=1, rep=1000, service=0.0)
    assert took == pytest.approx(0.128)


def test_timeout_zero_hangs_until_the_callers_timeout() -> None:
    proxy = _proxy()
    proxy.add_toxic("to", "timeout", attributes={"timeout": 0})
    value, took = _exchange(proxy, timeout=2.0)
    assert isinstance(value, TimeoutError)
    assert took == pytest.approx(2.0)


def test_timeout_closes_the_connection_after_its_delay() -> None:
    proxy = _proxy()
    proxy.add_toxic("to", "timeout", stream="upstream", attributes={"timeout": 300})
    value, took = _exchange(proxy, timeout=5.0)
    assert type(value).__name__ == "ConnectionDoesNotExistError"
    assert took == pytest.approx(0.3)


def test_removing_a_timeout_toxic_closes_live_connections() -> None:
    proxy = _proxy()
    proxy.add_toxic("to", "timeout", attributes={"timeout": 0})

    async def go() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(1.0, proxy.remove_toxic, "to")
        await proxy.exchange(proxy.connect(), 10, 10, 0.0)

    value, took = _timed(go)
    assert type(value).__name__ == "ConnectionDoesNotExistError"
    assert took == pytest.approx(1.0)
    assert not proxy.connections


def test_reset_peer_resets_new_connections() -> None:
    """New connections get ECONNRESET ``timeout`` ms after the first (dropped) reply chunk."""
    proxy = _proxy()
    proxy.add_toxic("rp", "reset_peer", attributes={"timeout": 200})
    value, took = _exchange(proxy, service=0.001)
    assert isinstance(value, ConnectionResetError)
    assert took == pytest.approx(0.201)


def test_reset_peer_on_an_existing_connection_is_a_plain_close() -> None:
    proxy = _proxy()

    async def go() -> None:
        conn = proxy.connect()
        proxy.add_toxic("rp", "reset_peer", attributes={"timeout": 0})
        await proxy.exchange(conn, 10, 10, 0.0)

    value, _ = _timed(go)
    assert type(value).__name__ == "ConnectionDoesNotExistError"


def test_limit_data_closes_after_n_bytes() -> None:
    """Two 64-byte replies pass a 150-byte limit; the third crosses it and closes."""
    proxy = _proxy()
    proxy.add_toxic("ld", "limit_data", attributes={"bytes": 150})

    async def go() -> int:
        conn = proxy.connect()
        done = 0
        for _ in range(3):
            await proxy.exchange(conn, 10, 64, 0.0)
            done += 1
        return done

    value, _ = _timed(go)
    assert type(value).__name__ == "ConnectionDoesNotExistError"
    assert proxy.connects == 1
    assert not proxy.connections


def test_slow_close_delays_the_close() -> None:
    proxy = _proxy()
    proxy.add_toxic("to", "timeout", attributes={"timeout": 100})
    proxy.add_toxic("sc", "slow_close", stream="upstream", attributes={"delay": 500})
    proxy.add_toxic("sc2", "slow_close", attributes={"delay": 0})
    _, took_plain = _exchange(proxy, service=0.0)
    proxy2 = _proxy()
    proxy2.add_toxic("sc", "slow_close", attributes={"delay": 500})
    proxy2.add_toxic("to", "timeout", attributes={"timeout": 100})
    value, took = _exchange(proxy2, service=0.0)
    assert type(value).__name__ == "ConnectionDoesNotExistError"
    assert took_plain == pytest.approx(0.1)
    assert took == pytest.approx(0.6)


def test_slow_close_alone_leaves_data_untouched() -> None:
    proxy = _proxy()
    proxy.add_toxic("sc", "slow_close", attributes={"delay": 500})
    value, took = _exchange(proxy, service=0.002)
    assert value is None
    assert took == pytest.approx(0.002)


def test_disabled_proxy_refuses_and_closes() -> None:
    proxy = _proxy()

    async def go() -> None:
        conn = proxy.connect()
        asyncio.get_running_loop().call_later(0.5, proxy.disable)
        await proxy.exchange(conn, 10, 10, 10.0)

    value, took = _timed(go)
    assert type(value).__name__ == "ConnectionDoesNotExistError"
    assert took == pytest.approx(0.5)
    with pytest.raises(ConnectionRefusedError):
        proxy.connect()
    proxy.enable()
    proxy.connect()


def test_redis_model_raises_redis_errors() -> None:
    import redis.exceptions

    proxy = ModelProxy("redis", errors=REDIS_ERRORS, rng=random.Random(0))
    proxy.disable()
    with pytest.raises(redis.exceptions.ConnectionError, match="refused"):
        proxy.connect()


def test_toxicity_is_per_connection_not_per_request() -> None:
    """A 30 % toxic hits ~30 % of connections; every request on one connection alike."""
    proxy = _proxy(seed=7)
    proxy.add_toxic("lat", "latency", toxicity=0.3, attributes={"latency": 100})

    async def go() -> list[set[bool]]:
        loop = asyncio.get_running_loop()
        per_conn = []
        for _ in range(400):
            conn = proxy.connect()
            seen = set()
            for _ in range(5):
                start = loop.time()
                await proxy.exchange(conn, 10, 10, 0.0)
                seen.add(loop.time() - start > 0.05)
            per_conn.append(seen)
        return per_conn

    per_conn, _ = _timed(go)
    assert all(len(s) == 1 for s in per_conn)  # never mixed within a connection
    hit = sum(True in s for s in per_conn) / len(per_conn)
    assert 0.23 < hit < 0.37  # binomial(400, 0.3): ±4.5 standard deviations


@pytest.mark.parametrize(("toxicity", "expected"), [(0.0, 0.0), (1.0, 1.0)])
def test_toxicity_zero_never_one_always(toxicity: float, expected: float) -> None:
    proxy = _proxy()
    proxy.add_toxic("lat", "latency", toxicity=toxicity, attributes={"latency": 10})
    conns = [proxy.connect() for _ in range(50)]
    share = sum(c.links["downstream"].active["lat"] for c in conns) / 50
    assert share == expected


def test_update_rerolls_and_merges_attributes() -> None:
    proxy = _proxy(seed=3)
    proxy.add_toxic("lat", "latency", toxicity=0.5, attributes={"latency": 10, "jitter": 2})
    conns = [proxy.connect() for _ in range(200)]
    before = [c.links["downstream"].active["lat"] for c in conns]
    toxic = proxy.update_toxic("lat", attributes={"jitter": 7})
    after = [c.links["downstream"].active["lat"] for c in conns]
    assert toxic.attributes == {"latency": 10, "jitter": 7}
    assert before != after  # re-rolled on every live connection


def test_bad_toxic_requests_are_refused() -> None:
    proxy = _proxy()
    with pytest.raises(ValueError, match="stream"):
        proxy.add_toxic("x", "latency", stream="sideways")
    with pytest.raises(ValueError, match="invalid toxic type"):
        proxy.add_toxic("x", "explode")
    proxy.add_toxic("x", "noop")
    with pytest.raises(ValueError, match="already exists"):
        proxy.add_toxic("x", "noop")
    with pytest.raises(KeyError, match="not found"):
        proxy.remove_toxic("nope")


def test_query_replies_have_asyncpg_binary_sizes_under_a_bandwidth_toxic() -> None:
    """A found slug's reply is 52 B (16-byte binary UUID), a miss's 25 B: at 2 KB/s, 26/12.5 ms."""
    import uuid

    from resilience.sim import run_virtual
    from resilience.sim.distributions import Fixed
    from resilience.sim.postgres import ModelSlugRepository

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        proxy = _proxy()
        repository = ModelSlugRepository(
            proxy, {"roof-repair": uuid.uuid4()}, rng=random.Random(0), query_time=Fixed(0.0)
        )
        await repository.fetch_uuid("roof-repair")  # prepares the statement on the connection
        proxy.add_toxic("bw", "bandwidth", attributes={"rate": 2})
        start = loop.time()
        await repository.fetch_uuid("roof-repair")
        found = loop.time() - start
        start = loop.time()
        await repository.fetch_uuid("no-such-service")
        return found, loop.time() - start

    found, missing = run_virtual(main())
    assert found == pytest.approx(0.026)
    assert missing == pytest.approx(0.0125)


def test_a_statement_is_prepared_once_per_connection() -> None:
    """asyncpg's statement cache: the first query on a connection is two round trips."""
    import uuid

    from resilience.sim import run_virtual
    from resilience.sim.distributions import Fixed
    from resilience.sim.postgres import ModelSlugRepository

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        proxy = _proxy()
        repository = ModelSlugRepository(
            proxy, {"roof-repair": uuid.uuid4()}, rng=random.Random(0), query_time=Fixed(0.0)
        )
        proxy.add_toxic("slow", "latency", attributes={"latency": 300})
        took = []
        for _ in range(2):
            start = loop.time()
            await repository.fetch_uuid("roof-repair")
            took.append(loop.time() - start)
        return took

    first, second = run_virtual(main())
    assert first == pytest.approx(0.6, abs=1e-3)  # prepare + execute, each behind 300 ms
    assert second == pytest.approx(0.3)
