"""The reference service: micro service slug → UUID lookups, jobs, health and metrics.

Build one from URLs with :func:`open_service`, or construct
:class:`LookupService` from injected parts (the simulator does); serve it over
HTTP with :func:`create_app`. See ``docs/service.md``.

``create_app`` is imported on first use, so the simulator, which imports the
flow, does not pay for FastAPI.
"""

from typing import TYPE_CHECKING, Any

from resilience.service.config import ServiceConfig
from resilience.service.lookup import LookupService
from resilience.service.model import Job, LookupOutcome, LookupPath, LookupResult
from resilience.service.repository import (
    InMemoryJobRepository,
    InMemorySlugRepository,
    JobRepository,
    PostgresJobRepository,
    PostgresSlugRepository,
    SlugRepository,
)
from resilience.service.runtime import open_service

if TYPE_CHECKING:
    from resilience.service.app import create_app
from resilience.service.slug import MAX_SLUG_LENGTH, is_valid_slug, validate_slug

__all__ = [
    "MAX_SLUG_LENGTH",
    "InMemoryJobRepository",
    "InMemorySlugRepository",
    "Job",
    "JobRepository",
    "LookupOutcome",
    "LookupPath",
    "LookupResult",
    "LookupService",
    "PostgresJobRepository",
    "PostgresSlugRepository",
    "ServiceConfig",
    "SlugRepository",
    "create_app",
    "is_valid_slug",
    "open_service",
    "validate_slug",
]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from resilience.service.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
