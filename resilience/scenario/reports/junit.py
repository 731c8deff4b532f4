"""JUnit XML: one ``testsuite`` per scenario, one ``testcase`` per gate.

A failed gate is a ``<failure>``, and so is a gate that saw no data (type
``NoData``) unless it allows it (``if any``); an allowed empty gate or an
inconclusive rate gate is ``<skipped>``; a rate gate's ``<system-out>`` gives its count,
estimate, 95 % upper bound and which one the verdict used; a run that could
not be done (aborted, crashed, interrupted, fault control
failed) adds a ``run`` test case with an ``<error>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from resilience.scenario.runner import RunResult

__all__ = ["junit_tree", "write_junit"]


def _suite(result: RunResult) -> ET.Element:
    name = result.scenario.name
    suite = ET.Element("testsuite", name=name)
    failures = errors = skipped = 0
    for r in result.results:
        case = ET.SubElement(
            suite, "testcase", classname=f"scenario.{name}", name=r.gate.source, time="0"
        )
        if r.status == "fail":
            failures += 1
            failure = ET.SubElement(case, "failure", message=r.message, type="GateFailed")
            failure.text = f"observed {r.observed_text}, target {r.target_text}"
        elif r.status == "nodata" and not r.passed:
            failures += 1
            ET.SubElement(case, "failure", message=r.message, type="NoData")
        elif r.status in ("nodata", "inconclusive"):
            skipped += 1
            ET.SubElement(case, "skipped", message=r.message)
        if r.bound is not None:
            out = ET.SubElement(case, "system-out")
            out.text = (
                f"count {r.bound.count} in {r.bound.window_s:g} s; estimate {r.observed_text}; "
                f"{r.bound.confidence:.0%} upper bound {r.bound_text.removeprefix('≤ ')}; "
                f"verdict on the {r.verdict_on}"
            )
    if result.skipped:
        case = ET.SubElement(suite, "testcase", classname=f"scenario.{name}", name="run", time="0")
        ET.SubElement(case, "skipped", message=result.error or "skipped")
        skipped += 1
    problems = list(result.fault_errors)
    if result.status not in ("completed", "skipped"):
        problems.insert(0, f"{result.status}: {result.error}")
    if problems:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"scenario.{name}",
            name="run",
            time=f"{result.wall_s:.3f}",
        )
        error = ET.SubElement(case, "error", message=problems[0], type="RunError")
        error.text = "\n".join(problems)
        errors += 1
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("time", f"{result.wall_s:.3f}")
    if result.scenario.description:
        props = ET.Element("properties")
        ET.SubElement(props, "property", name="description", value=result.scenario.description)
        suite.insert(0, props)
    return suite


def junit_tree(results: Sequence[RunResult]) -> ET.ElementTree[ET.Element]:
    """A ``<testsuites>`` document for ``results``."""
    root = ET.Element("testsuites", name="resilience scenarios")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for result in results:
        suite = _suite(result)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{sum(r.wall_s for r in results):.3f}")
    return ET.ElementTree(root)


def write_junit(results: Sequence[RunResult], path: Path) -> Path:
    tree = junit_tree(results)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
