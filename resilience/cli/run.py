"""``resilience run`` and ``resilience analyze``: chaos scenarios (the main job).

Exit codes: 0 every gate holds, 1 a gate failed, 2 bad input, an environment
that could not start, a fault that could not be controlled, or an
interrupted run (the faults are removed first).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from resilience import eventloop

__all__ = ["register"]

DEFAULT_REPORTS = Path("reports")


def _console() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def _fail(message: str, code: int = 2) -> typer.Exit:
    width = None if sys.stderr.isatty() else 200
    Console(stderr=True, highlight=False, width=width).print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def _parse_gates(texts: list[str] | None) -> list[Any] | None:
    if not texts:
        return None
    from resilience.scenario.gates import GateSyntaxError, parse_scoped_gate

    gates = []
    for text in texts:
        try:
            gates.append(parse_scoped_gate(text))
        except GateSyntaxError as exc:
            raise _fail(str(exc)) from None
    return gates


@contextlib.contextmanager
def _progress_sink(enabled: bool) -> Iterator[Any]:
    from resilience.scenario.progress import LiveProgress, PlainProgress

    if not enabled:
        yield None
        return
    sink: Any = LiveProgress() if sys.stderr.isatty() else PlainProgress()
    with sink:
        yield sink


def run(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Scenario files, directories or names "
            "(default: ./scenarios, else the shipped suite)."
        ),
    ] = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir",
            "-o",
            help="Where reports go (default: a new folder in reports/ named by time and scenario).",
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="Override every scenario's environment backend (local|docker|external)."),
    ] = None,
    gate: Annotated[
        list[str] | None,
        typer.Option("--gate", "--gates", "-g", help="Gate replacing the scenario's (repeatable)."),
    ] = None,
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Run on the virtual-time simulator instead.")
    ] = False,
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="With --simulate: dependency models (models.json written by calibrate).",
        ),
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Live progress display.")
    ] = True,
    check: Annotated[
        bool, typer.Option("--check", help="Only validate the scenario files, then exit.")
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live", help="Also show the run in a browser: serves a live page on 127.0.0.1."
        ),
    ] = False,
) -> None:
    """Run chaos scenarios and gate on the results (no arguments: the default suite)."""
    from resilience.scenario.discovery import default_suite, resolve
    from resilience.scenario.loader import ScenarioError, load_suite

    try:
        targets = resolve(paths) if paths else [default_suite()]
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    if check:
        raise typer.Exit(_check(targets, _console()))
    try:
        scenarios = load_suite(targets)
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    if backend is not None:
        if backend not in ("local", "docker", "external"):
            raise _fail(f"unknown backend {backend!r} (valid: local, docker, external)")
        scenarios = [
            s.model_copy(
                update={"environment": s.environment.model_copy(update={"backend": backend})}
            )
            for s in scenarios
        ]
    gates = _parse_gates(gate)
    console = _console()
    from resilience.scenario.suite import report_root

    if models is not None and not simulate:
        raise _fail("--models applies to simulated runs only (add --simulate)")
    model_settings = _load_models(models) if models is not None else None
    directory = report_dir or report_root(DEFAULT_REPORTS, scenarios)
    if simulate:
        raise typer.Exit(
            _run_simulated(scenarios, directory, gates, progress, console, model_settings)
        )
    if live:
        from resilience.scenario.live import LiveView

        with _progress_sink(progress) as inner, LiveView(inner=inner) as view:
            console.print(f"live view: {view.url}")
            raise typer.Exit(_run_real(scenarios, directory, gates, view, console))
    raise typer.Exit(_run_real(scenarios, directory, gates, progress, console))


def _check(targets: list[Path], console: Console) -> int:
    """``--check``: every file on its own line (ok, or each of its problems); 2 if any is bad."""
    from rich.markup import escape

    from resilience.scenario.loader import ScenarioError, check_files

    try:
        checks = check_files(targets)
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    bad = 0
    for item in checks:
        if item.scenario is not None:
            gates = len(item.scenario.scoped_gates())
            console.print(
                f"[green]ok[/] {escape(str(item.path))}: {item.scenario.name} — {gates} gates"
            )
            continue
        bad += 1
        console.print(f"[red]invalid[/] {escape(str(item.path))}:")
        for issue in item.issues:
            console.print(f"  {escape(str(issue))}")
    if bad:
        console.print(f"{bad} of {len(checks)} file(s) invalid")
    return 2 if bad else 0


def _run_real(
    scenarios: list[Any],
    directory: Path,
    gates: list[Any] | None,
    progress: Any,
    console: Console,
) -> int:
    """``progress``: show the terminal display (bool), or a sink to use for every scenario."""
    from resilience.scenario.reports import print_result, print_suite
    from resilience.scenario.suite import run_suite

    console.print(
        f"running {len(scenarios)} scenario(s): {', '.join(s.name for s in scenarios)}"
        f"  → {directory}"
    )
    _log_to_file(directory / "run.log")

    async def main() -> Any:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        handled = False
        previous = signal.getsignal(signal.SIGTERM)
        if task is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGTERM, task.cancel)
                handled = True
        try:
            return await run_suite(
                scenarios,
                directory=directory,
                gates=gates,
                progress=(
                    (lambda: _progress_sink(progress))
                    if isinstance(progress, bool)
                    else (lambda: contextlib.nullcontext(progress))
                ),
                on_result=lambda r: print_result(r, console),
            )
        finally:
            if handled:  # called in process (tests, scripts): SIGTERM goes back to whoever had it
                loop.remove_signal_handler(signal.SIGTERM)
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)

    try:
        suite = eventloop.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("[magenta]interrupted[/]: faults removed, environment torn down")
        return 2
    if len(suite.results) > 1:
        print_suite(suite.results, suite.wall_s, console)
        console.print(f"reports: {suite.directory}")
    return int(suite.exit_code)


def _log_to_file(path: Path) -> None:
    """Send the service's and backends' log records to ``path``, not to the terminal."""
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _load_models(path: Path) -> Any:
    """The fitted dependency models in ``path`` (exit code 2 when they do not load)."""
    from resilience.sim.models_file import load_models

    try:
        return load_models(path)
    except (OSError, ValueError) as exc:
        raise _fail(f"--models: {exc}") from None


def _run_simulated(
    scenarios: list[Any],
    directory: Path,
    gates: list[Any] | None,
    progress: bool,
    console: Console,
    models: Any = None,
) -> int:
    import importlib

    try:
        run_simulated = importlib.import_module("resilience.sim").run_simulated
    except (ImportError, AttributeError):
        console.print(
            "[red]error:[/] --simulate needs resilience.sim.run_simulated, "
            "which this installation does not have"
        )
        return 2
    from resilience.scenario.reports import (
        print_result,
        print_suite,
        write_reports,
        write_suite_reports,
    )

    results = []
    started = time.perf_counter()
    for scenario in scenarios:
        out = directory if len(scenarios) == 1 else directory / scenario.name
        out.mkdir(parents=True, exist_ok=True)
        with _progress_sink(progress) as sink:
            result = run_simulated(
                scenario,
                history_path=out / "history.jsonl",
                gates=gates,
                progress=sink,
                models=models,
            )
        write_reports(result, out)
        print_result(result, console)
        results.append(result)
    wall_s = time.perf_counter() - started
    if len(results) > 1:
        write_suite_reports(results, wall_s, directory)
        print_suite(results, wall_s, console)
    from resilience.scenario.reports import suite_exit_code

    return suite_exit_code(results)


def analyze(
    history: Annotated[Path, typer.Argument(help="A history.jsonl written by a run.")],
    gate: Annotated[
        list[str] | None,
        typer.Option(
            "--gate",
            "--gates",
            "-g",
            help="Gate to evaluate (repeatable); default: the run's own gates.",
        ),
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", "-o", help="Also write reports here.")
    ] = None,
) -> None:
    """Re-evaluate gates on a stored history without re-running anything."""
    from pydantic import ValidationError

    from resilience.scenario.history import HistoryError, read_history
    from resilience.scenario.metrics import evaluate_history
    from resilience.scenario.model import Scenario
    from resilience.scenario.reports import print_result, write_reports
    from resilience.scenario.runner import RunResult, implicit_gates

    try:
        hist = read_history(history)
    except HistoryError as exc:
        raise _fail(str(exc)) from None
    try:
        scenario = Scenario.model_validate(hist.config)
    except ValidationError as exc:
        raise _fail(f"{history}: the meta record holds no valid scenario ({exc})") from None
    gates = _parse_gates(gate)
    chosen = (
        gates if gates is not None else [*scenario.scoped_gates(), *implicit_gates(scenario, hist)]
    )
    status = str((hist.end or {}).get("status", "completed"))
    result = RunResult(
        scenario=scenario,
        history_path=history,
        status=status,
        error=(hist.end or {}).get("error"),
        fault_errors=list((hist.end or {}).get("fault_errors") or []),
    )
    result.results = evaluate_history(hist, chosen)
    if report_dir is not None:
        write_reports(result, report_dir)
    print_result(result, _console())
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``analyze`` to ``app``."""
    app.command("run")(run)
    app.command("analyze")(analyze)
