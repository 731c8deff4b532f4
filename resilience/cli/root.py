"""The root command's own option (``--version``) and how help is laid out.

Help goes through rich in a terminal and through click's plain formatter
otherwise (a pipe, a CI log, ``less``): rich lays help out for an 80-column
console when it cannot ask a terminal and cuts long words (``reports/<times…``),
while click's formatter wraps and never cuts. In both, flags show no type tag
(typer would print ``<bool>`` beside ``--check``).
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Annotated, Any

import typer

__all__ = ["command", "register", "version"]


def version() -> str:
    """The installed distribution's version (the package's own when not installed)."""
    try:
        return metadata.version("resilience")
    except metadata.PackageNotFoundError:
        from resilience import __version__

        return __version__


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"resilience {version()}")
        raise typer.Exit(0)


def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Resilience testing and chaos-simulation harness."""


def register(app: typer.Typer) -> None:
    """Give ``app`` its ``--version`` option."""
    app.callback()(_root)


_PLAIN_WIDTH = {"terminal_width": 100, "max_content_width": 100}


def _untag_flags(command: Any) -> None:
    # Duck-typed: recent typer builds on its own copy of click's classes.
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""  # typer shows a flag's metavar instead of "<bool>"
    make_help_option = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = make_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        _untag_flags(sub)


def command(app: typer.Typer, *, terminal: bool | None = None) -> Any:
    """``app`` as a command to call, help laid out for a terminal or not (default: stdout)."""
    if terminal is None:
        terminal = sys.stdout.isatty()
    markup_mode = app.rich_markup_mode
    if not terminal:
        app.rich_markup_mode = None  # click's plain formatter
    try:
        built = typer.main.get_command(app)
    finally:
        app.rich_markup_mode = markup_mode
    _untag_flags(built)
    if not terminal:
        # Room for each command's one-line summary in the listing (click cuts it to fit).
        built.context_settings = {**built.context_settings, **_PLAIN_WIDTH}
    return built
