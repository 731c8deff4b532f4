"""``pytest scenarios/`` runs every scenario file here as a test (see docs/scenarios.md)."""

from resilience.pytest_scenarios import *  # noqa: F403
