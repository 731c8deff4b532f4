"""The package facade: every public name resolves, __all__ is sorted, import is cheap."""

from __future__ import annotations

import subprocess
import sys

import resilience


def test_every_public_name_resolves_to_the_object_in_its_module() -> None:
    import importlib

    for name in resilience.__all__:
        module = importlib.import_module(resilience._EXPORTS[name])
        assert getattr(resilience, name) is getattr(module, name)


def test_all_is_sorted_constants_classes_functions() -> None:
    def key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert resilience.__all__ == sorted(resilience.__all__, key=key)
    assert set(resilience.__all__) == set(resilience._EXPORTS)


def test_importing_the_proxy_loads_nothing_else_from_the_package() -> None:
    code = (
        "import sys, resilience.proxy; "
        "print(sorted(m for m in sys.modules if m.startswith('resilience.') "
        "and not m.startswith('resilience.proxy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
