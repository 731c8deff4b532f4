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
from dataclasses import dataclass
from typing import Any

from resilience.clock import SYSTEM_CLOCK
from resilience.scenario.faults import (
    FaultControlError,
    FaultController,
    ToxiproxyFaultController,
)
from resilience.scenario.model import EnvironmentSpec, Scenario
from resilience.scenario.process_faults import ProcessFaultController, has_process_faults
from resilience.scenario.result import RunSkipped
from resilience.scenario.runner import RunAborted
from resilience.scenario.stack import StaticStack

__all__ = [
    "Controls",
    "EnvironmentPool",
    "RealMigration",
    "open_controls",
    "open_real_stack",
    "toxiproxy_client",
]

PREPARE_TIMEOUT_S = 60.0


def toxiproxy_client(api_url: str) -> Any:
    """The package's async Toxiproxy API client for ``api_url``."""
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


def _backend_of(spec: EnvironmentSpec, configured: str) -> str:
    """The scenario's backend (file or ``--backend``), else ``RESILIENCE_BACKEND``, else local.

    ``configured`` is the configuration's backend; its default ``auto`` keeps
    the main job on the local backend.
    """
    if "backend" in spec.model_fields_set or configured == "auto":
        return spec.backend
    return configured


async def _start_environment(spec: EnvironmentSpec) -> Any:
    try:
        from resilience.backends import Environment, EnvironmentConfig
    except ImportError as exc:  # pragma: no cover - part of the package
        raise RunAborted(f"the backends package is unavailable: {exc}") from exc
    backend: str = spec.backend
    try:
        config = EnvironmentConfig.from_env()
        if spec.options:
            config = config.replace(**spec.options)
        backend = _backend_of(spec, config.backend)
        env = Environment(backend, config=config)
        await env.start_async()
    except Exception as exc:
        raise RunAborted(
            f"the {backend} environment could not start: {type(exc).__name__}: {exc}"
        ) from exc
    return env


class RealMigration:
    """The backfill on the real database: runs through the *proxied* URL, so faults hit it."""

    def __init__(self, urls: Any, entries: list[Any], *, run_timeout_s: float = 120.0) -> None:
        self._urls = urls
        self._entries = entries
        self._run_timeout_s = run_timeout_s

    async def prepare(self, *, jobs: int, unknown_share: float, seed: int) -> None:
        from resilience.db.catalogue import generate_jobs, insert_jobs

        historical = generate_jobs(
            self._entries, count=jobs, unknown_share=unknown_share, seed=seed
        )
        await asyncio.to_thread(insert_jobs, self._urls.postgres_direct, historical)

    async def run(self, *, batch_size: int) -> dict[str, Any]:
        import dataclasses

        from resilience.db.migration import run_migration

        dsn = _with_connect_timeout(self._urls.postgres)
        stats = await asyncio.wait_for(
            asyncio.to_thread(run_migration, dsn, batch_size=batch_size), self._run_timeout_s
        )
        return dataclasses.asdict(stats.run)

    async def stats(self) -> dict[str, Any]:
        import dataclasses

        from resilience.db.migration import migration_stats

        stats = await asyncio.to_thread(migration_stats, self._urls.postgres_direct)
        data = dataclasses.asdict(stats)
        data.pop("run", None)
        return data


def _with_connect_timeout(dsn: str, seconds: int = 5) -> str:
    joiner = "&" if "?" in dsn else "?"
    return f"{dsn}{joiner}connect_timeout={seconds}"


def _require_booking_api(urls: Any, scenario: Scenario) -> None:
    """A scenario that books or faults ``booking-api`` needs the environment's stub:
    SKIPPED (as process faults on ``external`` are) where the environment has none."""
    from resilience.scenario.model import needs_booking_api

    if needs_booking_api(scenario) and not getattr(urls, "booking_api", ""):
        raise RunSkipped(
            "this scenario needs the booking API stub (proxy 'booking-api'), which the "
            f"{scenario.environment.backend} environment does not provide (external: set "
            "RESILIENCE_BOOKING_API_URL and RESILIENCE_BOOKING_API_DIRECT_URL)"
        )


async def _prepare(urls: Any, scenario: Scenario) -> list[Any]:
    """Schema, empty tables, fresh catalogue, empty Redis; returns the entries in rank order."""
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
    if getattr(urls, "booking_api_direct", ""):
        import httpx

        async with httpx.AsyncClient(timeout=5.0) as http:  # the stub's counts start at 0
            (await http.post(f"{urls.booking_api_direct}/_stats/reset")).raise_for_status()
    return list(entries)


@dataclass(frozen=True)
class Controls:
    """What every real stack controls faults with (:func:`open_controls`)."""

    env: Any
    """The started environment (``urls``, ``server_control()``)."""
    client: Any
    """The Toxiproxy API client."""
    toxiproxy: ToxiproxyFaultController
    faults: FaultController
    """The run's controller: the Toxiproxy one, wrapped in a
    :class:`ProcessFaultController` when the timeline has process actions."""


async def open_controls(
    scenario: Scenario, pool: EnvironmentPool | None, exits: contextlib.AsyncExitStack
) -> Controls:
    """The environment, the Toxiproxy client and the fault controller of ``scenario``.

    The one set-up of every target kind (the reference service in process,
    an HTTP service): toxics this Toxiproxy API does not have (our protocol
    extensions on the real ``toxiproxy-server``) are refused here, and
    process actions (``pause``/``kill``/``restart`` of a dependency) get the
    environment's server control. Whatever it opens is closed by ``exits``
    (the environment too, when no ``pool`` owns it). :class:`RunAborted`
    when any of it cannot be had.
    """
    envs = pool
    if envs is None:
        envs = EnvironmentPool()
        exits.push_async_callback(envs.aclose)
    env = await envs.get(scenario.environment)
    client = toxiproxy_client(env.urls.toxiproxy_api)
    exits.push_async_callback(_quietly, client.aclose())
    toxiproxy = ToxiproxyFaultController(client)
    try:
        await toxiproxy.check_supported(scenario.faults)
    except FaultControlError as exc:
        raise RunAborted(str(exc)) from exc
    controller: FaultController = toxiproxy
    if has_process_faults(list(scenario.faults)):
        from resilience.backends.server_control import ServerControlUnavailable

        try:
            controller = ProcessFaultController(env.server_control(), toxiproxy)
        except ServerControlUnavailable as exc:  # external: not our servers; says why
            raise RunSkipped(f"process faults: {exc}") from exc
        except Exception as exc:
            raise RunAborted(f"process faults: {exc}") from exc
    return Controls(env=env, client=client, toxiproxy=toxiproxy, faults=controller)


@contextlib.asynccontextmanager
async def open_real_stack(
    scenario: Scenario, *, pool: EnvironmentPool | None = None
) -> AsyncIterator[StaticStack]:
    """The real stack for ``scenario``; :class:`RunAborted` when it cannot be built.

    Torn down in reverse order: faults removed, service closed (analytics
    flushed), API client closed, then the environment if this call started it.
    """
    if scenario.target_kind == "http":
        from resilience.scenario.http_stack import open_http_stack

        async with open_http_stack(scenario, pool=pool) as stack:
            yield stack
        return
    from resilience.service.config import ServiceConfig
    from resilience.service.runtime import open_service

    async with contextlib.AsyncExitStack() as exits:
        controls = await open_controls(scenario, pool, exits)
        urls, controller, toxiproxy = controls.env.urls, controls.faults, controls.toxiproxy
        _require_booking_api(urls, scenario)
        try:
            await controller.clear_all()
            await toxiproxy.arm(scenario.faults)  # protocol toxics watch from the first query
            entries = await asyncio.wait_for(_prepare(urls, scenario), PREPARE_TIMEOUT_S)
            migration: RealMigration | None = None
            if scenario.migration is not None:
                migration = RealMigration(urls, entries)
                await migration.prepare(
                    jobs=scenario.migration.jobs,
                    unknown_share=scenario.migration.unknown_share,
                    seed=scenario.seed,
                )
        except Exception as exc:
            raise RunAborted(
                f"could not prepare the environment: {type(exc).__name__}: {exc}"
            ) from exc
        config = ServiceConfig().with_overrides(scenario.service)
        service_cm = open_service(
            config,
            postgres_url=urls.postgres,
            redis_url=urls.redis,
            clock=SYSTEM_CLOCK,
            booking_api_url=getattr(urls, "booking_api", "") or None,
            booking_stats_url=getattr(urls, "booking_api_direct", "") or None,
        )
        try:
            service = await service_cm.__aenter__()
        except Exception as exc:
            raise RunAborted(f"the service could not start: {type(exc).__name__}: {exc}") from exc
        exits.push_async_callback(
            _quietly, asyncio.wait_for(service_cm.__aexit__(None, None, None), 15.0)
        )
        exits.push_async_callback(_quietly, controller.clear_all())
        yield StaticStack(
            target=service,
            faults=controller,
            clock=SYSTEM_CLOCK,
            slugs=[e.slug for e in entries],
            mode="real",
            migration=migration,
        )


async def _quietly(awaitable: Any) -> None:
    """Await a clean-up step; its failure must not hide the run's own outcome."""
    with contextlib.suppress(Exception):
        await awaitable
