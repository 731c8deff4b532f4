"""The command-line options this locustfile adds to Locust, and how they resolve.

Every option defaults to ``None`` so :func:`resolve` can tell "not given"
from "given": a given option wins over the profile file (``--load-profile``),
which wins over the built-in default. Locust forwards these options from the
master to its workers, so a worker on another machine needs only the
profile file at the same path (or no profile and explicit options).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.profile import LoadProfile, load_profile
from loadtests.stages import Shape, build_shape, parse_params
from resilience.scenario.load_target import LoadTarget

__all__ = ["LoadSettings", "add_arguments", "check", "resolve"]


def add_arguments(parser: Any) -> None:
    """Listener for Locust's ``init_command_line_parser`` event."""
    group = parser.add_argument_group("resilience load profile")
    group.add_argument(
        "--load-profile", default=None, help="profile name (loadtests/profiles) or path"
    )
    group.add_argument("--shape", default=None, help="steady, spike, ramp or soak")
    group.add_argument(
        "--shape-params", default=None, help='shape parameters, e.g. "users=20,duration=30s"'
    )
    group.add_argument("--catalogue-seed", type=int, default=None)
    group.add_argument("--catalogue-size", type=int, default=None)
    group.add_argument("--zipf-s", type=float, default=None, help="Zipf exponent of lookups")
    group.add_argument("--unknown-ratio", type=float, default=None)
    group.add_argument("--invalid-ratio", type=float, default=None)
    group.add_argument("--job-ratio", type=float, default=None, help="share of steps posting a job")
    group.add_argument("--wait-s", default=None, help='think time "min,max" in seconds')
    group.add_argument("--seed", type=int, default=None, help="seed of the users' generators")
    group.add_argument("--toxiproxy-url", default=None, help="Toxiproxy API for the fault timeline")
    group.add_argument(
        "--proxy-names", default=None, help='target → proxy, e.g. "postgres=pg,redis=redis"'
    )
    group.add_argument("--gate", action="append", default=None, help="extra gate (repeatable)")
    group.add_argument("--no-gates", action="store_true", default=False, help="skip the gates")
    group.add_argument(
        "--stats-url", default=None, help="the service's /stats (default host/stats)"
    )
    group.add_argument(
        "--report-dir", default=None, help="gate JSON/JUnit (default: beside --csv or --html)"
    )
    group.add_argument(
        "--target-url",
        default=None,
        help="the HTTP target's base URL when the profile's target was overridden "
        "(resilience load --command/--url passes it)",
    )


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """Everything the users, the shape and the hooks need, resolved once."""

    profile: LoadProfile | None
    shape: Shape | None
    catalogue_seed: int
    catalogue_size: int
    zipf_s: float
    unknown_ratio: float
    invalid_ratio: float
    job_ratio: float
    wait_s: tuple[float, float]
    seed: int
    toxiproxy_url: str | None
    proxy_names: dict[str, str]
    gates: tuple[str, ...]
    gates_enabled: bool
    stats_url: str | None
    report_dir: Path
    load_target: LoadTarget | None = None
    """The profile's service under test; HTTP with ``requests``: :class:`TargetUser`."""


@functools.lru_cache(maxsize=8)
def _profile(name: str) -> LoadProfile:
    return load_profile(name)


@functools.lru_cache(maxsize=8)
def _target(name: str, url: str | None) -> LoadTarget | None:
    from loadtests.profile import resolve_profile_path

    return _profile(name).target_for(resolve_profile_path(name).resolve(), url=url)


def resolve(options: Any, *, host: str | None = None) -> LoadSettings:
    """Settings from Locust's parsed options (a namespace), the profile and defaults."""

    def given(name: str) -> Any:
        return getattr(options, name, None)

    profile = _profile(given("load_profile")) if given("load_profile") else None
    workload = profile.workload if profile else None
    catalogue = profile.catalogue if profile else None

    def pick(name: str, file_value: Any, default: Any) -> Any:
        value = given(name)
        if value is not None:
            return value
        return file_value if file_value is not None else default

    params = parse_params(given("shape_params") or "")
    shape: Shape | None
    if profile is not None:
        shape = profile.build_shape(kind=given("shape"), params=params)
    elif given("shape"):
        shape = build_shape(given("shape"), params)
    else:
        shape = None  # Locust's own -u/-r/-t drive the run

    wait = given("wait_s")
    if wait is not None:
        low, _, high = str(wait).partition(",")
        wait_s = (float(low), float(high or low))
    else:
        wait_s = workload.wait_s if workload else (0.0, 0.0)

    proxy_names = {"postgres": "postgres", "redis": "redis"}
    proxy_names.update(parse_params(given("proxy_names") or ""))
    gates = (*(profile.gates if profile else ()), *(given("gate") or ()))
    target = _target(given("load_profile"), given("target_url")) if profile else None
    http = target is not None and bool(target.requests)

    return LoadSettings(
        profile=profile,
        shape=shape,
        catalogue_seed=int(pick("catalogue_seed", catalogue and catalogue.seed, 42)),
        catalogue_size=int(pick("catalogue_size", catalogue and catalogue.size, 300)),
        zipf_s=float(pick("zipf_s", workload and workload.zipf_s, 1.1)),
        unknown_ratio=float(pick("unknown_ratio", workload and workload.unknown_ratio, 0.03)),
        invalid_ratio=float(pick("invalid_ratio", workload and workload.invalid_ratio, 0.01)),
        job_ratio=float(pick("job_ratio", workload and workload.job_ratio, 0.2)),
        wait_s=wait_s,
        seed=int(pick("seed", workload and workload.seed, 0)),
        toxiproxy_url=given("toxiproxy_url"),
        proxy_names=proxy_names,
        gates=gates,
        gates_enabled=not given("no_gates"),
        stats_url=given("stats_url")
        or (f"{host.rstrip('/')}/stats" if host and not http else None),
        report_dir=_report_dir(options),
        load_target=target,
    )


def check(environment: Any) -> None:
    """Listener for Locust's ``init`` event: a bad profile or option stops the run (exit 2).

    Without it the error would surface only when the shape or the first user
    asks, as a stack trace in a greenlet.
    """
    try:
        resolve(environment.parsed_options, host=environment.host)
    except (ValueError, FileNotFoundError) as exc:
        logging.getLogger("loadtests").error("%s", exc)
        raise SystemExit(2) from None


def _report_dir(options: Any) -> Path:
    if getattr(options, "report_dir", None):
        return Path(options.report_dir)
    csv_prefix = getattr(options, "csv_prefix", None)
    if csv_prefix:
        return Path(csv_prefix).parent
    html = getattr(options, "html_file", None)
    if html:
        return Path(html).parent
    return Path("reports/load")
