"""The modelled connection pool: LIFO reuse, a size limit, broken connections replaced."""

from __future__ import annotations

import asyncio
import random

import pytest

from resilience.sim import run_virtual
from resilience.sim.distributions import Fixed
from resilience.sim.pool import Handshake, ModelPool
from resilience.sim.postgres import POSTGRES_ERRORS
from resilience.sim.proxy import ModelProxy


def _pool(size: int, handshake_s: float = 0.0) -> ModelPool:
    proxy = ModelProxy("postgres", errors=POSTGRES_ERRORS, rng=random.Random(0))
    steps = (Handshake(10, 10, Fixed(handshake_s)),) if handshake_s else ()
    return ModelPool(proxy, max_size=size, handshakes=steps, rng=random.Random(0))


def test_reuses_the_most_recently_released_connection() -> None:
    async def main() -> list[int]:
        pool = _pool(4)
        a = await pool.acquire()
        b = await pool.acquire()
        pool.release(a)
        pool.release(b)
        return [(await pool.acquire()).id, (await pool.acquire()).id]

    assert run_virtual(main()) == [2, 1]


def test_callers_beyond_the_limit_wait_in_order() -> None:
    async def main() -> tuple[list[int], int]:
        pool = _pool(2)
        order: list[int] = []

        async def user(i: int) -> None:
            conn = await pool.acquire()
            order.append(i)
            await asyncio.sleep(1.0)
            pool.release(conn)

        await asyncio.gather(*(user(i) for i in range(6)))
        return order, pool.proxy.connects

    order, connects = run_virtual(main())
    assert order == [0, 1, 2, 3, 4, 5]
    assert connects == 2


def test_broken_connection_is_replaced_by_a_new_one() -> None:
    async def main() -> tuple[int, int]:
        pool = _pool(1, handshake_s=0.01)
        conn = await pool.acquire()
        pool.release(conn, broken=True)
        fresh = await pool.acquire()
        return fresh.id, pool.size

    assert run_virtual(main()) == (2, 1)


def test_connect_pays_the_handshake_and_refusal_frees_the_slot() -> None:
    async def main() -> tuple[float, str, int]:
        loop = asyncio.get_running_loop()
        pool = _pool(1, handshake_s=0.005)
        start = loop.time()
        conn = await pool.acquire()
        took = loop.time() - start
        pool.release(conn)
        pool.proxy.disable()  # closes the idle connection too
        try:
            await pool.acquire()
        except ConnectionRefusedError as exc:
            refused = type(exc).__name__
        return took, refused, pool.size

    took, refused, size = run_virtual(main())
    assert abs(took - 0.005) < 1e-9
    assert refused == "ConnectionRefusedError"
    assert size == 0


def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def main() -> int:
        pool = _pool(1)
        held = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.1)
        waiter.cancel()
        await asyncio.sleep(0)
        pool.release(held)
        again = await asyncio.wait_for(pool.acquire(), 1.0)
        return again.id

    assert run_virtual(main()) == 1


def test_try_acquire_takes_only_an_idle_open_connection() -> None:
    async def main() -> tuple[bool, int | None, bool, int]:
        pool = _pool(2)
        none_idle = pool.try_acquire() is None
        a = await pool.acquire()
        b = await pool.acquire()
        pool.release(a)
        pool.release(b)
        pool.proxy.close(b)  # closed while idle: dropped, its slot freed
        taken = pool.try_acquire()
        return none_idle, None if taken is None else taken.id, pool.try_acquire() is None, pool.size

    assert run_virtual(main()) == (True, 1, True, 1)


def test_min_size_connections_are_open_from_the_start() -> None:
    """A warm pool (asyncpg's min_size): no handshake on the first acquires."""

    async def main() -> tuple[int, float, int, int]:
        loop = asyncio.get_running_loop()
        proxy = ModelProxy("postgres", errors=POSTGRES_ERRORS, rng=random.Random(0))
        steps = (Handshake(10, 10, Fixed(0.3)),)
        pool = ModelPool(proxy, max_size=4, min_size=2, handshakes=steps, rng=random.Random(0))
        connects_before = proxy.connects
        start = loop.time()
        held = [await pool.acquire(), await pool.acquire()]
        warm_took = loop.time() - start
        held.append(await pool.acquire())  # the third one opens on demand
        return connects_before, warm_took, proxy.connects, pool.size

    connects_before, warm_took, connects, size = run_virtual(main())
    assert connects_before == 2
    assert warm_took == 0.0
    assert (connects, size) == (3, 3)


def test_min_size_must_fit_in_the_pool() -> None:
    proxy = ModelProxy("postgres", errors=POSTGRES_ERRORS, rng=random.Random(0))
    with pytest.raises(ValueError, match="min_size"):
        ModelPool(proxy, max_size=2, min_size=3, rng=random.Random(0))
