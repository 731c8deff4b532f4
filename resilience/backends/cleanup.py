"""Putting an environment back to a clean state between tests or scenarios.

Clean means: every toxic removed and both proxies enabled (Toxiproxy's
``POST /reset``), the schema's tables empty (over the *direct* URL, so a
broken proxy cannot stop it), and Redis flushed.
"""

from __future__ import annotations

from resilience.backends.config import EnvironmentURLs
from resilience.backends.readiness import http_json

__all__ = ["reset_booking_stub", "reset_environment", "reset_proxies", "truncate_tables"]


def reset_proxies(toxiproxy_api: str) -> None:
    """Remove every toxic and enable every proxy."""
    http_json("POST", f"{toxiproxy_api}/reset")


def truncate_tables(dsn: str, *, lock_timeout_s: float = 5.0) -> None:
    """Empty the schema's tables that exist; sessions that block it are terminated."""
    import psycopg

    from resilience.db.schema import TABLES

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        present = [
            name
            for name in TABLES
            if conn.execute(b"SELECT to_regclass(%s)", (name,)).fetchone() not in (None, (None,))
        ]
        if not present:
            return
        statement = f"TRUNCATE {', '.join(present)} RESTART IDENTITY CASCADE".encode()
        conn.execute(f"SET lock_timeout = '{int(lock_timeout_s * 1000)}ms'".encode())
        try:
            conn.execute(statement)
        except psycopg.errors.LockNotAvailable:
            # A session left a transaction open on a table (e.g. a test's client
            # that the proxy cut off): end it, then try again.
            conn.execute(
                b"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                b"WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            conn.execute(statement)


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushall()
    finally:
        client.close()


def reset_environment(urls: EnvironmentURLs) -> None:
    """Proxies reset, tables truncated, Redis flushed, booking stub counters zeroed."""
    reset_proxies(urls.toxiproxy_api)
    truncate_tables(urls.postgres_direct)
    flush_redis(urls.redis_direct)
    reset_booking_stub(urls)


def reset_booking_stub(urls: EnvironmentURLs) -> None:
    """The booking API stub's counts and bookings back to zero (when the environment has one)."""
    if urls.booking_api_direct:
        http_json("POST", f"{urls.booking_api_direct}/_stats/reset")
