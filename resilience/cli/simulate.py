"""``resilience tune`` and ``resilience calibrate``: the virtual-time simulator's commands.

``tune SCENARIO... --param NAME=VALUES ...`` searches service settings in
simulation (optuna, random, grid or Latin hypercube; :mod:`resilience.sim.tune`),
gates as constraints and objectives from ``--minimize``/``--maximize``; prints
the Pareto front with each figure's spread over seeds, writes JSON and an HTML
report; ``--confirm K`` re-runs the K best on the real stack and ends with the
``service:`` block to paste (exit 0), or exit 1 when none holds for real.

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


def _simulatable(scenario: Any) -> Any:
    """``scenario``, or exit 2 saying why the simulator cannot run it."""
    from resilience.sim.run import not_simulatable

    reason = not_simulatable(scenario)
    if reason is not None:
        raise _fail(f"{scenario.name}: {reason}")
    return scenario


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
        table.add_column(name, justify="left" if name == "gates" else "right")
    for cell in cells:
        table.add_row(*cell)
    console.print(table)
    if len(rows) > limit:
        console.print(f"… {len(rows) - limit} more in the JSON/HTML report")


def _objectives(minimize: list[str], maximize: list[str], scenarios: list[Any]) -> list[Any]:
    """The objectives: every --minimize, then every --maximize (defaults when none),
    in the metrics of the scenarios' target."""
    from resilience.sim.objectives import (
        DEFAULT_HTTP_OBJECTIVES,
        DEFAULT_OBJECTIVES,
        ObjectiveError,
        parse_objective,
        target_of,
    )

    targets = [target_of(s) for s in scenarios]
    kind = targets[0][0]
    operations = tuple(dict.fromkeys(op for _, ops in targets for op in ops))
    defaults = DEFAULT_OBJECTIVES if kind == "reference" else DEFAULT_HTTP_OBJECTIVES
    given = [(m, False) for m in minimize] + [(m, True) for m in maximize]
    try:
        return [
            parse_objective(text, maximize=up, kind=kind, operations=operations)
            for text, up in (given or defaults)
        ]
    except ObjectiveError as exc:
        raise _fail(str(exc)) from None


def _real_trials(scenarios: list[Any]) -> bool:
    """Whether the trials are real runs: scenarios of a team's own service, which the
    simulator cannot run (exit 2 for a mix, or for what neither way can tune)."""
    kinds = {s.target_kind for s in scenarios}
    if len(kinds) > 1:
        raise _fail(
            "tune takes scenarios of one target at a time: the reference service "
            "(simulated) or a service of your own (real runs); "
            + ", ".join(f"{s.name} is {s.target_kind}" for s in scenarios)
        )
    if kinds == {"reference"}:
        for scenario in scenarios:
            _simulatable(scenario)
        return False
    running = [s.name for s in scenarios if s.target.command is None]
    if running:
        raise _fail(
            f"{', '.join(running)}: the target is a service already running (no "
            "target.command), so its settings cannot change between trials; tuning sets "
            "env.NAME on a service the harness starts"
        )
    return True


def _real_plan(scenarios: list[Any], trials: int, repeats: int, workers: int) -> str:
    """What real trials will cost, said before they start: runs, their length, the time."""
    import math
    import os

    from resilience.sim.tune import CANDIDATES_TO_REPEAT

    width = max(1, workers or os.cpu_count() or 1)
    runs = trials * len(scenarios)
    extra = min(CANDIDATES_TO_REPEAT, trials) * (repeats - 1) * len(scenarios)
    # each run: its workload, plus about 5 s to start and stop an environment and the service
    each_s = sum(float(s.workload.duration) + 5.0 for s in scenarios) / len(scenarios)
    least = math.ceil(runs / width) * each_s
    most = math.ceil((runs + extra) / width) * each_s
    unit, scale = ("min", 60.0) if most >= 120 else ("s", 1.0)
    span = f"{least / scale:.0f}"
    again = ""
    if extra:
        again = f" + up to {extra} re-run(s) of the best with other seeds"
        span += f"–{most / scale:.0f}"
    return (
        "[bold]real runs[/] (the simulator runs the reference service only): "
        f"{runs} run(s) of about {each_s:.0f} s{again}, {width} at once: about {span} {unit}"
    )


def tune(
    scenario_paths: Annotated[
        list[Path],
        typer.Argument(help="Scenario files or names (a configuration must hold in all)."),
    ],
    param: Annotated[
        list[str],
        typer.Option(
            "--param",
            "-p",
            help="NAME=v1,v2,... (categorical), NAME=low..high[:step] or NAME=low..high:log, "
            "e.g. breaker.reset_timeout_s=1s..120s:log",
        ),
    ],
    search: Annotated[
        str, typer.Option(help="optuna (TPE/NSGA-II), random, grid (every combination) or lhs.")
    ] = "optuna",
    trials: Annotated[int, typer.Option(help="Trials of an optuna/random/lhs search.")] = 30,
    sampler: Annotated[str, typer.Option(help="optuna sampler: tpe or nsga2.")] = "tpe",
    minimize: Annotated[
        list[str] | None,
        typer.Option(help="Objective to minimise: a gate's metric, e.g. 'lookup p(95)'."),
    ] = None,
    maximize: Annotated[
        list[str] | None, typer.Option(help="Objective to maximise, e.g. cache.hit_rate.")
    ] = None,
    repeats: Annotated[
        int, typer.Option(help="Seeds per front candidate (noise: ≥ 2 re-runs the front).")
    ] = 3,
    prune: Annotated[
        bool, typer.Option(help="Prune trials failing a gate on the first part of the timeline.")
    ] = True,
    confirm: Annotated[
        int, typer.Option(help="Re-run the K best configurations on the real stack.")
    ] = 0,
    confirm_jobs: Annotated[
        int,
        typer.Option(
            help="Real confirmation runs at once, each its own environment "
            "(default: one per core, at most the runs; 1: one after another)."
        ),
    ] = 0,
    workers: Annotated[int, typer.Option(help="Local worker processes (default: all cores).")] = 0,
    cluster: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://host:8786) to run trials on.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the search (same seed, same study).")] = 0,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for tune.json and tune.html.")
    ] = Path("reports/tune"),
    top: Annotated[int, typer.Option(help="Rows shown in the terminal tables.")] = 15,
    models: Annotated[
        Path | None,
        typer.Option(help="Dependency models (models.json written by calibrate)."),
    ] = None,
) -> None:
    """Search service settings; gates are constraints, objectives yours.

    For the reference service each trial simulates every scenario; the front
    is re-run with other seeds and judged on the worst figure; --confirm K runs
    the K best for real and ends with the service: block to paste. For a
    service of your own (target:) every trial is a real run with --param
    env.NAME=... in its environment, ending with the target: env: block.
    """
    import warnings

    from resilience.sim.real_run import check_env_param
    from resilience.sim.space import ParamError, combinations, parse_param
    from resilience.sim.tune import tune as run_tune

    warnings.filterwarnings("ignore", module="optuna")  # experimental-API notices
    console = _console()
    scenarios = [_load(p) for p in scenario_paths]
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise _fail(f"a scenario is given twice: {', '.join(names)}")
    real = _real_trials(scenarios)
    if real:
        refused = [
            (confirm > 0, "--confirm: the trials are real runs already"),
            (models is not None, "--models: the trials are real runs, not simulated"),
            (cluster is not None, "--cluster: real trials run on this machine"),
        ]
        for given, why in refused:
            if given:
                raise _fail(f"{why} (a service of your own is tuned with real runs)")
    if search not in ("optuna", "random", "grid", "lhs"):
        raise _fail(f"--search {search!r}: use optuna, random, grid or lhs")
    if sampler not in ("tpe", "nsga2"):
        raise _fail(f"--sampler {sampler!r}: use tpe or nsga2")
    if trials < 1 or repeats < 1 or confirm < 0 or confirm_jobs < 0:
        raise _fail(
            "--trials and --repeats must be at least 1, --confirm and --confirm-jobs at least 0"
        )
    objectives = _objectives(minimize or [], maximize or [], scenarios)
    try:
        if real:
            params = [parse_param(p) for p in param]
            for p in params:
                check_env_param(p.name)
        else:
            fields = _config_fields()
            params = [parse_param(p, fields) for p in param]
        if len({p.name for p in params}) != len(params):
            raise ParamError("a setting is given twice with --param")
        if search in ("grid", "lhs"):
            combos = combinations(params, sample=search, samples=trials, seed=seed)  # type: ignore[arg-type]
        else:
            combos = combinations(params, sample="random", samples=2, seed=seed)
    except ParamError as exc:
        raise _fail(str(exc)) from None
    from resilience.service.config import ServiceConfig

    for scenario in [] if real else scenarios:
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
    count = len(combos) if search == "grid" else trials
    console.print(
        f"tuning [bold]{', '.join(names)}[/]: {count} trial(s) ({search}) of "
        f"{', '.join(p.name for p in params) or 'no parameter'}; objectives: "
        + ", ".join(f"{o.direction[:3]} {o.text}" for o in objectives)
    )
    if real:
        console.print(_real_plan(scenarios, count, repeats, workers))
    last = [""]

    def progress(message: str) -> None:
        if message != last[0]:
            last[0] = message
            print(f"  {message}", file=sys.stderr, flush=True)

    from resilience.sim.cluster import ClusterError, dask_executor, local_pool

    try:
        pool = dask_executor(cluster) if cluster else local_pool(workers or None)
        with pool as (executor, width):
            if cluster:
                console.print(f"on the Dask cluster at {cluster}: {width} worker thread(s)")
            result = run_tune(
                scenarios,
                params,
                objectives,
                search=search,  # type: ignore[arg-type]
                trials=count,
                seed=seed,
                sampler=sampler,
                repeats=repeats,
                prune=prune,
                executor=executor,
                width=width,
                models=model_settings,
                progress=progress,
                real=real,
            )
    except ClusterError as exc:
        raise _fail(str(exc)) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    misses = [] if result.front else result.nearest_misses()
    if misses:
        title, shown = "No configuration holds every gate; the nearest misses", misses
    else:
        title, shown = "Pareto front (pessimistic over seeds and scenarios)", result.ranked()
    _print_rows(console, title, result, shown, top)
    pruned = len(result.pruned)
    console.print(
        f"{len(result.candidates)} trials in {result.wall_s:.1f} s on {result.workers} "
        f"worker(s); {pruned} pruned early"
        + (
            f" (first {', '.join(f'{v:g} s of {k}' for k, v in result.prefixes.items())})"
            if result.prefixes
            else ""
        )
        + (f", {result.reused} proposed again (not re-run)" if result.reused else "")
        + f"; {len(result.feasible)} hold every gate"
    )
    confirmations: list[Any] = []
    if confirm > 0:
        from resilience.sim.confirm import confirm as run_confirm

        best = result.best(confirm)  # the front first, then the fronts behind it
        if not best:
            console.print(
                "[red]no configuration holds every gate in simulation: nothing to confirm[/]"
            )
        else:
            confirmations = run_confirm(
                scenarios, best, objectives, output, jobs=confirm_jobs, say=console.print
            )
            _print_confirmations(console, confirmations)
    output.mkdir(parents=True, exist_ok=True)
    from resilience.sim.report import tune_html, tune_json

    (output / "tune.json").write_text(
        json.dumps(tune_json(result, confirmations), indent=2, default=str)
    )
    (output / "tune.html").write_text(tune_html(result, confirmations))
    console.print(f"reports in {output}/tune.json and {output}/tune.html")
    if confirm > 0:
        raise typer.Exit(_print_recommendation(console, result, confirmations))
    if not result.front:
        console.print("[red]no configuration holds every gate[/]")
        raise typer.Exit(1)
    if real:
        from resilience.sim.real_run import settings_block

        (winner,) = result.best(1)
        runs = len(winner.runs)
        console.print(
            f"\n[bold]recommendation[/]: configuration #{winner.number}, every gate held in "
            f"{runs} real run{'s' if runs != 1 else ''}; paste into the scenario "
            "(or set these in the service's own environment):\n"
        )
        console.print(settings_block(winner.params).rstrip(), markup=False)


def _print_confirmations(console: Console, confirmations: list[Any]) -> None:
    table = Table(title="simulated vs real", title_justify="left")
    for name in (
        "#",
        "scenario",
        "metric",
        "simulated (spread)",
        "real",
        "real 90% interval",
        "verdict",
    ):
        table.add_column(name, justify="left" if name in ("scenario", "metric") else "right")
    for conf in confirmations:
        for line in conf.lines():
            table.add_row(*line)
    console.print(table)


def _print_recommendation(console: Console, result: Any, confirmations: list[Any]) -> int:
    from resilience.sim.confirm import recommendation

    chosen, block = recommendation(confirmations)
    if chosen is None:
        console.print(
            "[red]no recommendation:[/] no confirmed configuration held every gate "
            "on the real stack"
        )
        return 1
    c = chosen.candidate
    console.print(
        f"\n[bold]recommendation[/]: configuration #{c.number}; "
        "paste into the scenario or the service's settings:\n"
    )
    console.print(block.rstrip(), markup=False)
    console.print("\nevidence:")
    for i, o in enumerate(result.objectives):
        for side in chosen.real:
            spread = c.spread(i, side.scenario)
            console.print(
                f"  {o.text} ({side.scenario}): simulated "
                f"{'–' if spread is None else o.format(spread.mean)} over "
                f"{0 if spread is None else spread.n} seed(s), "
                f"real {o.format(side.values[i] if side.values else None)} "
                f"({chosen.verdict(i, side)})"
            )
    for side in chosen.real:
        console.print(
            f"  gates on the real stack ({side.scenario}): every one holds ({len(side.gates)})"
        )
        for g, status, observed in side.gates:
            console.print(f"    {status:>17}  {g}  (observed {observed})", markup=False)
    return 0


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
    scenario = _simulatable(_load(scenario_path))
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
