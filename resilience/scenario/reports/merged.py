"""One suite report from runs made elsewhere: pytest-xdist workers, or several machines.

Each run already wrote its own reports (``report.json``, ``junit.xml``,
``report.html``) into its directory; what reaches the place that merges is a
small entry per run (:func:`suite_entry`: the fields of ``summary.json``'s
``scenarios`` list, plain data that crosses a process boundary).
:func:`write_merged_suite` writes, into the suite directory, ``summary.json``
in :func:`~resilience.scenario.reports.json_report.write_suite_json`'s format
(plus who ran each scenario), ``junit.xml`` with every run's test suites, and
``report.html``: one row per scenario with its verdict, failed gates and a
link to its own report.
"""

from __future__ import annotations

import html
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["suite_entry", "write_merged_suite"]


def suite_entry(result: Any, *, worker: str = "") -> dict[str, Any]:
    """The summary entry of one :class:`~resilience.scenario.result.RunResult`."""
    return {
        "scenario": result.scenario.name,
        "verdict": result.verdict,
        "exit_code": result.exit_code,
        "wall_s": round(result.wall_s, 3),
        "failed": [g.gate.source for g in result.results if g.status == "fail"],
        "error": result.error,
        "report_dir": str(result.report_dir) if result.report_dir else None,
        "worker": worker,
    }


def _exit_code(entries: Sequence[dict[str, Any]]) -> int:
    codes = [int(e["exit_code"]) for e in entries]
    if not codes:
        return 2
    return 2 if 2 in codes else max(codes)


def _junit(entries: Sequence[dict[str, Any]], path: Path) -> Path:
    root = ET.Element("testsuites", name="resilience scenarios")
    for entry in entries:
        source = Path(entry["report_dir"] or "") / "junit.xml"
        if not entry["report_dir"] or not source.exists():
            suite = ET.SubElement(root, "testsuite", name=entry["scenario"], tests="1", errors="1")
            case = ET.SubElement(suite, "testcase", classname=f"scenario.{entry['scenario']}")
            case.set("name", "run")
            ET.SubElement(case, "error", message=str(entry.get("error") or "no report"))
            continue
        parsed = ET.parse(source).getroot()
        suites = [parsed] if parsed.tag == "testsuite" else list(parsed)
        root.extend(suites)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path


def _html(entries: Sequence[dict[str, Any]], wall_s: float, directory: Path) -> str:
    rows = []
    for e in entries:
        link = ""
        if e["report_dir"]:
            target = Path(e["report_dir"]) / "report.html"
            href = os.path.relpath(target, directory) if target.exists() else ""
            link = f'<a href="{html.escape(href)}">report</a>' if href else ""
        colour = {0: "#1a7f37", 1: "#cf222e"}.get(int(e["exit_code"]), "#9a6700")
        rows.append(
            "<tr>"
            f"<td>{html.escape(e['scenario'])}</td>"
            f'<td style="color:{colour}"><b>{html.escape(str(e["verdict"]))}</b></td>'
            f"<td>{html.escape(', '.join(e['failed']) or (e.get('error') or ''))}</td>"
            f"<td>{e['wall_s']:.1f} s</td><td>{html.escape(e.get('worker') or '')}</td>"
            f"<td>{link}</td></tr>"
        )
    passed = sum(1 for e in entries if e["exit_code"] == 0)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>scenario suite</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}"
        "table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:3px 8px}"
        "</style></head><body><h1>Scenario suite</h1>"
        f"<p>{passed} of {len(entries)} scenarios pass; {wall_s:.1f} s wall.</p>"
        "<table><tr><th>scenario</th><th>verdict</th><th>failed gates / error</th>"
        "<th>wall</th><th>worker</th><th>its report</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )


def write_merged_suite(
    entries: Sequence[dict[str, Any]], wall_s: float, directory: Path
) -> dict[str, Path]:
    """``summary.json``, ``junit.xml`` and ``report.html`` of the suite, in scenario order."""
    directory.mkdir(parents=True, exist_ok=True)
    ordered = sorted(entries, key=lambda e: str(e["scenario"]))
    summary = {
        "exit_code": _exit_code(ordered),
        "wall_s": round(wall_s, 3),
        "scenarios": ordered,
    }
    (directory / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    (directory / "report.html").write_text(_html(ordered, wall_s, directory))
    return {
        "json": directory / "summary.json",
        "junit": _junit(ordered, directory / "junit.xml"),
        "html": directory / "report.html",
    }
