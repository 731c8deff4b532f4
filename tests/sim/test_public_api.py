"""The public names of resilience.sim, and that importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import resilience.sim


def test_all_is_sorted_and_every_name_resolves() -> None:
    names = resilience.sim.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(resilience.sim, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        resilience.sim.no_such_name  # noqa: B018


def test_import_loads_no_driver_and_no_service() -> None:
    code = (
        "import sys, resilience.sim\n"
        "heavy = [m for m in ('asyncpg', 'redis', 'fastapi', 'resilience.service', "
        "'resilience.scenario', 'locust', 'gevent') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
