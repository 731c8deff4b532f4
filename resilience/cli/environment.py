"""``resilience up`` / ``resilience down``: a throwaway environment from the shell.

``up`` starts PostgreSQL, Redis and the two proxies, prints their URLs (or
JSON with ``--json``, or ``export RESILIENCE_*=...`` lines with ``--env`` so
that ``eval "$(resilience up -d --env)"`` points later runs at them) and
keeps them until Ctrl-C or SIGTERM. ``up --detach`` leaves them running in a
background process recorded in ``<state dir>/up.json``. ``down`` stops every
environment of this user it finds in the state dir: orphans (owner dead), a
detached or foreground ``up``, and with ``--all`` any other live one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

_DETACH_TIMEOUT_S = 120.0


def _state_file() -> Path:
    from resilience.backends.state import StateDir

    return StateDir().root / "up.json"


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, never reaped where pid 1 does not, is not running)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return raw[raw.rindex(")") + 2 :].split()[0] not in ("Z", "X")


def _print_urls(urls: dict[str, str], *, as_json: bool, as_env: bool, backend: str) -> None:
    if as_json:
        typer.echo(json.dumps({"backend": backend, **urls}))
        return
    if as_env:
        from resilience.backends import EnvironmentURLs

        # With RESILIENCE_BACKEND=external, later commands and pytest reuse these servers.
        for key, value in {
            "RESILIENCE_BACKEND": "external",
            **EnvironmentURLs(**urls).as_env(),
        }.items():
            typer.echo(f"export {key}='{value}'")
        return
    width = max(len(k) for k in urls)
    typer.echo(f"environment ({backend}) is up:")
    for key, value in urls.items():
        typer.echo(f"  {key:<{width}}  {value}")


def up(
    backend: Annotated[
        str, typer.Option("--backend", "-b", help="auto | local | docker | external")
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="print the URLs as one JSON object")] = (
        False
    ),
    as_env: Annotated[
        bool, typer.Option("--env", help="print RESILIENCE_* export lines for the URLs")
    ] = False,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="run in the background; stop with `down`")
    ] = False,
    schema: Annotated[
        bool, typer.Option("--schema/--no-schema", help="apply the database schema")
    ] = True,
    seed: Annotated[
        int | None, typer.Option("--seed", help="also seed the catalogue with this seed")
    ] = None,
    state_file: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> None:
    """Start PostgreSQL, Redis and their fault proxies; print the URLs; keep until Ctrl-C."""
    if detach:
        _detach(backend, as_json=as_json, as_env=as_env, schema=schema, seed=seed)
        return
    from resilience.backends import BackendError, Environment
    from resilience.backends.local import LocalBackend

    env = Environment(backend)
    try:
        try:
            if isinstance(env.backend, LocalBackend):
                env.backend.set_purpose("up")
            urls = env.start()
        except BackendError as exc:
            from resilience.backends import BackendUnavailable, ConfigurationError

            typer.echo(f"error: {exc}", err=True)
            # The backend cannot run here or is misconfigured: bad input, exit 2.
            unusable = isinstance(exc, BackendUnavailable | ConfigurationError)
            raise typer.Exit(2 if unusable else 1) from None
        if schema or seed is not None:
            from resilience.db.schema import apply_schema

            apply_schema(urls.postgres_direct)
        if seed is not None:
            from resilience.db.catalogue import seed_catalogue

            seed_catalogue(urls.postgres_direct, seed=seed)
        _print_urls(urls.as_dict(), as_json=as_json, as_env=as_env, backend=env.backend_name)
        if state_file is not None:
            record = {"pid": os.getpid(), "backend": env.backend_name, "urls": urls.as_dict()}
            tmp = state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(record))
            tmp.replace(state_file)
        elif not as_json:
            typer.echo("press Ctrl-C to stop")
        sys.stdout.flush()
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        env.stop()
        if state_file is not None:
            state_file.unlink(missing_ok=True)


def _detach(backend: str, *, as_json: bool, as_env: bool, schema: bool, seed: int | None) -> None:
    state_file = _state_file()
    if state_file.exists():
        record = json.loads(state_file.read_text())
        if _pid_alive(int(record["pid"])):
            typer.echo(
                f"error: an environment is already up (pid {record['pid']}); "
                "run `resilience down` first",
                err=True,
            )
            raise typer.Exit(1)
        state_file.unlink()
    log_path = state_file.with_name("up.log")
    argv = [sys.executable, "-c", "from resilience.cli import main; main()", "up",
            "--backend", backend, "--json", "--state-file", str(state_file)]  # fmt: skip
    argv.append("--schema" if schema else "--no-schema")
    if seed is not None:
        argv += ["--seed", str(seed)]
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + _DETACH_TIMEOUT_S
    while not state_file.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            if child.poll() is None:
                child.terminate()
            typer.echo(f"error: the environment did not start:\n{log_path.read_text()}", err=True)
            raise typer.Exit(1)
        time.sleep(0.05)
    started: dict[str, Any] = json.loads(state_file.read_text())
    _print_urls(started["urls"], as_json=as_json, as_env=as_env, backend=started["backend"])
    if not as_json and not as_env:
        typer.echo(f"running in the background (pid {child.pid}); stop it with `resilience down`")


def down(
    timeout_s: Annotated[float, typer.Option("--timeout", help="seconds to wait")] = 30.0,
    stop_all: Annotated[
        bool,
        typer.Option("--all", help="also stop environments in use by a live run or test session"),
    ] = False,
) -> None:
    """Stop this user's environments: orphans, a detached or foreground `up` (--all: any)."""
    from resilience.backends.state import StateDir

    state = StateDir()
    stopped = left = 0
    for marker in state.markers():
        description = _describe(marker)
        if not marker.owner_alive():
            _remove(marker)
            typer.echo(f"removed orphaned environment {description}")
            stopped += 1
            continue
        owner = marker.owner_pid
        if marker.info.get("purpose") != "up" and not stop_all:
            typer.echo(
                f"left running: environment {description}, in use by pid {owner} "
                f"({_command_line(owner)}); stop that process, or use --all"
            )
            left += 1
            continue
        _terminate(owner, timeout_s)
        if marker.directory.exists():  # the owner died without its teardown
            _remove(marker)
        typer.echo(f"stopped environment {description} of pid {owner}")
        stopped += 1
    stopped += _stop_detached_without_marker(timeout_s)
    stopped += _reap_docker_orphans()
    if stopped == 0 and left == 0:
        typer.echo("no environment is running")


def _reap_docker_orphans() -> int:
    """Containers of a docker-backend harness that died with its reaper (SIGKILL of both)."""
    from resilience.backends.docker import docker_engine_answers

    if not docker_engine_answers(timeout_s=0.5):
        return 0
    try:
        import docker
    except ImportError:  # no docker extra: this harness made no container
        return 0
    from resilience.backends.docker_reaper import reap_orphans

    client = docker.from_env()
    try:
        removed = reap_orphans(client)
    except docker.errors.DockerException as exc:
        typer.echo(f"could not check the Docker engine for orphaned containers: {exc}", err=True)
        return 0
    finally:
        client.close()
    if removed:
        typer.echo(f"removed {removed} orphaned container(s) of a harness that is gone")
    return removed


def _describe(marker: Any) -> str:
    """``<id>: postgres (pid 12), redis (pid 13), ...; ports 5433, 6380, ...``."""
    servers = ", ".join(f"{p.name} (pid {p.pid})" for p in marker.processes) or "no server"
    ports = sorted(
        {
            int(url.rsplit(":", 1)[1].split("/")[0])
            for key, url in marker.info.items()
            if isinstance(url, str) and "://" in url and key != "reaper_tag"
        }
    )
    listed = f"; ports {', '.join(map(str, ports))}" if ports else ""
    return f"{marker.directory.name}: {servers}{listed}"


def _remove(marker: Any) -> None:
    from resilience.backends.state import remove_environment

    remove_environment(marker)


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:120]


def _terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM ``pid`` and wait until it has gone (exit 1 if it does not)."""
    if not _pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        typer.echo(f"error: pid {pid} did not stop within {timeout_s:.0f} s", err=True)
        raise typer.Exit(1)


def _stop_detached_without_marker(timeout_s: float) -> int:
    """A detached ``up`` on a backend that keeps no marker (docker); clears ``up.json``."""
    state_file = _state_file()
    if not state_file.exists():
        return 0
    pid = int(json.loads(state_file.read_text())["pid"])
    was_alive = _pid_alive(pid)
    _terminate(pid, timeout_s)
    state_file.unlink(missing_ok=True)
    if was_alive:
        typer.echo(f"stopped the detached environment of pid {pid}")
    return int(was_alive)


def register(app: typer.Typer) -> None:
    """Add ``up`` and ``down`` to the ``resilience`` command."""
    app.command("up")(up)
    app.command("down")(down)
