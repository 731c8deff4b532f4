"""The suite's report.html: every scenario's verdict and gates, links to each scenario's page."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from resilience.cli import app
from resilience.scenario.reports.suite_html import suite_entries, write_suite_html

SCENARIO = """\
name: {name}
description: a short steady run, {name}
seed: 5
workload:
  duration: 6s
  rate: 40
  warmup: 1s
  keys: {{catalogue_size: 30}}
gates:
  - errors == 0
  - {gate}
steady_state: {{probes: 3, timeout: 10s}}
"""


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def _links(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    return parser.hrefs


def _suite(tmp_path: Path) -> Path:
    directory = tmp_path / "suite"
    directory.mkdir()
    (directory / "a.yaml").write_text(SCENARIO.format(name="holds", gate="lookup.db avg < 5s"))
    (directory / "b.yaml").write_text(SCENARIO.format(name="breaks", gate="lookup.db avg < 1us"))
    return directory


def test_a_suite_run_writes_a_report_html_linking_each_scenarios_page(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    result = CliRunner().invoke(
        app, ["run", "--simulate", "--no-progress", str(_suite(tmp_path)), "-o", str(out)]
    )
    assert result.exit_code == 1, result.output
    page = (out / "report.html").read_text()
    assert set(_links(page)) == {"holds/report.html", "breaks/report.html"}
    for href in _links(page):
        assert (out / href).is_file()
    assert re.search(r"<title>Resilience suite – FAIL</title>", page)
    assert "1 PASS" in page
    assert "1 FAIL" in page
    assert "lookup.db avg &lt; 1us" in page  # the failed gate is named
    assert page.count("<code>errors == 0</code>") == 2  # every gate of every scenario


def test_the_suite_page_can_be_built_from_report_json_files_of_other_processes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "reports"
    CliRunner().invoke(
        app, ["run", "--simulate", "--no-progress", str(_suite(tmp_path)), "-o", str(out)]
    )
    # As if two xdist workers had each written one scenario's folder.
    merged = tmp_path / "merged"
    for worker, name in (("gw0", "holds"), ("gw1", "breaks")):
        shutil.copytree(out / name, merged / worker / name)
    reports = [merged / "gw0" / "holds" / "report.json", merged / "gw1" / "breaks"]
    assert [e["scenario"] for e in suite_entries(reports)] == ["holds", "breaks"]
    page = write_suite_html(reports, merged / "report.html", wall_s=12.5).read_text()
    assert _links(page) == ["gw0/holds/report.html", "gw1/breaks/report.html"] * 2
    assert "wall 12.5s" in page
    assert "FAIL" in page
