"""The real stack: PostgreSQL and Redis behind fault proxies, the service in process.

:func:`open_real_stack` starts (or reuses) an :class:`~resilience.backends.Environment`,
applies the schema, empties the tables and Redis, seeds the catalogue, removes
any leftover fault, and opens the service on the *proxied* URLs so that faults
reach it. :class:`EnvironmentPool` keeps one environment per distinct
``environment:`` section, so a suite starts PostgreSQL once, not per scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from resilience.clock import SYSTEM_CLOCK
from resilience.scenario.faults import ToxiproxyFaultController
from resilience.scenario.model import EnvironmentSpec, Scenario
from resilience.scenario.runner import RunAborted
from resilience.scenario.stack import StaticStack

__all__ = ["EnvironmentPool", "open_real_stack", "toxiproxy_client"]

PREPARE_TIMEOUT_S = 60.0


def toxiproxy_client(api_url: str) -> Any:
    """An async Toxiproxy API client for ``api_url``."""
    from resilience.proxy.client import AsyncToxiproxyClient

    return AsyncToxiproxyClient(api_url)


class EnvironmentPool:
    """Started environments, one per ``environment:`` section (:meth:`aclose` stops them)."""

    def __init__(self) -> None:
        self._envs: dict[str, Any] = {}

    async def get(self, spec: EnvironmentSpec) -> Any:
        key = spec.model_dump_json()
        if key not in self._envs:
            self._envs[key] = await _start_environment(spec)
        return self._envs[key]

    async def aclose(self) -> None:
        envs, self._envs = list(self._envs.values()), {}
        for env in envs:
            with contextlib.suppress(Exception):
                await env.stop_async()

    async def __aenter__(self) -> EnvironmentPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def factory(self) -> Any:
        """A ``stack_factory`` for :func:`~resilience.scenario.runner.run_scenario` on this pool."""

        def make(scenario: Scenario) -> contextlib.AbstractAsyncContextManager[StaticStack]:
            return open_real_stack(scenario, pool=self)

        return make


async def _start_environment(spec: EnvironmentSpec) -> Any:
    try:
        from resilience.backends import Environment, EnvironmentConfig
    except ImportError as exc:  # pragma: no cover - part of the package
        raise RunAborted(f"the backends package is unavailable: {exc}") from exc
    try:
        config = EnvironmentConfig.from_env()
        if spec.options:
            config = config.replace(**spec.options)
        env = Environment(spec.backend, config=config)
        await env.start_async()
    except Exception as exc:
        raise RunAborted(
            f"the {spec.backend} environment could not start: {type(exc).__name__}: {exc}"
        ) from exc
    return env


async def _prepare(urls: Any, scenario: Scenario) -> list[str]:
    """Schema, empty tables, fresh catalogue, empty Redis; returns the slugs in rank order."""
    import asyncpg
    import redis.asyncio as aioredis

    from resilience.db.catalogue import seed_catalogue_async
    from resilience.db.schema import TRUNCATE_SQL, apply_schema_async

    conn = await asyncpg.connect(urls.postgres_direct)
    try:
        await apply_schema_async(conn)
        await conn.execute(TRUNCATE_SQL)
        entries = await seed_catalogue_async(
            conn, seed=scenario.seed, size=scenario.workload.keys.catalogue_size
        )
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(urls.redis_direct)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    return [e.slug for e in entries]


@contextlib.asynccontextmanager
async def open_real_stack(
    scenario: Scenario, *, pool: EnvironmentPool | None = None
) -> AsyncIterator[StaticStack]:
    """The real stack for ``scenario``; :class:`RunAborted` when it cannot be built."""
    own = pool is None
    envs = pool or EnvironmentPool()
    try:
        env = await envs.get(scenario.environment)
        urls = env.urls
        controller = ToxiproxyFaultController(toxiproxy_client(urls.toxiproxy_api))
        try:
            await controller.clear_all()
            slugs = await asyncio.wait_for(_prepare(urls, scenario), PREPARE_TIMEOUT_S)
        except Exception as exc:
            raise RunAborted(
                f"could not prepare the environment: {type(exc).__name__}: {exc}"
            ) from exc
        from resilience.service.config import ServiceConfig
        from resilience.service.runtime import open_service

        config = ServiceConfig().with_overrides(scenario.service)
        try:
            service_cm = open_service(
                config, postgres_url=urls.postgres, redis_url=urls.redis, clock=SYSTEM_CLOCK
            )
            service = await service_cm.__aenter__()
        except Exception as exc:
            raise RunAborted(f"the service could not start: {type(exc).__name__}: {exc}") from exc
        try:
            yield StaticStack(
                target=service, faults=controller, clock=SYSTEM_CLOCK, slugs=slugs, mode="real"
            )
        finally:
            with contextlib.suppress(Exception):
                await controller.clear_all()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(service_cm.__aexit__(None, None, None), 15.0)
    finally:
        if own:
            await envs.aclose()
