"""Build hook: ship the checkout's ``scenarios/`` inside the package.

Everything else is in pyproject.toml. A wheel gets a copy of every scenario
file under ``resilience/_bundled/scenarios/`` (read with importlib.resources,
see ``resilience.scenario.discovery``), so ``pip install`` then
``resilience run`` works with no checkout. ``loadtests/`` (the locustfile and
its profiles) is a package of its own, listed in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class build_py_with_scenarios(build_py):  # noqa: N801 - setuptools' naming
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "resilience" / "_bundled" / "scenarios"
        for source in sorted((ROOT / "scenarios").rglob("*.y*ml")):
            destination = target / source.relative_to(ROOT / "scenarios")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)


setup(cmdclass={"build_py": build_py_with_scenarios})
