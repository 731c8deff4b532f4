"""``resilience images build`` / ``status``: the docker backend's local images.

Builds PostgreSQL, Redis and fault-proxy images from Debian packages with no
registry (see :mod:`resilience.backends.images`); idempotent. The engine is
the one ``DOCKER_HOST`` names (``eval "$(.ci/docker-engine env)"`` for the
project's private one). Exit 2 with one sentence when it cannot build here.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``resilience images build|status`` to app."""
    images = typer.Typer(help="Local images for the docker backend (no registry needed).")
    app.add_typer(images, name="images")

    @images.command("build")
    def build(
        force: Annotated[
            bool, typer.Option("--force", help="rebuild even the images that are up to date")
        ] = False,
        mirror: Annotated[
            str | None, typer.Option("--mirror", help="Debian mirror for debootstrap")
        ] = None,
    ) -> None:
        """Build the base, PostgreSQL, Redis and fault-proxy images (skips what is built)."""
        from resilience.backends.errors import BackendError
        from resilience.backends.images import DEFAULT_MIRROR, build_images

        try:
            results = build_images(
                force=force,
                mirror=mirror or DEFAULT_MIRROR,
                log=lambda line: typer.echo(f"  {line}", err=True),
            )
        except BackendError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        for result in results:
            state = f"built in {result.seconds:.1f} s" if result.built else "up to date"
            typer.echo(f"{result.tag:<40} {state}")

    @images.command("status")
    def status() -> None:
        """Say which of the local images the engine has (exit 1 when any is missing)."""
        from resilience.backends.errors import BackendError
        from resilience.backends.images import LOCAL_IMAGES, missing_images

        try:
            missing = set(missing_images())
        except BackendError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        for tag in LOCAL_IMAGES.values():
            typer.echo(f"{tag:<40} {'missing' if tag in missing else 'present'}")
        raise typer.Exit(1 if missing else 0)
