"""The schema of the reference service: tables, indexes and SQL functions.

:data:`SCHEMA_SQL` is the text of the packaged ``schema.sql``. Applying it is
idempotent (``IF NOT EXISTS`` / ``CREATE OR REPLACE``) and runs in one
transaction under an advisory lock, so concurrent appliers do not collide.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

__all__ = [
    "SCHEMA_SQL",
    "TABLES",
    "TRUNCATE_SQL",
    "apply_schema",
    "apply_schema_async",
    "truncate_all",
]

SCHEMA_SQL: str = resources.files(__package__).joinpath("schema.sql").read_text()
"""The whole schema as one SQL script."""

TABLES: tuple[str, ...] = (
    "micro_services",
    "jobs",
    "analytics_events",
    "uuid_migration_log",
    "circuit_breaker_events",
    "failure_metrics",
    "error_events",
    "alert_events",
)
"""Every table the schema creates."""

TRUNCATE_SQL = f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"


def apply_schema(dsn: str) -> None:
    """Apply :data:`SCHEMA_SQL` over a new psycopg connection to ``dsn``."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(SCHEMA_SQL.encode())
        conn.commit()


async def apply_schema_async(conn_or_dsn: Any) -> None:
    """Apply :data:`SCHEMA_SQL` with asyncpg, on a given connection or a DSN."""
    import asyncpg

    if isinstance(conn_or_dsn, str):
        conn = await asyncpg.connect(conn_or_dsn)
        try:
            async with conn.transaction():
                await conn.execute(SCHEMA_SQL)
        finally:
            await conn.close()
        return
    async with conn_or_dsn.transaction():
        await conn_or_dsn.execute(SCHEMA_SQL)


def truncate_all(dsn: str) -> None:
    """Empty every table of the schema (ids restart at 1)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(TRUNCATE_SQL.encode())
