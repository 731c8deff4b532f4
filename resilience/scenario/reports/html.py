"""A self-contained HTML report: gate table and inline SVG charts, no external URLs.

Charts (time on x, seconds since the workload started): lookup latency
p50/p99 by path (log scale), throughput and late starts, cache hit and
fallback rates, and the breaker state as a band. Fault windows are shaded
on every chart; warm-up is greyed.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Sequence
from pathlib import Path

from resilience.scenario.gates import GateResult
from resilience.scenario.history import History, OpRecord
from resilience.scenario.runner import RunResult

__all__ = ["render_html", "write_html"]

W, H = 860, 220
ML, MR, MT, MB = 60, 120, 24, 28
PATH_COLOURS = {"cache": "#2b8a3e", "redis": "#1971c2", "db": "#e8590c", "fallback": "#c92a2a"}
BREAKER_COLOURS = {"closed": "#b2f2bb", "half_open": "#ffec99", "open": "#ffa8a8"}
Series = list[tuple[float, float]]


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


class _Frame:
    """Coordinates of one chart: x in seconds, y linear or log10."""

    def __init__(self, x_max: float, y_min: float, y_max: float, *, log: bool = False) -> None:
        self.x_max = max(x_max, 1e-9)
        self.log = log
        if log:
            y_min, y_max = math.log10(max(y_min, 1e-4)), math.log10(max(y_max, 1e-4))
        if y_max <= y_min:
            y_max = y_min + 1
        self.y_min, self.y_max = y_min, y_max

    def x(self, t: float) -> float:
        return ML + (W - ML - MR) * t / self.x_max

    def y(self, v: float) -> float:
        if self.log:
            v = math.log10(max(v, 1e-4))
        return MT + (H - MT - MB) * (1 - (v - self.y_min) / (self.y_max - self.y_min))


def _axes(frame: _Frame, y_label: str, fmt: str = "{:g}") -> list[str]:
    out = [
        f'<line x1="{ML}" y1="{H - MB}" x2="{W - MR}" y2="{H - MB}" stroke="#555"/>',
        f'<line x1="{ML}" y1="{MT}" x2="{ML}" y2="{H - MB}" stroke="#555"/>',
        f'<text x="4" y="12" font-size="11" fill="#333">{_esc(y_label)}</text>',
    ]
    steps = 6
    for i in range(steps + 1):
        t = frame.x_max * i / steps
        out.append(
            f'<text x="{frame.x(t):.1f}" y="{H - 10}" font-size="10" text-anchor="middle">'
            f"{t:.0f}s</text>"
        )
    if frame.log:
        ticks = [10**e for e in range(math.floor(frame.y_min), math.ceil(frame.y_max) + 1)]
    else:
        ticks = [frame.y_min + (frame.y_max - frame.y_min) * i / 4 for i in range(5)]
    for v in ticks:
        y = frame.y(v)
        if MT - 1 <= y <= H - MB + 1:
            out.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{W - MR}" y2="{y:.1f}" stroke="#eee"/>')
            out.append(
                f'<text x="{ML - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end">'
                f"{_esc(fmt.format(v))}</text>"
            )
    return out


def _shading(
    frame: _Frame, faults: dict[str, list[tuple[float, float]]], warmup: float
) -> list[str]:
    out = []
    if warmup > 0:
        out.append(
            f'<rect x="{ML}" y="{MT}" width="{frame.x(warmup) - ML:.1f}" height="{H - MT - MB}" '
            f'fill="#f1f3f5"><title>warm-up (excluded from gates)</title></rect>'
        )
    for name, windows in faults.items():
        for a, b in windows:
            x0, x1 = frame.x(a), frame.x(min(b, frame.x_max))
            out.append(
                f'<rect class="fault" x="{x0:.1f}" y="{MT}" width="{max(x1 - x0, 1):.1f}" '
                f'height="{H - MT - MB}" fill="#ff6b6b" fill-opacity="0.15">'
                f"<title>fault {_esc(name)}: {a:.1f}–{b:.1f}s</title></rect>"
                f'<text x="{x0 + 2:.1f}" y="{MT - 3}" font-size="10" fill="#c92a2a">'
                f"{_esc(name)}</text>"
            )
    return out


def _runs(points: Series, gap_s: float) -> list[Series]:
    """Split ``points`` where consecutive x values are more than ``gap_s`` apart (no data)."""
    runs: list[Series] = []
    for point in points:
        if runs and point[0] - runs[-1][-1][0] <= gap_s:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def _chart(
    title: str,
    series: dict[str, tuple[Series, str, str]],
    *,
    x_max: float,
    faults: dict[str, list[tuple[float, float]]],
    warmup: float,
    y_label: str,
    log: bool = False,
    y_range: tuple[float, float] | None = None,
    fmt: str = "{:g}",
    gap_s: float = float("inf"),
) -> str:
    values = [v for pts, _, _ in series.values() for _, v in pts if v is not None]
    if y_range is not None:
        lo, hi = y_range
    elif values:
        lo, hi = (min(values), max(values)) if log else (0.0, max(values) * 1.1)
    else:
        lo, hi = 0.0, 1.0
    frame = _Frame(x_max, lo, hi, log=log)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="chart">']
    parts += _shading(frame, faults, warmup)
    parts += _axes(frame, y_label, fmt)
    for i, (name, (pts, colour, dash)) in enumerate(series.items()):
        for run in _runs(pts, gap_s):
            coords = " ".join(f"{frame.x(t):.1f},{frame.y(v):.1f}" for t, v in run)
            if len(run) == 1:  # an isolated bucket: a dot, not an invisible line
                x, y = frame.x(run[0][0]), frame.y(run[0][1])
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.8" fill="{colour}"/>')
                continue
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
                f'stroke-dasharray="{dash}" points="{coords}"><title>{_esc(name)}</title>'
                "</polyline>"
            )
        ly = MT + 12 + 14 * i
        parts.append(
            f'<line x1="{W - MR + 8}" y1="{ly - 4}" x2="{W - MR + 26}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>'
            f'<text x="{W - MR + 30}" y="{ly}" font-size="10">{_esc(name)}</text>'
        )
    parts.append("</svg>")
    return f"<h3>{_esc(title)}</h3>" + "".join(parts)


def _breaker_band(
    history: History, x_max: float, faults: dict[str, list[tuple[float, float]]]
) -> str:
    frame = _Frame(x_max, 0, 1)
    h = 46
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" class="chart">']
    state, since = "closed", 0.0
    spans: list[tuple[float, float, str]] = []
    for rec in history.breaker:
        t = min(max(rec["t_us"] / 1e6, 0.0), x_max)
        spans.append((since, t, state))
        state, since = str(rec.get("to", state)), t
    spans.append((since, x_max, state))
    for a, b, s in spans:
        if b > a:
            parts.append(
                f'<rect x="{frame.x(a):.1f}" y="6" width="{frame.x(b) - frame.x(a):.1f}" '
                f'height="22" fill="{BREAKER_COLOURS.get(s, "#dee2e6")}">'
                f"<title>breaker {_esc(s)}: {a:.1f}–{b:.1f}s</title></rect>"
            )
    for name, windows in faults.items():
        for a, b in windows:
            parts.append(
                f'<rect x="{frame.x(a):.1f}" y="2" width="{max(frame.x(b) - frame.x(a), 1):.1f}" '
                f'height="3" fill="#c92a2a"><title>fault {_esc(name)}</title></rect>'
            )
    for i, (s, colour) in enumerate(BREAKER_COLOURS.items()):
        parts.append(
            f'<rect x="{ML + 90 * i}" y="33" width="10" height="10" fill="{colour}"/>'
            f'<text x="{ML + 14 + 90 * i}" y="42" font-size="10">{s}</text>'
        )
    parts.append('<text x="12" y="22" font-size="11">breaker</text></svg>')
    return "<h3>Breaker state</h3>" + "".join(parts)


def _bucketed(ops: Sequence[OpRecord], width: float, n: int) -> list[list[OpRecord]]:
    buckets: list[list[OpRecord]] = [[] for _ in range(n)]
    for o in ops:
        i = int(o.t_us / 1e6 / width)
        if 0 <= i < n:
            buckets[i].append(o)
    return buckets


def _pct(values: list[float], q: float) -> float:
    values.sort()
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def charts(history: History) -> str:
    """Every chart of the report, as HTML with inline SVG."""
    x_max = max(history.duration_s, 1e-3)
    width = max(0.5, x_max / 120)
    n = max(1, math.ceil(x_max / width))
    buckets = _bucketed(history.ops, width, n)
    faults = history.fault_windows()
    warmup = history.warmup_s
    mid = [(i + 0.5) * width for i in range(n)]
    latency: dict[str, tuple[Series, str, str]] = {}
    for path, colour in PATH_COLOURS.items():
        p50: Series = []
        p99: Series = []
        for t, bucket in zip(mid, buckets, strict=True):
            lat = [o.latency_us / 1e3 for o in bucket if o.op == "lookup" and o.path == path]
            if lat:
                p99.append((t, _pct(lat, 0.99)))
                p50.append((t, _pct(lat, 0.50)))
        if p99:
            latency[f"{path} p99"] = (p99, colour, "")
            latency[f"{path} p50"] = (p50, colour, "4 3")
    throughput: Series = [(t, len(b) / width) for t, b in zip(mid, buckets, strict=True)]
    late_tol = float(history.config.get("workload", {}).get("late_tolerance", 0.005)) * 1e6
    late: Series = [
        (t, sum(1 for o in b if o.late_us > late_tol) / width)
        for t, b in zip(mid, buckets, strict=True)
    ]
    hit: Series = []
    fallback: Series = []
    for t, b in zip(mid, buckets, strict=True):
        valid = [o for o in b if o.op == "lookup" and o.key != "invalid"]
        if valid:
            hit.append((t, sum(o.path in ("cache", "redis") for o in valid) / len(valid)))
            fallback.append((t, sum(o.outcome == "fallback" for o in valid) / len(valid)))
    chart = functools.partial(_chart, x_max=x_max, faults=faults, warmup=warmup, gap_s=width * 1.5)
    return "".join(
        [
            chart(
                "Lookup latency by path (p99 solid, p50 dashed)",
                latency,
                y_label="ms (log)",
                log=True,
                fmt="{:g}",
            ),
            chart(
                "Throughput",
                {"ops/s": (throughput, "#364fc7", ""), "late starts/s": (late, "#f08c00", "4 3")},
                y_label="per second",
                fmt="{:.0f}",
            ),
            chart(
                "Cache hit and fallback rates",
                {"hit rate": (hit, "#2b8a3e", ""), "fallback rate": (fallback, "#c92a2a", "")},
                y_label="ratio",
                y_range=(0.0, 1.0),
                fmt="{:.2f}",
            ),
            _breaker_band(history, x_max, faults),
        ]
    )


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#212529;
max-width:1000px}
table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #dee2e6;padding:4px 8px;font-size:13px}
th{background:#f8f9fa}.pass{color:#2b8a3e;font-weight:600}.fail{color:#c92a2a;font-weight:700}
.nodata,.inconclusive,.SKIPPED{color:#e67700}
.chart{width:100%;height:auto;border:1px solid #f1f3f5}
.verdict{font-size:22px;font-weight:700}.PASS{color:#2b8a3e}.FAIL{color:#c92a2a}.ERROR{color:#862e9c}
code{background:#f1f3f5;padding:1px 4px}
"""


def _verdict_class(r: GateResult) -> str:
    """The CSS class of a gate's verdict: a NO DATA that fails the run looks failed."""
    return r.status if r.passed else "fail"


def render_html(result: RunResult, history: History | None) -> str:
    """The whole report as one HTML string (no external resources)."""
    sc = result.scenario
    rows = "".join(
        f"<tr><td><code>{_esc(r.gate.gate.subject)}</code></td><td>{_esc(r.gate.phase)}</td>"
        f"<td>{_esc(r.observed_text)}</td><td>{_esc(r.target_text)}</td>"
        f"<td>{_esc(r.bound_text)}</td><td>{_esc(r.verdict_on if r.bound else '')}</td>"
        f'<td class="{_verdict_class(r)}">{_esc(r.label)}</td><td>{_esc(r.message)}</td></tr>'
        for r in result.results
    )
    problems = "".join(f"<li>{_esc(p)}</li>" for p in result.fault_errors)
    if result.error:
        problems = f"<li>{_esc(result.status)}: {_esc(result.error)}</li>" + problems
    faults = "".join(
        f"<tr><td>{_esc(f.name)}</td><td>{_esc(f.target)}</td><td>{_esc(f.kind)}</td>"
        f"<td>{f.at:g}s</td><td>{'' if f.duration is None else f'{f.duration:g}s'}</td>"
        f"<td><code>{_esc(dict(f.attributes))}</code></td></tr>"
        for f in sc.faults
    )
    body = [
        f"<h1>Scenario {_esc(sc.name)}</h1>",
        f"<p>{_esc(sc.description)}</p>",
        f'<p class="verdict {result.verdict}">{result.verdict}</p>',
        f"<p>seed {sc.seed} · rate {sc.workload.rate:g}/s · duration {sc.workload.duration:g}s "
        f"(warm-up {sc.workload.warmup:g}s) · wall {result.wall_s:.1f}s"
        f"{' · mode ' + _esc(history.meta.get('mode')) if history else ''}</p>",
        f"<ul>{problems}</ul>" if problems else "",
        "<h2>Gates</h2><table><tr><th>metric</th><th>phase</th><th>observed</th><th>target</th>"
        "<th>95 % upper bound</th><th>verdict on</th>"
        f"<th>verdict</th><th>detail</th></tr>{rows}</table>",
    ]
    if faults:
        body.append(
            "<h2>Fault timeline</h2><table><tr><th>name</th><th>target</th><th>kind</th>"
            f"<th>at</th><th>duration</th><th>attributes</th></tr>{faults}</table>"
        )
    if history is not None and history.ops:
        body.append("<h2>Charts</h2>" + charts(history))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(sc.name)} – {result.verdict}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )


def write_html(result: RunResult, history: History | None, path: Path) -> Path:
    path.write_text(render_html(result, history), encoding="utf-8")
    return path
