"""``resilience tune`` and ``resilience calibrate``: the virtual-time simulator's commands.

``tune SCENARIO --param NAME=VALUES ...`` simulates the scenario for every
combination of service settings (or a random / Latin-hypercube sample), in
parallel, and prints the table sorted by the objective, the combinations that
pass every gate and the Pareto front; it writes JSON and an HTML report with
the Pareto chart. ``--validate N`` re-runs the best N on the real stack.

``calibrate SCENARIO`` runs the scenario on the real stack and in simulation
and prints the differences (rates in points, latency percentiles relative,
breaker opens). Exit codes: 0 done (and for calibrate, within the targets),
1 outside the calibration targets, 2 bad input or a stack that cannot start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]


def _console() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _fail(message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True, highlight=False, width=200).print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def _load(path: Path) -> Any:
    from resilience.scenario.discovery import resolve
    from resilience.scenario.loader import load_scenario

    try:
        [resolved] = resolve([path])  # a file, or a scenario's name
        return load_scenario(resolved)
    except (OSError, ValueError) as exc:  # ScenarioError is an InvalidInput (a ValueError)
        raise _fail(str(exc)) from None


def _config_fields() -> dict[str, list[str]]:
    from resilience.service.config import ServiceConfig

    config = ServiceConfig()
    return {
        name: list(type(getattr(config, name)).model_fields) for name in type(config).model_fields
    }


def _print_rows(console: Console, title: str, result: Any, rows: list[Any], limit: int) -> None:
    from resilience.sim.report import tune_table_rows

    header, cells = tune_table_rows(result, rows[:limit])
    table = Table(title=title, title_justify="left")
    for name in header:
        table.add_column(name, justify="right" if name != "gates" else "left")
    for cell in cells:
        table.add_row(*cell)
    console.print(table)
    if len(rows) > limit:
        console.print(f"… {len(rows) - limit} more in the JSON/HTML report")


def tune(
    scenario_path: Annotated[Path, typer.Argument(help="The scenario: a YAML file, or a name.")],
    param: Annotated[
        list[str],
        typer.Option(
            "--param",
            "-p",
            help="NAME=v1,v2,... or NAME=low..high[:step], e.g. breaker.failure_threshold=3,5,8",
        ),
    ],
    sample: Annotated[
        str, typer.Option(help="grid (every combination), random or lhs (Latin hypercube).")
    ] = "grid",
    samples: Annotated[int, typer.Option(help="Combinations to draw with random/lhs.")] = 20,
    objective: Annotated[
        str,
        typer.Option(help="Metric to sort by (optionally min:/max:), e.g. fallback_rate, p99_ms."),
    ] = "fallback_rate",
    pareto: Annotated[
        str, typer.Option(help="Comma-separated metrics of the Pareto front.")
    ] = "fallback_rate,p99_ms,opens_per_hour",
    workers: Annotated[int, typer.Option(help="Worker processes (default: all cores).")] = 0,
    validate: Annotated[
        int, typer.Option(help="Re-run the best N combinations on the real stack.")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the random/lhs sampling.")] = 0,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for tune.json and tune.html.")
    ] = Path("reports/tune"),
    top: Annotated[int, typer.Option(help="Rows shown in the terminal table.")] = 20,
    models: Annotated[
        Path | None,
        typer.Option(help="Dependency models (models.json written by calibrate)."),
    ] = None,
) -> None:
    """Simulate a scenario for many service settings and report the best ones."""
    from resilience.sim.space import ParamError, combinations, parse_param
    from resilience.sim.tune import tune as run_tune

    console = _console()
    scenario = _load(scenario_path)
    if sample not in ("grid", "random", "lhs"):
        raise _fail(f"--sample {sample!r}: use grid, random or lhs")
    fields = _config_fields()
    try:
        params = [parse_param(p, fields) for p in param]
        combos = combinations(params, sample=sample, samples=samples, seed=seed)  # type: ignore[arg-type]
    except ParamError as exc:
        raise _fail(str(exc)) from None
    from resilience.service.config import ServiceConfig

    base = ServiceConfig().with_overrides(scenario.service)
    for combo in combos[:1] + combos[-1:]:
        try:
            base.with_overrides(combo)
        except ValueError as exc:
            raise _fail(f"a combination is not a valid configuration: {exc}") from None
    model_settings = None
    if models is not None:
        from resilience.sim.models_file import load_models

        try:
            model_settings = load_models(models)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    pareto_metrics = [m.strip() for m in pareto.split(",") if m.strip()]
    console.print(
        f"tuning [bold]{scenario.name}[/]: {len(combos)} combination(s) of "
        f"{', '.join(p.name for p in params) or 'no parameter'} "
        f"({scenario.workload.duration:g} s simulated each)"
    )

    def progress(done: int, total: int, row: Any) -> None:
        if sys.stderr.isatty() or done == total or done % max(1, total // 10) == 0:
            print(f"  {done}/{total} simulated", file=sys.stderr, flush=True)

    try:
        result = run_tune(
            scenario,
            combos,
            workers=workers or None,
            objective=objective,
            pareto=pareto_metrics,
            models=model_settings,
            progress=progress,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    from resilience.sim.report import tune_html, tune_json

    _print_rows(console, f"sorted by {result.objective}", result, result.rows, top)
    _print_rows(console, "pass every gate", result, result.passing, top)
    _print_rows(
        console, f"Pareto front ({', '.join(result.pareto_metrics)})", result, result.front, top
    )
    output.mkdir(parents=True, exist_ok=True)
    (output / "tune.json").write_text(json.dumps(tune_json(result), indent=2, default=str))
    (output / "tune.html").write_text(tune_html(result))
    console.print(
        f"{len(result.rows)} combinations in {result.wall_s:.1f} s on {result.workers} "
        f"worker(s); reports in {output}/tune.json and {output}/tune.html"
    )
    if validate > 0:
        from resilience.sim.calibrate import validate_rows

        best = [r for r in result.rows if r.status == "completed"][:validate]
        raise typer.Exit(validate_rows(scenario, best, console, output))


def calibrate(
    scenario_path: Annotated[Path, typer.Argument(help="The scenario: a YAML file, or a name.")],
    real_history: Annotated[
        Path | None,
        typer.Option(help="Use this real run's history instead of running the real stack."),
    ] = None,
    fit: Annotated[
        bool,
        typer.Option(help="Fit the models to the real run (empirical DB/Redis latency) first."),
    ] = True,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for the histories and JSON.")
    ] = Path("reports/calibrate"),
    sim_seeds: Annotated[
        int,
        typer.Option(
            min=1,
            max=1000,
            help="Simulate with this many seeds of the models (toxicity rolls, service "
            "times): the median is compared and each figure gets the seeds' range.",
        ),
    ] = 1,
) -> None:
    """Run a scenario for real and in simulation; print how far apart they are.

    The fitted models are saved as models.json in the output directory
    (``resilience tune --models`` reuses them).
    """
    from resilience.sim.calibrate import calibrate as run_calibration
    from resilience.sim.calibrate import print_calibration

    console = _console()
    scenario = _load(scenario_path)
    output.mkdir(parents=True, exist_ok=True)
    try:
        report = run_calibration(
            scenario,
            output=output,
            real_history=real_history,
            fit=fit,
            console=console,
            sim_seeds=sim_seeds,
        )
    except (RuntimeError, OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    print_calibration(report, console)
    (output / "calibration.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))
    raise typer.Exit(0 if report.within_targets else 1)


def register(app: typer.Typer) -> None:
    """Add ``tune`` and ``calibrate`` to the ``resilience`` command."""
    app.command(name="tune")(tune)
    app.command(name="calibrate")(calibrate)
