"""The reference service: micro service slug → UUID lookups, jobs, health and metrics.

Build one from URLs with :func:`open_service`, or construct
:class:`LookupService` from injected parts (the simulator does); serve it over
HTTP with :func:`create_app`. See ``docs/service.md``.
"""

from resilience.service.app import create_app
from resilience.service.config import ServiceConfig
from resilience.service.lookup import LookupService
from resilience.service.model import Job, LookupOutcome, LookupPath, LookupResult
from resilience.service.repository import (
    JobRepository,
    PostgresJobRepository,
    PostgresSlugRepository,
    SlugRepository,
)
from resilience.service.slug import MAX_SLUG_LENGTH, is_valid_slug, validate_slug

__all__ = [
    "MAX_SLUG_LENGTH",
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
    "validate_slug",
]
