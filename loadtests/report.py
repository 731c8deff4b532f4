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


def write_junit(path: Path, results: Sequence[GateResult], *, suite: str) -> None:
    """One ``testcase`` per gate; a failed gate is a ``failure``, no data a ``skipped``."""
    failures = sum(1 for r in results if r.status == "fail")
    skipped = sum(1 for r in results if r.status == "nodata")
    root = ET.Element(
        "testsuite",
        name=f"load.{suite}",
        tests=str(len(results)),
        failures=str(failures),
        skipped=str(skipped),
        errors="0",
    )
    for result in results:
        case = ET.SubElement(root, "testcase", classname=f"load.{suite}", name=result.gate.source)
        if result.status == "fail":
            ET.SubElement(case, "failure", message=result.message).text = result.message
        elif result.status == "nodata":
            ET.SubElement(case, "skipped", message=result.message)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
