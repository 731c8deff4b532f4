"""``resilience load``: environment + service + Locust headless, then teardown.

This module never imports Locust or gevent: Locust runs as a subprocess on
``loadtests/locustfile.py`` (the leaf that imports it), and the service runs
as ``resilience serve`` subprocess so it can have several uvicorn workers.

Order of a run (:func:`run_load`)::

    Environment (PostgreSQL, Redis, proxies)  ─ unless ``url`` is given
      → schema + catalogue seeded through the direct URL
      → ``resilience serve --workers N`` on a free loopback port, until /health answers
      → ``locust -f loadtests/locustfile.py --headless --load-profile P ...``
    ← service stopped (SIGTERM, then SIGKILL after 10 s), environment stopped

A profile with an HTTP target (``target:``/``requests:``/``include:``, see
:mod:`resilience.scenario.load_target`; or ``--command``) runs instead::

    the scenario's HTTP target stack (resilience.scenario.http_stack): environment,
      dependencies behind proxies, SQL files, the target's command until ``ready``
      → locust … --target-url URL (the generic TargetUser sends the profile's requests)
    ← target stopped (SIGTERM, then SIGKILL; registered with the reaper), proxies and
      environment stopped

``--url`` without ``--command``: the service already runs there; nothing is
started, the keys must be listed. A target that cannot start (or a ``--url``
that does not answer) is a :class:`LoadSetupError`: exit 2, with the reason.

The exit code is Locust's: 0 when every gate held, 1 when one failed, 2 on
a setup error of the locustfile. Only the ``catalogue``, ``service`` and
``run`` sections of the profile are read here; the rest is the locustfile's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "LoadRun",
    "LoadSetupError",
    "ProfileSetup",
    "find_locustfile",
    "locust_command",
    "read_profile_setup",
    "resolve_profile",
    "run_load",
    "serve_command",
]

_CLI = "from resilience.cli import main; main()"


@dataclass(frozen=True, slots=True)
class ProfileSetup:
    """What ``resilience load`` needs from a profile file (defaults as in loadtests)."""

    path: Path
    catalogue_seed: int = 42
    catalogue_size: int = 300
    service_workers: int = 1
    service_overrides: Mapping[str, Any] = field(default_factory=dict)
    processes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadRun:
    """One ``resilience load`` invocation; ``None`` means "as the profile says"."""

    profile: str
    locustfile: Path | None = None
    backend: str = "auto"
    service_workers: int | None = None
    processes: int | None = None
    report_dir: Path = Path("reports/load")
    url: str | None = None
    """An already running service: no environment and no service are started."""
    toxiproxy_url: str | None = None
    """With ``url``: the Toxiproxy API for the fault timeline."""
    host: str = "127.0.0.1"
    startup_timeout_s: float = 60.0
    locust_args: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    """Extra environment variables for the subprocesses."""
    command: str | None = None
    """The HTTP target's command (replaces the profile's ``target.command``)."""
    web_port: int | None = None
    """Run with Locust's web UI on this loopback port (0: a free one) instead of headless;
    the load starts at once and Locust quits ``web_linger_s`` after it ends."""
    web_linger_s: float = 60.0


class LoadSetupError(ValueError):
    """The run could not start: bad target sections, a target that would not start (exit 2)."""


def find_locustfile(explicit: Path | None = None) -> Path:
    """``explicit``, else ``./loadtests/locustfile.py``, else the one beside this package."""
    candidates = (
        [explicit]
        if explicit is not None
        else [
            Path.cwd() / "loadtests" / "locustfile.py",
            Path(__file__).resolve().parent.parent / "loadtests" / "locustfile.py",
        ]
    )
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"no locustfile at {', '.join(str(c) for c in candidates)}; pass --locustfile"
    )


def resolve_profile(name_or_path: str, locustfile: Path) -> Path:
    """A profile file as given, else ``profiles/NAME.yaml`` beside the locustfile."""
    path = Path(name_or_path)
    if path.is_file():
        return path.resolve()
    directory = locustfile.parent / "profiles"
    for suffix in (".yaml", ".yml"):
        candidate = directory / f"{name_or_path}{suffix}"
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
    raise FileNotFoundError(f"no profile {name_or_path!r}: not a file, not one of {known}")


def read_profile_setup(path: Path) -> ProfileSetup:
    """The ``catalogue``, ``service`` and ``run`` sections of a profile file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a profile is a mapping")
    catalogue = data.get("catalogue") or {}
    service = data.get("service") or {}
    run = data.get("run") or {}
    return ProfileSetup(
        path=path,
        catalogue_seed=int(catalogue.get("seed", 42)),
        catalogue_size=int(catalogue.get("size", 300)),
        service_workers=int(service.get("workers", 1)),
        service_overrides=dict(service.get("overrides") or {}),
        processes=int(run.get("processes", 0)),
    )


def serve_command(
    *,
    host: str,
    port: int,
    workers: int,
    postgres_url: str,
    redis_url: str,
    overrides: Mapping[str, Any] | None = None,
) -> list[str]:
    """The ``resilience serve`` command line for the service under load."""
    command = [
        sys.executable, "-c", _CLI, "serve",
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--postgres-url", postgres_url, "--redis-url", redis_url,
    ]  # fmt: skip
    for name, value in (overrides or {}).items():
        command += ["--set", f"{name}={value}"]
    return command


def locust_command(
    *,
    locustfile: Path,
    host_url: str,
    profile: Path | None,
    report_dir: Path,
    toxiproxy_url: str | None,
    processes: int,
    extra: Sequence[str] = (),
    web: tuple[str, int, float] | None = None,
) -> list[str]:
    """The Locust command line (CSV, HTML and gate reports in ``report_dir``).

    Headless, or with ``web`` = (host, port, linger_s): Locust's web UI there
    (our faults and gates at ``/resilience``), the load started at once, and
    Locust quitting ``linger_s`` after the load ends (so the gates still run).
    """
    if web is None:
        mode = ["--headless"]
    else:
        web_host, web_port, linger_s = web
        mode = [
            "--web-host", web_host, "--web-port", str(web_port),
            "--autostart", "--autoquit", str(max(0, round(linger_s))),
        ]  # fmt: skip
    command = [
        sys.executable, "-m", "locust", "-f", str(locustfile), *mode,
        "--host", host_url,
    ]  # fmt: skip
    if profile is not None:
        command += ["--load-profile", str(profile)]
    command += [
        "--csv", str(report_dir / "locust"), "--html", str(report_dir / "locust.html"),
        "--report-dir", str(report_dir),
    ]  # fmt: skip
    if toxiproxy_url:
        command += ["--toxiproxy-url", toxiproxy_url]
    if processes:
        command += ["--processes", str(processes)]
    return [*command, *extra]


def wait_until_up(url: str, *, timeout_s: float, process: subprocess.Popen[bytes] | None) -> None:
    """Poll ``url`` until it answers any HTTP status; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2.0):
                return
        except urllib.error.HTTPError:
            return  # it answers; a 503 health is the gates' business
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s:g} s (last error: {last})")


@contextmanager
def running(
    command: Sequence[str], *, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` for the duration of the block; stop it with SIGTERM, then SIGKILL.

    It is registered with the harness's reaper, so it also goes when the harness is killed.
    """
    from resilience.backends.watchdog import shared_watchdog

    watchdog = shared_watchdog()
    process = subprocess.Popen(  # its own group, so uvicorn's workers go with it
        list(command), env=watchdog.child_env({**os.environ, **(env or {})}), start_new_session=True
    )
    watchdog.register(process.pid, kind="target", label="service")
    try:
        yield process
    finally:
        _stop(process)
        watchdog.unregister(process.pid)


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _http_target(run: LoadRun, path: Path) -> Any:
    """The profile's HTTP target (overrides applied), or ``None`` for the reference service."""
    from resilience.scenario.load_target import TARGET_SECTIONS, read_load_target

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if run.command is None and not any(key in data for key in TARGET_SECTIONS):
        return None  # today's wizard against the reference service
    target = read_load_target(data, path, command=run.command, url=run.url)
    if not target.is_http:
        if target.requests:
            raise LoadSetupError(
                f"{path}: requests: are sent to an HTTP target; give 'target: "
                "{command: ..., url: ...}' (or --command / --url)"
            )
        return None
    if not target.requests:
        raise LoadSetupError(
            f"{path}: an HTTP target needs 'requests' (what to send: name, method, path), "
            "or 'include' a scenario that has workload.requests"
        )
    if run.url is not None and run.command is None:
        target = dataclasses.replace(target, dependencies={})  # already running: no environment
    return target


def run_load(run: LoadRun) -> int:
    """Run one profile end to end; returns Locust's exit code."""
    locustfile = find_locustfile(run.locustfile)
    profile_path = resolve_profile(run.profile, locustfile)
    setup = read_profile_setup(profile_path)
    report_dir = run.report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    processes = setup.processes if run.processes is None else run.processes
    env = dict(run.env or {})
    target = _http_target(run, profile_path)

    web: tuple[str, int, float] | None = None
    if run.web_port is not None:
        from resilience.backends.readiness import free_port

        web = (run.host, run.web_port or free_port(run.host), run.web_linger_s)
        print(
            f"Locust web UI: http://{web[0]}:{web[1]}/  (faults and gates: /resilience)",
            flush=True,
        )

    def locust_argv(host_url: str, toxiproxy_url: str | None) -> list[str]:
        extra = ["--target-url", host_url] if target is not None else []
        return locust_command(
            web=web,
            locustfile=locustfile,
            host_url=host_url,
            profile=setup.path,
            report_dir=report_dir,
            toxiproxy_url=toxiproxy_url,
            processes=processes,
            extra=[
                "--catalogue-seed", str(setup.catalogue_seed),
                "--catalogue-size", str(setup.catalogue_size),
                *extra,
                *run.locust_args,
            ],
        )  # fmt: skip

    def locust_env() -> dict[str, str]:
        # Tagged for the reaper (it stays in our group, so Ctrl-C reaches it as before).
        from resilience.backends.watchdog import shared_watchdog

        return shared_watchdog().child_env({**os.environ, **env})

    def locust(host_url: str, toxiproxy_url: str | None) -> int:
        command = locust_argv(host_url, toxiproxy_url)
        return subprocess.run(command, env=locust_env(), check=False).returncode

    if target is not None:
        scenario = target.scenario(
            setup.path.stem, backend=None if run.backend == "auto" else run.backend
        )

        async def locust_async(host_url: str, toxiproxy_url: str | None) -> int:
            command = locust_argv(host_url, toxiproxy_url)
            process = await asyncio.create_subprocess_exec(*command, env=locust_env())
            try:
                return await process.wait()
            finally:
                if process.returncode is None:
                    process.terminate()
                    await process.wait()

        return asyncio.run(_run_http(run, scenario, report_dir, locust_async))

    if run.url is not None:
        return locust(run.url.rstrip("/"), run.toxiproxy_url)

    from resilience.backends.environment import Environment
    from resilience.backends.readiness import free_port
    from resilience.db.catalogue import seed_catalogue
    from resilience.db.schema import apply_schema

    with Environment(run.backend) as environment:
        urls = environment.urls
        apply_schema(urls.postgres_direct)
        seed_catalogue(urls.postgres_direct, seed=setup.catalogue_seed, size=setup.catalogue_size)
        port = free_port(run.host)
        command = serve_command(
            host=run.host,
            port=port,
            workers=run.service_workers or setup.service_workers,
            postgres_url=urls.postgres,
            redis_url=urls.redis,
            overrides=setup.service_overrides,
        )
        base_url = f"http://{run.host}:{port}"
        with running(command, env=env) as service:
            wait_until_up(f"{base_url}/health", timeout_s=run.startup_timeout_s, process=service)
            return locust(base_url, urls.toxiproxy_api)


async def _run_http(run: LoadRun, scenario: Any, report_dir: Path, locust: Any) -> int:
    """The HTTP target's stack (h16's launcher) around the Locust run; setup errors → exit 2."""
    from resilience.scenario.http_stack import LOG_DIR, open_http_stack
    from resilience.scenario.real_stack import EnvironmentPool
    from resilience.scenario.result import RunAborted
    from resilience.targets.http import HttpTarget

    token = LOG_DIR.set(report_dir)  # target.log beside Locust's reports
    try:
        async with EnvironmentPool() as pool:
            try:
                async with open_http_stack(scenario, pool=pool) as stack:
                    toxiproxy_url = run.toxiproxy_url
                    if scenario.dependencies != {}:
                        toxiproxy_url = (await pool.get(scenario.environment)).urls.toxiproxy_api
                    assert isinstance(stack.target, HttpTarget)
                    code: int = await locust(stack.target.base_url, toxiproxy_url)
                    return code
            except RunAborted as exc:  # the target (or its dependencies) would not start
                where = f"--url {run.url}: " if run.url and run.command is None else ""
                raise LoadSetupError(f"{where}{exc}") from None
    finally:
        LOG_DIR.reset(token)
