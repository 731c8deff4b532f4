"""The terminal summary: one table per scenario (gate, phase, observed, target, verdict).

Durations in the observed and target columns are all in ms (one unit per
column); a recovery gate shows the time it took beside the rule and its limit.

Runs with rate gates get a ``95 % bound`` column: the Poisson upper bound of
the rate, starred when the verdict used it instead of the estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from resilience.scenario.gates import GateResult
from resilience.scenario.gates.grammar import DURATION_UNITS
from resilience.scenario.runner import RunResult

__all__ = ["print_result", "print_suite"]

_STYLE = {"pass": "green", "fail": "bold red", "nodata": "yellow", "inconclusive": "yellow"}


def gate_table(result: RunResult) -> Table:
    """The gate table of one run."""
    table = Table(title=f"{result.scenario.name}", title_justify="left", expand=False)
    table.add_column("gate", overflow="fold")
    table.add_column("phase")
    table.add_column("observed", justify="right")
    table.add_column("target", justify="right")
    bounds = any(r.bound is not None for r in result.results)
    if bounds:
        table.add_column("95 % bound", justify="right")
    table.add_column("verdict")
    for r in result.results:
        cells = [r.gate.gate.subject, str(r.gate.phase), *_value_cells(r)]
        if bounds:
            cells.append(_bound_cell(r))
        style = _STYLE[r.status] if r.passed else "bold red"
        cells.append(f"[{style}]{r.label}[/]")
        table.add_row(*cells)
    return table


def _value_cells(r: GateResult) -> tuple[str, str]:
    """Observed and target; durations always in ms, so a column has one time unit."""
    g = r.gate.gate
    if g.unit not in DURATION_UNITS or r.gate.phase.kind == "recovery" or g.ref is not None:
        return r.observed_text, r.target_text
    observed = "no data" if r.observed is None else _ms(r.observed)
    return observed, f"{g.op} {_ms(g.threshold)}"


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    if ms == int(ms) and abs(ms) < 1e9:
        return f"{int(ms)}ms"
    return f"{ms:.4g}ms" if abs(ms) < 1e4 else f"{ms:.0f}ms"


def _bound_cell(r: GateResult) -> str:
    """The upper bound, marked ``*`` when the verdict used it rather than the estimate."""
    if r.bound is None:
        return ""
    return f"{r.bound_text} *" if r.verdict_on == "upper bound" else r.bound_text


def print_result(result: RunResult, console: Console | None = None) -> None:
    """Print the table, the failures' messages, and the verdict line of one run."""
    out = console or Console()
    if result.results:
        out.print(gate_table(result))
    for r in result.results:
        if not r.passed:
            out.print(f"  [red]✗[/] {r.gate.source}: {r.message}")
        elif r.inconclusive:
            out.print(f"  [yellow]?[/] {r.gate.source}: {r.message}")
    if any(r.verdict_on == "upper bound" for r in result.results):
        out.print("  * judged on the 95 % upper bound (few events), not on the estimate")
    for problem in result.fault_errors:
        out.print(f"  [red]fault control failed:[/] {problem}")
    if result.error:
        out.print(f"  [red]{result.status}:[/] {result.error}")
    colour = {"PASS": "green", "FAIL": "red", "SKIPPED": "yellow"}.get(result.verdict, "magenta")
    where = f"  report: {result.report_dir}" if result.report_dir else ""
    out.print(
        f"[bold {colour}]{result.verdict}[/] {result.scenario.name} "
        f"({result.wall_s:.1f}s wall){where}"
    )


def print_suite(
    results: Sequence[RunResult], wall_s: float, console: Console | None = None
) -> None:
    """The one-line-per-scenario summary of a suite and its overall verdict."""
    out = console or Console()
    table = Table(title="suite", title_justify="left")
    table.add_column("scenario")
    table.add_column("gates", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("wall", justify="right")
    table.add_column("verdict")
    for r in results:
        failed = sum(1 for g in r.results if not g.passed)
        colour = {"PASS": "green", "FAIL": "red", "SKIPPED": "yellow"}.get(r.verdict, "magenta")
        table.add_row(
            r.scenario.name,
            str(len(r.results)),
            str(failed),
            f"{r.wall_s:.1f}s",
            f"[{colour}]{r.verdict}[/]",
        )
    out.print(table)
    code = suite_exit_code(results)
    verdict = {0: "[bold green]PASS[/]", 1: "[bold red]FAIL[/]"}.get(code, "[bold magenta]ERROR[/]")
    skipped = sum(1 for r in results if r.skipped)
    note = f", {skipped} SKIPPED" if skipped else ""
    out.print(f"{verdict} {len(results)} scenario(s){note} in {wall_s:.1f}s")


def suite_exit_code(results: Sequence[RunResult]) -> int:
    """2 if any run could not be done, else 1 if any gate failed, else 0.

    Skipped runs (shown as SKIPPED) do not count, unless every run was skipped.
    """
    codes = [r.exit_code for r in results if not r.skipped] or [r.exit_code for r in results]
    if not codes:
        return 2
    return 2 if 2 in codes else max(codes)
