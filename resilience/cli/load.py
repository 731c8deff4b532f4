"""``resilience load PROFILE``: a Locust profile against a fresh environment and service
(the reference service, or the profile's HTTP target; ``--command``/``--url`` override it).

The work is in :mod:`resilience.loadrun`; this module only translates options.
Locust itself runs as a subprocess (``resilience`` never imports it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``load``."""

    @app.command(
        "load",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def load(
        ctx: typer.Context,
        profile: Annotated[
            str, typer.Argument(help="profile name (loadtests/profiles/NAME.yaml) or file")
        ],
        workers: Annotated[
            int | None,
            typer.Option(min=1, help="uvicorn workers of the service (default: the profile's)"),
        ] = None,
        processes: Annotated[
            int | None,
            typer.Option(
                min=-1, help="Locust worker processes, -1 one per core (default: the profile's)"
            ),
        ] = None,
        backend: Annotated[
            str, typer.Option(help="environment backend: auto, local, docker or external")
        ] = "auto",
        report_dir: Annotated[
            Path, typer.Option(help="Locust CSV/HTML and gates.json/gates.junit.xml go here")
        ] = Path("reports/load"),
        url: Annotated[
            str | None,
            typer.Option(
                help="load an already running service; start no environment "
                "(with --command: the target's URL, {port} allowed)"
            ),
        ] = None,
        command: Annotated[
            str | None,
            typer.Option(
                "--command",
                help="the HTTP target's command, e.g. 'python app.py {port}' "
                "(replaces the profile's target.command)",
            ),
        ] = None,
        toxiproxy_url: Annotated[
            str | None, typer.Option(help="with --url: Toxiproxy API for the fault timeline")
        ] = None,
        locustfile: Annotated[
            Path | None, typer.Option(help="default: ./loadtests/locustfile.py")
        ] = None,
    ) -> None:
        """Run a load profile headless; exit 0 when every gate holds, 1 if one fails, 2 on errors.

        Arguments after the options go to Locust unchanged, e.g.
        ``resilience load smoke -- --shape-params users=50 --only-summary``.
        """
        from resilience.loadrun import LoadRun, run_load

        try:
            code = run_load(
                LoadRun(
                    profile=profile,
                    locustfile=locustfile,
                    backend=backend,
                    service_workers=workers,
                    processes=processes,
                    report_dir=report_dir,
                    url=url,
                    toxiproxy_url=toxiproxy_url,
                    locust_args=list(ctx.args),
                    command=command,
                )
            )
        except (FileNotFoundError, ValueError) as exc:  # LoadSetupError and ScenarioError too
            typer.echo(f"resilience load: {exc}", err=True)
            raise typer.Exit(2) from None
        raise typer.Exit(code)
