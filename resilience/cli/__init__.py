"""The ``resilience`` command line: one module per command group.

Each module in :data:`COMMAND_MODULES` exposes ``register(app)``; this module
only assembles them, so a command is found by its file name.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "main"]

COMMAND_MODULES = (
    "run",  # resilience run / analyze: chaos scenarios (the main job)
    "proxy",  # resilience proxy: the Toxiproxy-compatible server
    "upstream",  # resilience upstream: the booking API stub
    "environment",  # resilience up / down: throwaway PostgreSQL, Redis, proxies
    "service",  # resilience serve / migrate: the reference service
    "load",  # resilience load: Locust profiles
    "simulate",  # resilience tune / calibrate: virtual-time simulation
    "alerts",  # resilience alerts: the service's alert rules (--prometheus)
    "images",  # resilience images build / status: local images for the docker backend
    "init",  # resilience init: a starter scenario for your own service
)

app = typer.Typer(
    name="resilience",
    help="Resilience testing and chaos-simulation harness.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _name in ("root", *COMMAND_MODULES):  # root: --version
    importlib.import_module(f"{__name__}.{_name}").register(app)


def main() -> None:
    """Console-script entry point (help laid out for a terminal or not, see ``root``)."""
    from resilience.cli.root import command

    command(app)()
