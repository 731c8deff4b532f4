"""Errors of the backends: why an environment could not be started.

These concern the harness's own set-up, not the system under test, so they
sit beside (not inside) the resilience-layer hierarchy of
:mod:`resilience.errors`. All are ``RuntimeError`` subclasses::

    BackendError (RuntimeError)
    ├── BinaryNotFound          a server binary is missing; says what to install
    ├── BackendUnavailable      the selected backend cannot run here (no Docker engine, ...)
    ├── ConfigurationError      bad or missing configuration (also ValueError)
    └── StartupFailed           a server did not become ready; carries its log tail
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "BinaryNotFound",
    "ConfigurationError",
    "StartupFailed",
]


class BackendError(RuntimeError):
    """Base of the errors raised while starting or stopping an environment."""


class BinaryNotFound(BackendError):
    """A server binary could not be found; the message names the apt and pip fix."""


class BackendUnavailable(BackendError):
    """The selected backend cannot run on this machine (one sentence, no traceback needed)."""


class ConfigurationError(BackendError, ValueError):
    """Configuration is missing a value or holds a bad one."""


class StartupFailed(BackendError):
    """A server did not become ready in time; the message ends with its log tail."""

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        full = f"{message}\n--- log tail ---\n{log_tail}" if log_tail else message
        super().__init__(full)
        self.log_tail = log_tail
