"""Which backend a scenario's environment runs on: file or --backend, else RESILIENCE_BACKEND."""

from __future__ import annotations

from resilience.scenario.model import EnvironmentSpec
from resilience.scenario.real_stack import _backend_of


def test_resilience_backend_applies_when_the_scenario_names_none() -> None:
    assert _backend_of(EnvironmentSpec(), "external") == "external"
    assert _backend_of(EnvironmentSpec(), "docker") == "docker"


def test_the_scenario_file_or_the_backend_flag_wins_over_the_variable() -> None:
    assert _backend_of(EnvironmentSpec(backend="local"), "external") == "local"
    flagged = EnvironmentSpec().model_copy(update={"backend": "docker"})
    assert _backend_of(flagged, "external") == "docker"


def test_without_a_configured_backend_the_main_job_stays_local() -> None:
    assert _backend_of(EnvironmentSpec(), "auto") == "local"
