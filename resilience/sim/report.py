"""Reports of a tuning run: terminal table cells, JSON, and a self-contained HTML page.

The HTML page (inline CSS and SVG, no scripts): the Pareto chart of the first
two objectives (every candidate, pruned ones grey, failing red, holding green,
the front joined and ringed, settings in each point's tooltip), each
parameter's importance per objective (optuna's fANOVA, or PED-ANOVA where
fANOVA's dependency is missing), the front with every figure's spread per
scenario, and the confirmed configurations when there are some.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from resilience.sim.trial import gate_label, gates_verdict
from resilience.sim.tune import Candidate, TuneResult

__all__ = ["importances", "spread_text", "tune_html", "tune_json", "tune_table_rows"]


def spread_text(objective: Any, spread: Any) -> str:
    """``mean (low…high)`` in the objective's unit; the mean alone for one run."""
    if spread is None:
        return "–"
    if spread.n == 1 or spread.low == spread.high:
        return str(objective.format(spread.mean))
    return (
        f"{objective.format(spread.mean)} "
        f"({objective.format(spread.low)}…{objective.format(spread.high)})"
    )


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def tune_table_rows(
    result: TuneResult, candidates: Sequence[Candidate]
) -> tuple[list[str], list[list[str]]]:
    """Header and cells: settings, then each objective per scenario (spread), then verdict."""
    multi = len(result.scenarios) > 1
    header = ["#", *(p.name for p in result.params)]
    for o in result.objectives:
        if multi:
            header += [f"{o.text} [{s}]" for s in result.scenarios]
        else:
            header.append(o.text)
    header += ["runs", "gates"]
    cells = []
    for c in candidates:
        row = [str(c.number), *(_value_text(c.params[p.name]) for p in result.params)]
        for i, o in enumerate(result.objectives):
            for s in result.scenarios if multi else [None]:
                row.append(spread_text(o, c.spread(i, s)))
        runs = c.full_runs()
        if c.state == "pruned":
            prefix = [r for r in c.runs if r.until_s is not None]
            verdict = (
                f"pruned: {gates_verdict(prefix)}"
                if any(r.failed_gates for r in prefix)
                else f"pruned: {c.pruned_by[0]}"
                if c.pruned_by
                else "pruned"
            )
        elif c.state != "complete":
            verdict = c.state
        else:
            verdict = gates_verdict(runs)
        row += [str(len(runs)), verdict]
        cells.append(row)
    return header, cells


def importances(result: TuneResult) -> dict[str, dict[str, float]]:
    """Objective → parameter → importance (sums to 1), from the study's complete trials."""
    import optuna

    study = result.study
    if study is None or len(result.params) < 1:
        return {}
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 3:
        return {}
    import importlib.util

    evaluator: Any
    if importlib.util.find_spec("sklearn") is not None:  # fANOVA's random forests
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    else:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    out: dict[str, dict[str, float]] = {}
    import warnings

    warnings.filterwarnings("ignore", module="optuna")
    for i, objective in enumerate(result.objectives):

        def target(trial: Any, i: int = i, objective: Any = objective) -> float:
            return float(objective.signed(trial.values[i]))  # smaller is better

        try:
            values = optuna.importance.get_param_importances(
                study, evaluator=evaluator, target=target
            )
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue
        out[objective.text] = {k: float(v) for k, v in values.items()}
    return out


def _candidate_json(result: TuneResult, c: Candidate) -> dict[str, Any]:
    spreads: dict[str, Any] = {}
    for i, o in enumerate(result.objectives):
        per = {}
        for s in result.scenarios:
            sp = c.spread(i, s)
            per[s] = (
                None if sp is None else {"mean": sp.mean, "low": sp.low, "high": sp.high, "n": sp.n}
            )
        spreads[o.text] = per
    return {
        "number": c.number,
        "params": c.params,
        "state": c.state,
        "passed": c.passed,
        "pruned_by": c.pruned_by,
        "pessimistic": c.pessimistic(result.objectives),
        "objectives": spreads,
        "runs": [
            {
                "scenario": r.scenario,
                "seed": r.seed,
                "until_s": r.until_s,
                "status": r.status,
                "error": r.error,
                "values": r.values,
                "gates": [
                    {
                        "gate": g,
                        "status": st,
                        "label": gate_label(st, v),
                        "passed": v <= 0,
                        "observed": ob,
                        "violation": v,
                    }
                    for g, st, ob, v in r.gates
                ],
            }
            for r in c.runs
        ],
    }


def tune_json(result: TuneResult, confirmations: Sequence[Any] = ()) -> dict[str, Any]:
    """A JSON-ready description of the whole tuning run."""
    front = {c.number for c in result.front}
    return {
        "scenarios": result.scenarios,
        "params": [p.name for p in result.params],
        "objectives": [{"metric": o.text, "direction": o.direction} for o in result.objectives],
        "search": result.search,
        "trials_are": "real runs" if result.real else "simulations",
        "sampler": result.sampler,
        "seed": result.seed,
        "repeats": result.repeats,
        "workers": result.workers,
        "wall_s": result.wall_s,
        "cpu_s": result.cpu_s,
        "prefixes_s": result.prefixes,
        "trials": len(result.candidates),
        "pruned": len(result.pruned),
        "reused": result.reused,
        "front": [c.number for c in result.ranked()],
        "importance": importances(result),
        "candidates": [
            {**_candidate_json(result, c), "pareto": c.number in front} for c in result.candidates
        ],
        "confirmations": [c.to_dict() for c in confirmations],
    }


def _scale(values: Sequence[float], lo_px: float, hi_px: float) -> Any:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.05
    lo, hi = (max(lo - pad, 0.0) if lo >= 0 else lo - pad), hi + pad
    return lo, hi, lambda v: lo_px + (v - lo) / (hi - lo) * (hi_px - lo_px)


def _pareto_svg(result: TuneResult) -> str:
    objectives = result.objectives
    if len(objectives) < 2:
        return "<p>(one objective: no Pareto chart)</p>"
    ox, oy = objectives[0], objectives[1]
    points = []
    for c in result.candidates:
        values = c.pessimistic(objectives)
        if values is None:
            continue
        points.append((c, values[0], values[1]))
    if not points:
        return "<p>(no candidate with data)</p>"
    w, h, m = 640, 400, 56
    xlo, xhi, px = _scale([p[1] for p in points], m, w - 16)
    ylo, yhi, py_ = _scale([p[2] for p in points], h - m, 16)
    front = {c.number for c in result.front}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">']
    parts.append(
        f'<rect x="{m}" y="16" width="{w - m - 16}" height="{h - m - 16}" '
        'fill="#fafafa" stroke="#ccc"/>'
    )
    for frac in (0.0, 0.5, 1.0):
        xv, yv = xlo + frac * (xhi - xlo), ylo + frac * (yhi - ylo)
        parts.append(
            f'<text x="{px(xv):.1f}" y="{h - m + 16}" font-size="11" text-anchor="middle">'
            f"{html.escape(ox.format(xv))}</text>"
        )
        parts.append(
            f'<text x="{m - 4}" y="{py_(yv):.1f}" font-size="11" text-anchor="end">'
            f"{html.escape(oy.format(yv))}</text>"
        )
    parts.append(
        f'<text x="{w / 2}" y="{h - 8}" font-size="12" text-anchor="middle">'
        f"{html.escape(ox.text)} ({ox.direction[:3]})</text>"
    )
    parts.append(
        f'<text x="14" y="{h / 2}" font-size="12" transform="rotate(-90 14 {h / 2})" '
        f'text-anchor="middle">{html.escape(oy.text)} ({oy.direction[:3]})</text>'
    )
    line = sorted((px(x), py_(y)) for c, x, y in points if c.number in front)
    if len(line) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in line)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1a7f37" stroke-width="1.5"/>')
    for c, x, y in points:
        colour = "#999" if c.state == "pruned" else ("#1a7f37" if c.passed else "#cf222e")
        tip = html.escape(
            f"#{c.number} "
            + ", ".join(f"{k}={_value_text(v)}" for k, v in c.params.items())
            + f" — {c.state}"
        )
        ring = ' stroke="#000" stroke-width="2"' if c.number in front else ""
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py_(y):.1f}" r="5" fill="{colour}"{ring}>'
            f"<title>{tip}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _importance_svg(values: dict[str, float]) -> str:
    rows = sorted(values.items(), key=lambda kv: -kv[1])
    w, bar_h = 520, 22
    h = bar_h * len(rows) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">']
    for i, (name, value) in enumerate(rows):
        y = 4 + i * bar_h
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{html.escape(name)}</text>')
        parts.append(
            f'<rect x="220" y="{y + 3}" width="{max(1.0, value * 250):.1f}" '
            f'height="{bar_h - 8}" fill="#0969da"/>'
        )
        parts.append(
            f'<text x="{226 + value * 250:.1f}" y="{y + 15}" font-size="11">{value:.2f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def tune_html(result: TuneResult, confirmations: Sequence[Any] = ()) -> str:
    """The tuning run as one self-contained HTML page."""
    title = f"tuning: {', '.join(result.scenarios)}"
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        "<p>"
        + html.escape(
            f"{len(result.candidates)} {'real runs' if result.real else 'simulated trials'} "
            f"({result.search}"
            f"{', ' + result.sampler if result.search == 'optuna' else ''}, seed {result.seed}), "
            f"{len(result.pruned)} pruned early, {result.reused} proposed again (not re-run), "
            f"{len(result.feasible)} holding every gate; "
            f"noise: {result.repeats} seed(s) per front candidate; "
            f"{result.wall_s:.1f} s wall on {result.workers} worker(s)."
        )
        + "</p>",
        "<h2>Pareto front</h2>",
        "<p>Pessimistic values (the worst over seeds and scenarios). Green: holds every "
        "gate; red: a gate misses; grey: pruned on the first part of the timeline; "
        "ringed and joined: the front.</p>",
        _pareto_svg(result),
    ]
    header, cells = tune_table_rows(result, result.ranked())
    sections += ["<h2>Front (best first)</h2>", _table(header, cells)]
    imp = importances(result)
    if imp:
        sections.append("<h2>Each parameter's effect (importance per objective)</h2>")
        for name, values in imp.items():
            sections += [f"<h3>{html.escape(name)}</h3>", _importance_svg(values)]
    if confirmations:
        sections.append("<h2>Confirmed on the real stack</h2>")
        rows = []
        for conf in confirmations:
            for line in conf.lines():
                rows.append(line)
        sections.append(
            _table(
                ["#", "scenario", "metric", "simulated", "real", "real 90% interval", "verdict"],
                rows,
            )
        )
    header, cells = tune_table_rows(result, result.candidates)
    sections += ["<h2>Every trial</h2>", _table(header, cells)]
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
        "td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:right}"
        "th{background:#f6f8fa}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )
