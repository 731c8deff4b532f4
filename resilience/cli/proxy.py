"""``resilience proxy``: run the Toxiproxy-compatible server.

Takes toxiproxy-server's flags unchanged (``-host -port -config -seed
-version -proxy-metrics -runtime-metrics``, also as ``--long`` forms); they
are passed through to the same parser as ``python -m resilience.proxy``.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``resilience proxy`` to app."""

    @app.command(
        "proxy",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
        help="Run the Toxiproxy-compatible fault proxy (toxiproxy-server flags; -h for help).",
    )
    def proxy(ctx: typer.Context) -> None:
        from resilience.proxy.cli import main

        raise typer.Exit(main(list(ctx.args), prog="resilience proxy"))
