"""Throwaway PostgreSQL, Redis and Toxiproxy proxies behind one :class:`Environment`.

Backends (one module each): :mod:`~resilience.backends.local` (child
processes), :mod:`~resilience.backends.docker` (testcontainers) and
:mod:`~resilience.backends.external` (servers from configuration).
"""

from __future__ import annotations

from resilience.backends.config import EnvironmentConfig, EnvironmentURLs
from resilience.backends.environment import Environment
from resilience.backends.errors import (
    BackendError,
    BackendUnavailable,
    BinaryNotFound,
    ConfigurationError,
    StartupFailed,
)

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "BinaryNotFound",
    "ConfigurationError",
    "Environment",
    "EnvironmentConfig",
    "EnvironmentURLs",
    "StartupFailed",
]
