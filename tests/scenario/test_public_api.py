"""The public names of resilience.scenario, and what importing it pulls in."""

from __future__ import annotations

import subprocess
import sys

import resilience.scenario as scenario
import resilience.scenario.gates as gates


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_names_are_sorted_and_exist() -> None:
    for module in (scenario, gates):
        assert sorted(module.__all__, key=_isort_key) == module.__all__
        for name in module.__all__:
            assert hasattr(module, name), name


def test_importing_the_package_stays_light() -> None:
    """No drivers, no simulator, no locust: those load only when a run needs them."""
    code = (
        "import sys, resilience.scenario, resilience.pytest_scenarios; "
        "heavy = [m for m in ('asyncpg', 'redis', 'resilience.sim', 'locust', 'gevent', "
        "'resilience.backends') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
