"""Reports of a tuning run: terminal tables, JSON, and HTML with a Pareto chart.

The HTML page is self-contained (inline CSS and SVG, no scripts): a scatter
of every combination on the first two Pareto metrics, the front drawn as a
line and ringed, passing combinations green and failing ones red, the third
metric in each point's tooltip; then the full table.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from resilience.sim.tune import TuneResult, TuneRow

__all__ = ["format_metric", "tune_html", "tune_json", "tune_table_rows"]

_SHOWN = (
    "fallback_rate",
    "success_rate",
    "hit_rate",
    "p95_ms",
    "p99_ms",
    "opens_per_hour",
    "opens_per_hour_ub",
)


def format_metric(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    if name.endswith("_rate"):
        return f"{value * 100:.2f}%"
    if name.endswith("_ms"):
        return f"{value:.2f}"
    if name.startswith("opens_per_hour"):
        return f"{value:.2f}"
    return f"{value:g}"


def _params_text(row: TuneRow) -> list[str]:
    return [str(v) for v in row.params.values()]


def tune_table_rows(
    result: TuneResult, rows: Sequence[TuneRow]
) -> tuple[list[str], list[list[str]]]:
    """Header and cells for a terminal table of ``rows``."""
    header = [p.rsplit(".", 1)[-1] for p in result.params] + [*_SHOWN, "rate 95%", "gates"]
    cells = []
    for row in rows:
        if row.status != "completed":
            verdict = f"{row.status}: {row.error or ''}"[:60]
        else:
            failed = [g for g, s, _ in row.gates if s != "pass"]
            verdict = "PASS" if not failed else f"FAIL {len(failed)}"
        confident = "–" if not row.rate_bounds else ("yes" if row.confident else "no")
        cells.append(
            [
                *_params_text(row),
                *(format_metric(m, row.metrics.get(m)) for m in _SHOWN),
                confident,
                verdict,
            ]
        )
    return header, cells


def tune_json(result: TuneResult) -> dict[str, Any]:
    """A JSON-ready description of the whole tuning run."""

    def row(r: TuneRow) -> dict[str, Any]:
        return {
            "params": r.params,
            "metrics": r.metrics,
            "passed": r.passed,
            "status": r.status,
            "error": r.error,
            "gates": [{"gate": g, "status": s, "observed": o} for g, s, o in r.gates],
            "rate_bounds": r.rate_bounds,
            "confident": r.confident,
        }

    front = {id(r) for r in result.front}
    return {
        "scenario": result.scenario,
        "params": result.params,
        "objective": result.objective,
        "pareto_metrics": result.pareto_metrics,
        "workers": result.workers,
        "wall_s": result.wall_s,
        "rows": [{**row(r), "pareto": id(r) in front} for r in result.rows],
    }


def _scale(values: Sequence[float], lo_px: float, hi_px: float) -> tuple[float, float, Any]:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad

    def to_px(v: float) -> float:
        return lo_px + (v - lo) / (hi - lo) * (hi_px - lo_px)

    return lo, hi, to_px


def _svg(result: TuneResult) -> str:
    metrics = result.pareto_metrics
    if len(metrics) < 2:
        return "<p>The Pareto chart needs two metrics.</p>"
    mx, my = metrics[0], metrics[1]
    points = [
        r for r in result.rows if r.metrics.get(mx) is not None and r.metrics.get(my) is not None
    ]
    if not points:
        return "<p>No combination produced both chart metrics.</p>"
    width, height, left, bottom, top, right = 720, 440, 70, 50, 20, 20
    xs = [float(r.metrics[mx]) for r in points]  # type: ignore[arg-type]
    ys = [float(r.metrics[my]) for r in points]  # type: ignore[arg-type]
    x_lo, x_hi, fx = _scale(xs, left, width - right)
    y_lo, y_hi, fy = _scale(ys, height - bottom, top)
    front = result.front
    front_ids = {id(r) for r in front}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Pareto front">',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" '
        f'height="{height - top - bottom}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for i in range(5):
        xv = x_lo + (x_hi - x_lo) * i / 4
        yv = y_lo + (y_hi - y_lo) * i / 4
        parts.append(
            f'<text x="{fx(xv):.1f}" y="{height - bottom + 18}" font-size="11" '
            f'text-anchor="middle">{html.escape(format_metric(mx, xv))}</text>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{fy(yv) + 4:.1f}" font-size="11" '
            f'text-anchor="end">{html.escape(format_metric(my, yv))}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" font-size="13" '
        f'text-anchor="middle">{html.escape(mx)} (better: {_dir(mx)})</text>'
    )
    parts.append(
        f'<text x="14" y="{(top + height - bottom) / 2}" font-size="13" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})">'
        f"{html.escape(my)} (better: {_dir(my)})</text>"
    )
    from resilience.sim.tune import pareto_front

    # The line joins the front of the two plotted metrics; rings mark the full front.
    line = sorted(
        (float(r.metrics[mx]), float(r.metrics[my]))  # type: ignore[arg-type]
        for r in pareto_front(points, [mx, my])
    )
    if len(line) > 1:
        path = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in line)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f4e99" stroke-width="1.5"/>')
    for row, x, y in zip(points, xs, ys, strict=True):
        colour = "#2e8b57" if row.passed else "#c0392b"
        tip = ", ".join(f"{k}={v}" for k, v in row.params.items())
        extra = "; ".join(f"{m}={format_metric(m, row.metrics.get(m))}" for m in metrics)
        ring = (
            f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="8" fill="none" '
            'stroke="#1f4e99" stroke-width="2"/>'
            if id(row) in front_ids
            else ""
        )
        parts.append(
            f"<g><title>{html.escape(tip)} — {html.escape(extra)} — "
            f"{'pass' if row.passed else 'fail'}</title>{ring}"
            f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="5" fill="{colour}" '
            'fill-opacity="0.8"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _dir(metric: str) -> str:
    from resilience.sim.tune import METRIC_DIRECTIONS

    return "lower" if METRIC_DIRECTIONS[metric] == "min" else "higher"


def tune_html(result: TuneResult) -> str:
    """The self-contained HTML report of a tuning run."""
    header, cells = tune_table_rows(result, result.rows)
    front_ids = {id(r) for r in result.front}
    head = "".join(
        f"<th>{html.escape(h)}</th>"
        for h in [*header, "95 % rate bounds", "failed gates", "pareto"]
    )
    body = []
    for row, cell in zip(result.rows, cells, strict=True):
        klass = "pass" if row.passed else "fail"
        failed = "; ".join(g for g, s, _ in row.gates if s != "pass")
        bounds = "; ".join(
            f"{b['gate']}: ≤ {b['upper']:.3g} ({'ok' if b['confident'] else 'not shown'})"
            for b in row.rate_bounds
        )
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in [*cell, bounds, failed])
        star = "★" if id(row) in front_ids else ""
        body.append(f'<tr class="{klass}">{tds}<td>{star}</td></tr>')
    summary = (
        f"{len(result.rows)} combinations, {len(result.passing)} pass every gate, "
        f"{len(result.front)} on the Pareto front of "
        f"{', '.join(result.pareto_metrics)}; sorted by {result.objective}; "
        f"{result.wall_s:.1f} s on {result.workers} worker(s)."
    )
    data = html.escape(json.dumps(tune_json(result), default=str))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Tuning: {html.escape(result.scenario)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ddd; padding: 3px 7px; text-align: right; }}
th {{ background: #f0f0f0; }}
tr.pass td:nth-last-child(4) {{ color: #2e8b57; }}
tr.fail td:nth-last-child(4) {{ color: #c0392b; }}
td:nth-last-child(2), td:nth-last-child(3) {{ text-align: left; }}
</style></head><body>
<h1>Tuning: {html.escape(result.scenario)}</h1>
<p>{html.escape(summary)}</p>
<h2>Pareto front</h2>
<p>Green: passes every gate; red: fails one. Ringed: the Pareto front of all its
metrics; the line joins the front of the two plotted ones. Hover a point for its
settings.</p>
{_svg(result)}
<h2>All combinations</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{"".join(body)}
</tbody></table>
<script type="application/json" id="tune-data">{data}</script>
</body></html>
"""
