"""The gate table of a load run: printed, and written as JSON and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from resilience.scenario.gates import GateResult

__all__ = ["render_table", "write_json", "write_junit"]


def render_table(results: Sequence[GateResult]) -> str:
    """A plain-text table: status, gate, observed value, message."""
    rows = [("status", "gate", "observed", "target")]
    rows += [(r.status.upper(), r.gate.source, r.observed_text, r.target_text) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failed = sum(1 for r in results if not r.passed)
    verdict = "all gates passed" if not failed else f"{failed} of {len(results)} gates FAILED"
    return "\n".join(["", "Load gates", *lines, verdict, ""])


def write_json(path: Path, results: Sequence[GateResult], summary: Mapping[str, Any]) -> None:
    """``{"passed": bool, "gates": [...], **summary}``."""
    document = {
        "passed": all(r.passed for r in results),
        **summary,
        "gates": [r.to_dict() for r in results],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def write_junit(
    path: Path, results: Sequence[GateResult], *, suite: str, run_errors: Sequence[str] = ()
) -> None:
    """The scenario reports' JUnit layout: one ``testcase`` per gate in one ``testsuite``.

    A failed gate is a ``<failure type="GateFailed">``, a gate without data is
    ``<skipped>``, and fault-control errors add a ``run`` test case with an ``<error>``.
    """
    root = ET.Element("testsuites", name="resilience load")
    element = ET.SubElement(root, "testsuite", name=suite)
    failures = skipped = errors = 0
    for result in results:
        case = ET.SubElement(
            element, "testcase", classname=f"load.{suite}", name=result.gate.source, time="0"
        )
        if result.status == "fail":
            failures += 1
            failure = ET.SubElement(case, "failure", message=result.message, type="GateFailed")
            failure.text = f"observed {result.observed_text}, target {result.target_text}"
        elif result.status == "nodata":
            skipped += 1
            ET.SubElement(case, "skipped", message=result.message)
    if run_errors:
        errors = 1
        case = ET.SubElement(element, "testcase", classname=f"load.{suite}", name="run", time="0")
        error = ET.SubElement(case, "error", message=run_errors[0], type="RunError")
        error.text = "\n".join(run_errors)
    counts = {"tests": len(element), "failures": failures, "errors": errors, "skipped": skipped}
    for key, value in counts.items():
        element.set(key, str(value))
        root.set(key, str(value))
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
