"""``resilience upstream``: run the booking API stub (see resilience/upstream)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``resilience upstream`` to app."""

    @app.command(
        "upstream",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
        help="Run the booking API stub (--host, --port, --seed; -h for help).",
    )
    def upstream(ctx: typer.Context) -> None:
        from resilience.upstream.cli import main

        raise typer.Exit(main(list(ctx.args), prog="resilience upstream"))
