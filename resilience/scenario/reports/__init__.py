"""Report writers: terminal table, JSON, JUnit XML and self-contained HTML.

:func:`write_reports` writes a run's ``report.json``, ``junit.xml`` and
``report.html`` next to its ``history.jsonl``; :func:`write_suite_reports`
writes a suite's ``summary.json``, combined ``junit.xml`` and ``report.html``
(every scenario's verdict and gates, linking to each one's page; see
:mod:`~resilience.scenario.reports.suite_html` to build it from the
``report.json`` files of several processes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from resilience.scenario.history import History, HistoryError, read_history
from resilience.scenario.reports.html import render_html, write_html
from resilience.scenario.reports.json_report import result_dict, write_json, write_suite_json
from resilience.scenario.reports.junit import junit_tree, write_junit
from resilience.scenario.reports.suite_html import write_suite_html
from resilience.scenario.reports.terminal import print_result, print_suite, suite_exit_code
from resilience.scenario.runner import RunResult

__all__ = [
    "junit_tree",
    "print_result",
    "print_suite",
    "render_html",
    "result_dict",
    "suite_exit_code",
    "write_reports",
    "write_suite_html",
    "write_suite_reports",
]


def write_reports(result: RunResult, directory: Path) -> dict[str, Path]:
    """Write the JSON, JUnit and HTML reports of one run into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    history: History | None = None
    try:
        history = read_history(result.history_path)
    except HistoryError:
        history = None
    result.report_dir = directory
    return {
        "json": write_json(result, history, directory / "report.json"),
        "junit": write_junit([result], directory / "junit.xml"),
        "html": write_html(result, history, directory / "report.html"),
    }


def write_suite_reports(
    results: Sequence[RunResult], wall_s: float, directory: Path
) -> dict[str, Path]:
    """A suite's ``summary.json``, combined ``junit.xml`` and ``report.html``."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "json": write_suite_json(results, wall_s, directory / "summary.json"),
        "junit": write_junit(results, directory / "junit.xml"),
        "html": write_suite_html(results, directory / "report.html", wall_s=wall_s),
    }
