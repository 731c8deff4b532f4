"""The suite's ``report.html``: every scenario's verdict and gates, linking to its own page.

It is built from plain data - the dicts of :func:`~resilience.scenario.reports.
json_report.result_dict`, which is what each scenario's ``report.json``
holds - so a suite whose scenarios ran in several processes (pytest-xdist
workers) is put together from their ``report.json`` files just as well as
from the :class:`RunResult` objects of one process::

    write_suite_html([*results, Path("reports/x/worker-1/pg-down/report.json")],
                     Path("reports/x/report.html"))
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from resilience.scenario.reports.json_report import result_dict
from resilience.scenario.runner import RunResult

__all__ = ["load_suite_entry", "render_suite_html", "suite_entries", "write_suite_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#212529;
max-width:1100px}
table{border-collapse:collapse;margin:8px 0;width:100%}
td,th{border:1px solid #dee2e6;padding:4px 8px;font-size:13px;vertical-align:top;text-align:left}
th{background:#f8f9fa}.pass{color:#2b8a3e}.fail{color:#c92a2a;font-weight:700}
.no_data,.nodata,.skip,.inconclusive{color:#e67700}.error{color:#862e9c;font-weight:700}
.verdict{font-weight:700}.PASS{color:#2b8a3e}.FAIL{color:#c92a2a}.ERROR{color:#862e9c}
details summary{cursor:pointer}code{background:#f1f3f5;padding:1px 4px}
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def load_suite_entry(path: Path) -> dict[str, Any]:
    """A scenario's ``report.json`` (or the directory holding it) as a suite entry.

    The entry remembers where the scenario's ``report.html`` is
    (``report_html``), for the link.
    """
    file = path / "report.json" if path.is_dir() else path
    data: dict[str, Any] = orjson.loads(file.read_bytes())
    data.setdefault("report_html", str(file.with_name("report.html")))
    return data


def suite_entries(items: Iterable[RunResult | Path]) -> list[dict[str, Any]]:
    """One entry per scenario, from run results or ``report.json`` files (mixed freely)."""
    entries = []
    for item in items:
        if isinstance(item, RunResult):
            entry = result_dict(item, None)
            if item.report_dir is not None:
                entry["report_html"] = str(item.report_dir / "report.html")
            entries.append(entry)
        else:
            entries.append(load_suite_entry(item))
    return entries


def _verdict_counts(entries: Sequence[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[str(entry.get("verdict"))] = counts.get(str(entry.get("verdict")), 0) + 1
    return " · ".join(f'<span class="{_esc(v)}">{n} {_esc(v)}</span>' for v, n in counts.items())


def render_suite_html(
    entries: Sequence[dict[str, Any]],
    *,
    directory: Path | None = None,
    wall_s: float | None = None,
    title: str = "Resilience suite",
) -> str:
    """The suite page as one HTML string; links are relative to ``directory``."""
    worst = max((int(e.get("exit_code", 2)) for e in entries), default=0)
    verdict = {0: "PASS", 1: "FAIL"}.get(worst, "ERROR")
    rows = []
    details = []
    for entry in entries:
        name = str(entry.get("scenario"))
        link = entry.get("report_html")
        if link and directory is not None:
            link = os.path.relpath(link, directory)
        label = f'<a href="{_esc(link)}">{_esc(name)}</a>' if link else _esc(name)
        gates = entry.get("gates") or []
        failed = [g for g in gates if g.get("status") != "pass"]
        problem = entry.get("error") or ""
        rows.append(
            f'<tr><td>{label}</td><td class="verdict {_esc(entry.get("verdict"))}">'
            f"{_esc(entry.get('verdict'))}</td>"
            f"<td>{len(gates) - len(failed)} / {len(gates)}</td>"
            f"<td>{float(entry.get('wall_s') or 0):.1f}s</td>"
            f"<td>{_esc(entry.get('mode') or '')}</td>"
            f"<td>{'<br>'.join(_esc(g.get('gate')) for g in failed)}"
            f"{'<br>' if failed and problem else ''}{_esc(problem)}</td></tr>"
        )
        gate_rows = "".join(
            f"<tr><td><code>{_esc(g.get('gate'))}</code></td>"
            f"<td>{_esc(g.get('observed_text', ''))}</td><td>{_esc(g.get('target', ''))}</td>"
            f'<td class="{_esc(g.get("status"))}">{_esc(g.get("status"))}</td>'
            f"<td>{_esc(g.get('message') or '')}</td></tr>"
            for g in gates
        )
        details.append(
            f"<details{' open' if failed or problem else ''}><summary><b>{label}</b> "
            f'<span class="verdict {_esc(entry.get("verdict"))}">{_esc(entry.get("verdict"))}'
            f"</span> {_esc(entry.get('description') or '')}</summary>"
            "<table><tr><th>gate</th><th>observed</th><th>target</th><th>verdict</th>"
            f"<th>detail</th></tr>{gate_rows}</table></details>"
        )
    wall = f" · wall {wall_s:.1f}s" if wall_s is not None else ""
    body = [
        f"<h1>{_esc(title)}</h1>",
        f'<p><span class="verdict {verdict}">{verdict}</span> · {len(entries)} scenario(s): '
        f"{_verdict_counts(entries)}{wall}</p>",
        "<table><tr><th>scenario</th><th>verdict</th><th>gates passed</th><th>wall</th>"
        f"<th>mode</th><th>failed gates / error</th></tr>{''.join(rows)}</table>",
        "<h2>Gates by scenario</h2>",
        *details,
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)} – {verdict}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )


def write_suite_html(
    items: Iterable[RunResult | Path],
    path: Path,
    *,
    wall_s: float | None = None,
    title: str = "Resilience suite",
) -> Path:
    """Write the suite page for ``items`` (run results and/or ``report.json`` paths) to ``path``."""
    entries = suite_entries(items)
    path.write_text(
        render_suite_html(entries, directory=path.parent, wall_s=wall_s, title=title),
        encoding="utf-8",
    )
    return path
