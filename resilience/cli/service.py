"""``resilience serve`` and ``resilience migrate``: the reference service from the shell.

Both run against a fresh local :class:`~resilience.backends.Environment`
(schema applied, catalogue seeded) unless given ``--postgres-url``. The
service itself only ever talks to the proxied URLs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Annotated, Any

import typer

__all__ = ["register"]

_ENV_POSTGRES = "RESILIENCE_SERVICE_POSTGRES_URL"
_ENV_REDIS = "RESILIENCE_SERVICE_REDIS_URL"
_ENV_OVERRIDES = "RESILIENCE_SERVICE_OVERRIDES"


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(
                f"expected NAME=VALUE (e.g. breaker.failure_threshold=3), got {item!r}"
            )
        overrides[name.strip()] = value.strip()
    return overrides


@contextlib.contextmanager
def _urls(
    postgres_url: str | None, redis_url: str | None, *, seed_jobs: int = 0
) -> Iterator[tuple[str, str | None, str]]:
    """(postgres URL for the service, Redis URL, direct postgres URL for admin work)."""
    if postgres_url is not None:
        yield postgres_url, redis_url, postgres_url
        return
    from resilience.backends import Environment
    from resilience.db.catalogue import generate_jobs, insert_jobs, seed_catalogue
    from resilience.db.schema import apply_schema

    typer.echo("starting a local environment (PostgreSQL, Redis, fault proxies)…", err=True)
    with Environment() as env:
        urls = env.urls
        apply_schema(urls.postgres_direct)
        entries = seed_catalogue(urls.postgres_direct)
        if seed_jobs:
            insert_jobs(urls.postgres_direct, generate_jobs(entries, count=seed_jobs))
        typer.echo(json.dumps(urls.as_dict(), indent=2), err=True)
        if urls.booking_api:
            os.environ["RESILIENCE_BOOKING_API_URL"] = urls.booking_api
        yield urls.postgres, redis_url or urls.redis, urls.postgres_direct


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``migrate``."""

    @app.command("serve")
    def serve(
        postgres_url: Annotated[
            str | None, typer.Option(help="PostgreSQL URL (default: a fresh local environment)")
        ] = None,
        redis_url: Annotated[str | None, typer.Option(help="Redis URL (optional)")] = None,
        host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="Port to bind")] = 8000,
        workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="Override a setting, e.g. breaker.failure_threshold=3"),
        ] = None,
    ) -> None:
        """Serve the lookup API (GET /services/{slug}, POST /jobs, /health, /metrics, /stats),
        and the booking flow (/availability, /bookings) when a booking API is known
        (--set booking.url=..., or the local environment's stub)."""
        import uvicorn

        from resilience.service.config import ServiceConfig

        overrides = _parse_overrides(set_ or [])
        try:
            ServiceConfig().with_overrides(overrides)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--set") from None
        with _urls(postgres_url, redis_url) as (pg, rd, _):
            if postgres_url is None and "booking.url" not in overrides:
                booking = os.environ.get("RESILIENCE_BOOKING_API_URL", "")
                if booking:  # the local environment's stub, behind proxy booking-api
                    overrides["booking.url"] = booking
            os.environ[_ENV_POSTGRES] = pg
            if rd is not None:
                os.environ[_ENV_REDIS] = rd
            os.environ[_ENV_OVERRIDES] = json.dumps(overrides)
            typer.echo(f"serving on http://{host}:{port} (docs at /docs)", err=True)
            uvicorn.run(
                "resilience.cli.service:app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
                # wsproto waits while the socket's send buffer is full, so a /ws/events
                # subscriber that stops reading is bounded (its queue drops, its send
                # times out); uvicorn's default sans-I/O websockets protocol buffers
                # without limit.
                ws="wsproto",
                loop="auto",
            )

    @app.command("migrate")
    def migrate(
        postgres_url: Annotated[
            str | None,
            typer.Option(help="PostgreSQL URL (default: a local environment with sample jobs)"),
        ] = None,
        batch_size: Annotated[int, typer.Option(min=1, help="Jobs per transaction")] = 100,
        jobs: Annotated[
            int, typer.Option(min=0, help="Sample jobs to create in a fresh local environment")
        ] = 1000,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    ) -> None:
        """Backfill micro_uuid on jobs (migrate_job_uuids) and print the statistics."""
        from resilience.db.migration import run_migration
        from resilience.errors import ResilienceError

        with _urls(postgres_url, None, seed_jobs=jobs) as (_, _, direct):
            try:
                stats = run_migration(direct, batch_size=batch_size)
            except ResilienceError as exc:
                typer.echo(f"migration failed: {exc.message}", err=True)
                raise typer.Exit(1) from None
        report = {
            "run": {
                "processed": stats.run.processed,
                "succeeded": stats.run.succeeded,
                "skipped": stats.run.skipped,
                "failed": stats.run.failed,
                "batches": stats.run.batches,
            },
            "total_jobs": stats.total_jobs,
            "jobs_with_uuid": stats.jobs_with_uuid,
            "jobs_without_uuid": stats.jobs_without_uuid,
            "unknown_slug_jobs": stats.unknown_slug_jobs,
            "pending_jobs": stats.pending_jobs,
            "logged": {
                "success": stats.logged_success,
                "skipped": stats.logged_skipped,
                "failed": stats.logged_failed,
            },
            "migration_percentage": stats.migration_percentage,
            "failure_rate": round(stats.failure_rate, 4),
        }
        if as_json:
            typer.echo(json.dumps(report, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title="UUID migration")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in report.items():
            if isinstance(value, dict):
                for sub, count in value.items():
                    table.add_row(f"{key}.{sub}", str(count))
            else:
                table.add_row(key, str(value))
        Console().print(table)
        if stats.failure_rate > 0.10:
            typer.echo("critical: more than 10 % of migration outcomes failed", err=True)
        elif stats.failure_rate > 0.05:
            typer.echo("warning: more than 5 % of migration outcomes failed", err=True)


def app_from_env() -> Any:
    """uvicorn factory: the app configured by ``resilience serve`` through the environment."""
    from resilience.service.app import create_app
    from resilience.service.config import ServiceConfig

    postgres_url = os.environ.get(_ENV_POSTGRES)
    if not postgres_url:
        raise RuntimeError(f"{_ENV_POSTGRES} is not set; start the service with `resilience serve`")
    overrides = json.loads(os.environ.get(_ENV_OVERRIDES) or "{}")
    config = ServiceConfig().with_overrides(overrides)
    return create_app(config, postgres_url=postgres_url, redis_url=os.environ.get(_ENV_REDIS))
