"""Settings of the reference service, with the defaults TARGETS.md documents.

Every primitive setting has a dotted name (``breaker.failure_threshold``,
``retry.max_attempts``, ``cache.ttl_s`` …) so scenarios and the tuner can
override it with :meth:`ServiceConfig.with_overrides`. Durations are float
seconds; strings such as ``"250ms"``, ``"30s"``, ``"5m"`` are accepted too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "AlertsConfig",
    "AnalyticsConfig",
    "BookingConfig",
    "BreakerConfig",
    "CacheConfig",
    "DatabaseConfig",
    "JobsConfig",
    "MigrationConfig",
    "RedisConfig",
    "RetryConfig",
    "ServiceConfig",
    "StatsConfig",
    "parse_duration_s",
]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?\s*$")
_UNIT_S = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration_s(value: object) -> object:
    """``"250ms"`` → 0.25; numbers pass through (seconds); anything else is left to pydantic."""
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 250ms, 30s, 5m)")
        return float(match.group(1)) * _UNIT_S[match.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration_s), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(parse_duration_s), Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CacheConfig(_Section):
    """In-memory tier: TTL 30 min, 100 entries LRU, sweep every 5 min."""

    ttl_s: PositiveSeconds = 1800.0
    max_size: int = Field(default=100, ge=1)
    negative_ttl_s: PositiveSeconds = 60.0
    sweep_interval_s: PositiveSeconds = 300.0


class RedisConfig(_Section):
    """Shared Redis tier and breaker store."""

    enabled: bool = True
    ttl_s: PositiveSeconds = 1800.0
    negative_ttl_s: PositiveSeconds = 60.0
    timeout_s: PositiveSeconds = 0.1
    """Per-command limit; a slower Redis counts as down."""
    retry_interval_s: Seconds = 1.0
    """While down, Redis is skipped and probed again after this long."""
    open_breaker_timeout_s: Seconds = 0.0
    """While the database breaker is open, wait at most this long for the Redis tier
    before falling back (0: not at all); the read goes on and fills the memory tier."""
    key_prefix: str = "resilience"
    shared_breaker: bool = True
    breaker_sync_interval_s: Seconds = 0.5


class BreakerConfig(_Section):
    """Lookup breaker: opens after 5 consecutive failures, reset timeout 60 s."""

    name: str = "postgres"
    failure_threshold: int = Field(default=5, ge=1)
    reset_timeout_s: PositiveSeconds = 60.0
    half_open_max_calls: int = Field(default=1, ge=1)


class RetryConfig(_Section):
    """Lookup retry: 3 retries after the first attempt, 100 → 200 → 400 ms, cap 2 s."""

    max_attempts: int = Field(default=4, ge=1)
    initial_delay_s: Seconds = 0.1
    multiplier: float = Field(default=2.0, ge=1.0)
    max_delay_s: Seconds = 2.0
    deadline_s: PositiveSeconds | None = None


class DatabaseConfig(_Section):
    """PostgreSQL pool and per-attempt timeout."""

    timeout_s: PositiveSeconds = 1.0
    pool_min_size: int = Field(default=0, ge=0)
    """0: connect lazily, so the service starts while PostgreSQL is away."""
    pool_max_size: int = Field(default=10, ge=1)


class JobsConfig(_Section):
    """Job writes: storage-write retry of TARGETS.md (3 retries, 0.5 → 1 → 2 s)."""

    max_attempts: int = Field(default=4, ge=1)
    initial_delay_s: Seconds = 0.5
    multiplier: float = Field(default=2.0, ge=1.0)
    max_delay_s: Seconds = 2.0
    outbox: bool = True
    """Queue jobs in Redis while PostgreSQL is unavailable (answered 202)."""
    outbox_drain_interval_s: PositiveSeconds = 1.0
    answers_max_depth: int = Field(default=32, ge=1, le=200)
    """Nesting levels a job's ``answers`` may have (deeper: 422)."""
    answers_max_bytes: int = Field(default=65_536, ge=64)
    """Size of a job's ``answers`` as compact JSON (larger: 422)."""
    outbox_max_failures: int = Field(default=5, ge=1)
    """Drains in which a queued job failed to be written while PostgreSQL answered,
    before it is moved to the dead letters (``{prefix}:jobs:dead``)."""


class AnalyticsConfig(_Section):
    """``analytics_events`` writer: batches of 10, bounded buffer."""

    enabled: bool = True
    batch_size: int = Field(default=10, ge=1)
    max_buffer: int = Field(default=10_000, ge=1)
    flush_interval_s: PositiveSeconds = 1.0


class StatsConfig(_Section):
    """``/stats`` and ``/metrics`` over every worker, through Redis (see docs/service.md)."""

    shared: bool = True
    """Publish this worker's counts to Redis and merge every live worker's (needs Redis)."""
    publish_interval_s: PositiveSeconds = 1.0
    ttl_s: PositiveSeconds = 5.0
    """A worker whose last snapshot is older than this is no longer counted."""
    refresh_timeout_s: Seconds = 0.5
    """How long ``/stats`` waits for the other workers to publish a fresh snapshot."""


class AlertsConfig(_Section):
    """The alert rules' sliding window and the monitor's tick (resilience.service.alerts)."""

    window_s: PositiveSeconds = 60.0
    min_samples: int = Field(default=20, ge=1)
    """Rate rules wait for this many lookups in the window."""
    interval_s: PositiveSeconds = 1.0
    """How often the monitor evaluates the rules."""
    health_interval_s: Seconds = 1.0
    """How often it checks ``/health``'s status for ``health`` events (0: never itself;
    then only ``GET /health`` answers and resolutions publish changes)."""


class MigrationConfig(_Section):
    """The ``micro_uuid`` backfill as a background component (resilience.service.backfill)."""

    enabled: bool = False
    """Off by default: ``resilience migrate`` and the harness's ``migration:`` run it on demand."""
    interval_s: PositiveSeconds = 5.0
    """Pause between two passes over the jobs still lacking a UUID."""
    batch_size: int = Field(default=100, ge=1)


class BookingConfig(_Section):
    """External booking API (TARGETS.md "external HTTP API"): retry 1, 2, 4 s ±10 %
    (four attempts, as :data:`resilience.retry.HTTP_API_RETRY`), ``Retry-After``
    honoured up to ``max_retry_after_s`` (longer: give up at once); breaker opens
    after 5 failures within 60 s, stays open 30 s, one half-open trial; on slow calls
    too when ``breaker_slow_call_s`` is set. ``url`` None: the booking routes answer
    503 (no booking API configured)."""

    url: str | None = None
    attempt_timeout_s: PositiveSeconds = 2.0
    max_attempts: int = Field(default=4, ge=1)
    initial_delay_s: Seconds = 1.0
    multiplier: float = Field(default=2.0, ge=1)
    max_delay_s: Seconds = 4.4
    jitter_ratio: float = Field(default=0.1, ge=0, le=1)
    max_retry_after_s: Seconds = 10.0
    deadline_s: PositiveSeconds | None = None
    breaker_failures: int = Field(default=5, ge=1)
    breaker_window_s: PositiveSeconds = 60.0
    breaker_open_s: Seconds = 30.0
    breaker_half_open_calls: int = Field(default=1, ge=1)
    breaker_slow_call_s: PositiveSeconds | None = None
    """A call (one attempt) taking this long counts as slow; None: no slow-call rule."""
    breaker_slow_call_rate: float = Field(default=0.5, gt=0, le=1)
    """With ``breaker_slow_call_s``: the breaker also opens when this share of the
    window's calls were slow (once it holds ``breaker_min_calls`` calls)."""
    breaker_min_calls: int = Field(default=10, ge=1)
    """Calls the window needs before the slow-call rule judges (as the breaker's own)."""


class HttpConfig(_Section):
    """Limits of the HTTP API (see docs/service.md)."""

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body (1 MiB); a larger one is answered 413 before it is read."""


class ServiceConfig(_Section):
    """All settings of one service instance (immutable; override with :meth:`with_overrides`)."""

    cache: CacheConfig = CacheConfig()
    redis: RedisConfig = RedisConfig()
    breaker: BreakerConfig = BreakerConfig()
    retry: RetryConfig = RetryConfig()
    db: DatabaseConfig = DatabaseConfig()
    jobs: JobsConfig = JobsConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()
    stats: StatsConfig = StatsConfig()
    alerts: AlertsConfig = AlertsConfig()
    migration: MigrationConfig = MigrationConfig()
    booking: BookingConfig = BookingConfig()
    http: HttpConfig = HttpConfig()

    def with_overrides(self, overrides: Mapping[str, Any]) -> ServiceConfig:
        """A copy with dotted settings replaced, e.g. ``{"breaker.failure_threshold": 3}``.

        Unknown names and bad values raise :class:`pydantic.ValidationError`
        (a :class:`ValueError`) naming the setting.
        """
        data = self.model_dump()
        for dotted, value in overrides.items():
            section, _, field = dotted.partition(".")
            if not field or section not in data or "." in field:
                raise ValueError(
                    f"unknown setting {dotted!r}; use section.field with a section among "
                    f"{', '.join(sorted(data))}"
                )
            data[section][field] = value
        return ServiceConfig.model_validate(data)
