"""Finding scenario files: by path, or by name in the checkout's or the shipped suite.

``resilience run postgres-down`` names a scenario by its ``name:`` or by its
file's stem (``03-postgres-down``). Names are looked up in ``./scenarios``
first (a checkout's own files win), then in the suite shipped inside the
package (``resilience/_bundled/scenarios``, written by the wheel build; in an
editable install, the source tree's ``scenarios/``), so ``pip install`` then
``resilience run`` works with no checkout.
"""

from __future__ import annotations

import difflib
import importlib.resources
from collections.abc import Iterable
from pathlib import Path

import yaml

from resilience.scenario.loader import Issue, ScenarioError, discover

__all__ = ["default_suite", "resolve", "search_path", "shipped_suite"]

LOCAL_SUITE = Path("scenarios")


def shipped_suite() -> Path | None:
    """The scenario directory shipped with the package (``None`` if there is none)."""
    bundled = Path(str(importlib.resources.files("resilience"))) / "_bundled" / "scenarios"
    if bundled.is_dir():
        return bundled
    source_tree = Path(__file__).resolve().parents[2] / "scenarios"
    return source_tree if source_tree.is_dir() else None


def search_path() -> list[Path]:
    """Where names are looked up, in order: ``./scenarios``, then the shipped suite."""
    found = [LOCAL_SUITE] if LOCAL_SUITE.is_dir() else []
    shipped = shipped_suite()
    if shipped is not None and not (found and found[0].resolve() == shipped.resolve()):
        found.append(shipped)
    return found


def default_suite() -> Path:
    """``./scenarios`` when it exists, else the shipped suite."""
    path = search_path()
    return path[0] if path else LOCAL_SUITE


def _declared_name(path: Path) -> str | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def _by_name(name: str, directory: Path) -> Path | None:
    files = discover([directory])
    for file in files:
        if file.stem == name:
            return file
    for file in files:
        if _declared_name(file) == name:
            return file
    return None


def resolve(items: Iterable[str | Path]) -> list[Path]:
    """Each item as a path when it exists, else as a scenario name (see the module docstring).

    Raises :class:`ScenarioError` for an item that is neither, listing the
    known names.
    """
    resolved: list[Path] = []
    for item in items:
        path = Path(item)
        if path.exists() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
            resolved.append(path)  # a path (a missing one is reported by the loader)
            continue
        for directory in search_path():
            found = _by_name(str(item), directory)
            if found is not None:
                if found not in resolved:  # the same file named twice runs once
                    resolved.append(found)
                break
        else:
            known = sorted(
                {
                    name
                    for directory in search_path()
                    for file in discover([directory])
                    if (name := _declared_name(file))
                }
            )
            hint = difflib.get_close_matches(str(item), known, n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            listed = f" (known: {', '.join(known)})" if known else ""
            message = f"no such file, and no scenario has that name{did}{listed}"
            raise ScenarioError([Issue(str(item), None, "name", message)])
    return resolved
