"""The stack of an HTTP target: dependencies behind proxies, the service as a process.

:func:`open_http_stack` starts (or reuses) the environment with the fault
controls every target kind shares
(:func:`~resilience.scenario.real_stack.open_controls`: extension toxics
checked against the proxy server, process actions on the dependencies'
servers), puts every declared TCP dependency behind its own proxy, runs the ``init`` and ``seed``
SQL files on the direct PostgreSQL URL, empties Redis, fills the target's
templates, starts its command (own process group, output in
``target.log`` of the report folder), waits until ``ready`` answers 2xx and
yields a :class:`~resilience.scenario.stack.StaticStack` around an
:class:`~resilience.targets.http.HttpTarget`. Anything that stops it from
starting is a :class:`~resilience.scenario.result.RunAborted` (exit 2) with
the reason and the log's last lines; on every way out the process is
stopped (SIGTERM, then SIGKILL), the faults removed and the extra proxies
deleted.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from resilience.backends.readiness import free_port, tcp_open
from resilience.clock import SYSTEM_CLOCK
from resilience.scenario.faults import FaultController, RecordingFaultController
from resilience.scenario.model import Scenario
from resilience.scenario.result import RunAborted
from resilience.scenario.stack import StaticStack
from resilience.scenario.target_spec import HttpTargetSpec
from resilience.targets.http import HttpTarget, TargetProcess, TargetStartError
from resilience.targets.http.client import HttpClientError
from resilience.targets.http.process import log_tail
from resilience.targets.http.prometheus import ScrapeError
from resilience.targets.http.templates import TemplateError, fill

__all__ = ["LOG_DIR", "environment_values", "open_http_stack"]

LOG_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "resilience_target_log_dir", default=None
)
"""Where ``target.log`` goes (the run sets it to its report folder)."""

PREPARE_TIMEOUT_S = 60.0


def _url_fields(prefix: str, url: str, direct: str) -> dict[str, str]:
    parts = urlsplit(url)
    out = {
        f"{prefix}.url": url,
        f"{prefix}.direct_url": direct,
        f"{prefix}.host": parts.hostname or "127.0.0.1",
        f"{prefix}.port": str(parts.port or ""),
    }
    if prefix == "postgres":
        out[f"{prefix}.user"] = parts.username or ""
        out[f"{prefix}.password"] = parts.password or ""
        out[f"{prefix}.database"] = parts.path.lstrip("/")
    return out


def environment_values(urls: Any, extra: dict[str, tuple[str, str]], port: int) -> dict[str, str]:
    """Template values: ``{port}``, each built-in's URL fields, each TCP dependency's address."""
    values = {"port": str(port)}
    values.update(_url_fields("postgres", urls.postgres, urls.postgres_direct))
    values.update(_url_fields("redis", urls.redis, urls.redis_direct))
    for name, (listen, upstream) in extra.items():
        host, _, p = listen.rpartition(":")
        values.update(
            {
                f"{name}.host": host,
                f"{name}.port": p,
                f"{name}.address": listen,
                f"{name}.direct_address": upstream,
            }
        )
    return values


def _source_dir(scenario: Scenario) -> Path:
    return scenario.source.parent if scenario.source is not None else Path.cwd()


def _keys(scenario: Scenario) -> list[str] | None:
    """The listed keys (``values`` or ``file``), or ``None``: use the seeded catalogue."""
    keys = scenario.workload.keys
    if keys.values is not None:
        return list(keys.values)
    if keys.file is not None:
        path = keys.file if keys.file.is_absolute() else _source_dir(scenario) / keys.file
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise RunAborted(f"workload.keys.file: cannot read {path}: {exc.strerror}") from None
        listed = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if not listed:
            raise RunAborted(f"workload.keys.file: {path} has no keys (one a line)")
        return listed
    return None


async def _prepare(urls: Any, scenario: Scenario) -> list[str]:
    """SQL ``init``/``seed`` files, empty Redis, and the keys (listed, or a seeded catalogue)."""
    import asyncpg
    import redis.asyncio as aioredis

    listed = _keys(scenario)
    deps = scenario.dependencies or {}
    pg = deps.get("postgres")
    files = [*(pg.init if pg else []), *(pg.seed if pg else [])]
    conn = await asyncpg.connect(urls.postgres_direct)
    try:
        for i, file in enumerate(files):
            path = file if file.is_absolute() else _source_dir(scenario) / file
            section = "init" if pg is not None and i < len(pg.init) else "seed"
            try:
                sql = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise RunAborted(
                    f"dependencies.postgres.{section}: cannot read {path}: {exc.strerror}"
                ) from None
            try:
                await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                raise RunAborted(f"dependencies.postgres.{section}: {path}: {exc}") from None
        keys = listed
        if keys is None:
            from resilience.db.catalogue import seed_catalogue_async
            from resilience.db.schema import TRUNCATE_SQL, apply_schema_async

            await apply_schema_async(conn)
            await conn.execute(TRUNCATE_SQL)
            entries = await seed_catalogue_async(
                conn, seed=scenario.seed, size=scenario.workload.keys.catalogue_size
            )
            keys = [e.slug for e in entries]
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(urls.redis_direct)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    return keys


async def _wait_ready(
    target: HttpTarget, spec: HttpTargetSpec, process: TargetProcess | None
) -> None:
    deadline = time.monotonic() + spec.startup_timeout
    last = "no answer yet"
    while True:
        if process is not None and process.exit_code() is not None:
            raise TargetStartError(process.describe_exit())
        try:
            status, _ = await target.get(spec.ready, 2.0)
            if 200 <= status < 300:
                return
            last = f"GET {spec.ready} answered {status}"
        except (TimeoutError, HttpClientError) as exc:
            last = f"GET {spec.ready}: {type(exc).__name__}"
        if time.monotonic() >= deadline:
            tail = ""
            if process is not None:
                text = log_tail(process.log_path)
                tail = f"; last lines of {process.log_path}:\n{text}" if text else ""
            raise TargetStartError(
                f"target.ready: the target was not ready within {spec.startup_timeout:g}s "
                f"(target.startup_timeout; {last}){tail}"
            )
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def open_http_stack(scenario: Scenario, *, pool: Any = None) -> AsyncIterator[StaticStack]:
    """The stack of ``scenario``'s HTTP target; :class:`RunAborted` when it cannot start."""
    from resilience.scenario.real_stack import open_controls

    spec = scenario.target
    assert isinstance(spec, HttpTargetSpec)
    async with contextlib.AsyncExitStack() as exits:
        controller: FaultController
        extra: dict[str, tuple[str, str]] = {}
        if scenario.dependencies == {}:  # a service with no dependency: no environment at all
            controller = RecordingFaultController()
            keys = _keys(scenario)
            if keys is None:
                raise RunAborted(
                    "workload.keys: with no dependencies there is no seeded catalogue; "
                    "give the keys as 'values' or in a 'file'"
                )
            values = {"port": ""}
        else:
            controls = await open_controls(scenario, pool, exits)
            urls, client, controller = controls.env.urls, controls.client, controls.faults
            try:
                await controller.clear_all()
                for name, dep in (scenario.dependencies or {}).items():
                    if dep.upstream is None:
                        continue
                    with contextlib.suppress(Exception):
                        await client.delete_proxy(name)
                    info = await client.create_proxy(
                        name, listen="127.0.0.1:0", upstream=dep.upstream
                    )
                    exits.push_async_callback(_quietly, client.delete_proxy(name))
                    extra[name] = (info.listen, dep.upstream)
                await controls.toxiproxy.arm(scenario.faults)  # before the service connects
                keys = await asyncio.wait_for(_prepare(urls, scenario), PREPARE_TIMEOUT_S)
            except RunAborted:
                raise
            except Exception as exc:
                raise RunAborted(
                    f"could not prepare the dependencies: {type(exc).__name__}: {exc}"
                ) from exc
            values = environment_values(urls, extra, 0)
        values["port"] = str(free_port())
        try:
            base_url = fill(spec.url, values, field="target.url")
            env_vars = {k: fill(v, values, field=f"target.env.{k}") for k, v in spec.env.items()}
            command = fill(spec.command, values, field="target.command") if spec.command else None
            cwd = fill(spec.cwd, values, field="target.cwd") if spec.cwd else None
        except TemplateError as exc:
            raise RunAborted(str(exc)) from None
        if cwd is not None and not Path(cwd).is_absolute():
            cwd = str(_source_dir(scenario) / cwd)
        process: TargetProcess | None = None
        if command is not None:
            parts = urlsplit(base_url)
            host = parts.hostname or "127.0.0.1"
            if parts.port is not None and tcp_open(host, parts.port, timeout_s=0.5):
                raise RunAborted(
                    f"target.url: port {parts.port} is already taken by another process; "
                    "use {port} to let the harness pick a free one"
                )
            log_dir = LOG_DIR.get() or Path.cwd()
            try:
                process = TargetProcess(
                    command,
                    env=env_vars,
                    cwd=cwd,
                    log_path=log_dir / "target.log",
                    shutdown_timeout_s=spec.shutdown_timeout,
                    watchdog=_watchdog(),
                )
            except TargetStartError as exc:
                raise RunAborted(str(exc)) from None
            atexit.register(process.kill_now)
            exits.callback(atexit.unregister, process.kill_now)
            exits.push_async_callback(process.stop)
        target = HttpTarget(
            base_url,
            scenario.workload.requests or [],
            seed=scenario.seed,
            concurrency=scenario.workload.concurrency,
            process=process,
            checks=scenario.steady_state.http,
            keys=keys,
            metrics_path=spec.metrics,
            ready_path=spec.ready,
            unresponsive_after_s=spec.unresponsive_after,
        )
        exits.push_async_callback(target.aclose)
        try:
            await _wait_ready(target, spec, process)
            if spec.metrics is not None:
                await target.scrape()
        except TargetStartError as exc:
            raise RunAborted(str(exc)) from None
        except ScrapeError as exc:
            raise RunAborted(f"target.metrics: GET {spec.metrics}: {exc}") from None
        except (TimeoutError, HttpClientError) as exc:
            raise RunAborted(
                f"target.metrics: GET {spec.metrics}: {type(exc).__name__}: {exc}"
            ) from None
        exits.push_async_callback(_quietly, controller.clear_all())
        yield StaticStack(
            target=target, faults=controller, clock=SYSTEM_CLOCK, slugs=keys, mode="real"
        )


def _watchdog() -> Any:
    """The harness's reaper (h15a), or ``None`` when it cannot start (PDEATHSIG still holds)."""
    try:
        from resilience.backends.watchdog import shared_watchdog

        return shared_watchdog()
    except Exception:
        return None


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(Exception):
        await awaitable
