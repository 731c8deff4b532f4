"""``resilience upstream``: a fast local stub of an external booking API.

The third kind of dependency the harness proves a service against (after
PostgreSQL and Redis): an HTTP API the service does not own. The stub is
deterministic from a seed (availability by date, booking ids), enforces
exactly-once bookings per ``Idempotency-Key``, and counts every request it
receives by route and by the status it returned on ``GET /_stats``, which is
what the "no hammering" and "no duplicates" gates read: calls are counted
where they land, not where they were sent.

Like the proxy it stands alone (imports nothing else from the package), so
the same code runs as a local child process (``python -m
resilience.upstream``) or in a container.

Modules: :mod:`.store` (the booking rules, pure), :mod:`.stats` (request
counts and their client), :mod:`.app` (the Starlette app), :mod:`.cli`.
"""

from __future__ import annotations

from .stats import UpstreamStats, fetch_stats, reset_stats
from .store import BookingStore

__all__ = ["BookingStore", "UpstreamStats", "fetch_stats", "reset_stats"]
