"""Calibration: how far the simulation is from a real run of the same scenario.

:func:`calibrate` runs a scenario on the real stack (or reads a real history)
and in simulation, and compares, over the measured window: hit, success and
fallback rates (difference in percentage points), p50/p95/p99 lookup latency
by path (relative difference) and breaker opens; where the scenario books
(scenarios 20–24), also the booking success rate, the booking latency and
the calls counted at the booking API stub (all calls, calls while the
booking breaker was open). The targets for the default
suite: every rate within 2 points and every p95 within 20 %
(:data:`RATE_TARGET_POINTS`, :data:`P95_TARGET`); a p95 is judged only when
both sides have :data:`MIN_COMPARE` lookups on that path. Each p95 comes with
the real p95's own 90 % interval at its sample size
(:func:`quantile_interval`), so a miss that a second real run could show as
well is told apart from a model that is off.

Some figures are decided by chance within a run, not by sampling alone: a
toxic with ``toxicity`` below 1 is rolled once per connection, so whether
the connections a pool hands out are the slow ones decides a p95 outright
(``11-postgres-partial-latency``: 0–32 % slow database lookups across real
runs). The real proxy rolls at random; the simulation rolls from its seed.
``sim_seeds=N`` simulates with N seeds of the models' random streams (the
workload stays the real run's): the simulated figure is the median over the
seeds and each figure gets the seeds' range; a miss whose real figure lies
inside that range is what another roll of the dice gives
(:attr:`Delta.within_spread`).

:func:`fit_models` derives the dependency models from the real history: the
empirical quantiles of the Redis-path latency become the Redis command time,
the DB-path latency minus two Redis round trips (the miss before the query
and the write after it) becomes the query time, and half the latency of a
positive cache hit (two clock reads) becomes the cost of a clock read, as a
distribution. Operations inside fault windows are left out, except Redis-path
lookups during faults on other targets. Bookings made in one attempt outside
the faults on ``booking-api`` become the booking API's exchange time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resilience.sim.distributions import Empirical
from resilience.sim.stack import ModelSettings

__all__ = [
    "P95_TARGET",
    "RATE_TARGET_POINTS",
    "CalibrationReport",
    "Delta",
    "calibrate",
    "fit_models",
    "print_calibration",
    "quantile_interval",
    "side_metrics",
]

RATE_TARGET_POINTS = 2.0
"""Largest acceptable rate difference, in percentage points."""
P95_TARGET = 0.20
"""Largest acceptable relative difference of a path's p95 latency."""
MIN_SAMPLES = 20
"""A path needs this many lookups (outside faults) for its latency to be fitted."""
MIN_COMPARE = 100
"""A path's p95 is judged only with this many lookups on both sides (at fewer, fewer than
five samples lie above the 95th percentile and it is mostly noise)."""

_Z90 = 1.6448536269514722  # two-sided 90 % normal quantile

_RATES = ("hit_rate", "success_rate", "fallback_rate", "booking.success_rate")
_PATHS = ("cache", "redis", "db", "fallback")
_SERIES = {**{path: f"lookup.{path}" for path in _PATHS}, "booking": "booking"}
"""Latency series compared: each lookup path, and the bookings (the booking API's scenarios)."""
_COUNTS = ("breaker.opens", "upstream.calls", "upstream.calls_while_open")
_QS = (50, 95, 99)


def _nearest_rank(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def quantile_interval(
    ordered: Sequence[float], q: float, *, z: float = _Z90
) -> tuple[float, float] | None:
    """A distribution-free confidence interval of the ``q``-th percentile (default 90 %).

    The count of samples below the true percentile is binomial (n, q/100), so
    the order statistics at ranks n·p ∓ z·√(n·p·(1−p)) bound it. ``None``
    when there are too few samples for both ends to be inside the data.
    """
    n = len(ordered)
    p = q / 100.0
    spread = z * math.sqrt(n * p * (1 - p))
    lo, hi = math.floor(n * p - spread), math.ceil(n * p + spread)
    if n == 0 or lo < 1 or hi > n:
        return None
    return float(ordered[lo - 1]), float(ordered[hi - 1])


def side_metrics(history: Any) -> dict[str, Any]:
    """Rates, latency percentiles by path (seconds) and counts of one history."""
    from resilience.scenario.metrics import metrics_for, timeline_of

    timeline = timeline_of(history)
    m = metrics_for(history, [(timeline.start_s, timeline.end_s)])
    out: dict[str, Any] = {
        "hit_rate": m.get("cache.hit_rate"),
        "success_rate": m.get("success_rate"),
        "fallback_rate": m.get("fallback_rate"),
        "booking.success_rate": m.get("booking.success_rate"),
        "lookups": m.get("lookups"),
    }
    for name in _COUNTS:
        out[name] = m.get(name)
    for path, series in _SERIES.items():
        samples = m.get(series)
        ordered = sorted(samples) if isinstance(samples, list) else []
        out[f"{path}.count"] = len(ordered)
        for q in _QS:
            out[f"{path}.p{q}"] = _nearest_rank(ordered, q)
        out[f"{path}.p95_interval"] = quantile_interval(ordered, 95)
    return out


@dataclass(frozen=True, slots=True)
class Delta:
    """One compared figure: real, simulated, their difference, and the verdict."""

    metric: str
    real: float | None
    sim: float | None
    diff: float | None
    unit: str
    """``points`` (rates), ``relative`` (latency) or ``count``."""
    target: float | None
    ok: bool | None
    """``None`` when there is no target or too little data."""
    noise: tuple[float, float] | None = None
    """For a p95: the real p95's own 90 % interval at its sample size, relative
    to it (e.g. ``(-0.12, 0.35)``). A simulated p95 inside it differs from the
    real one by no more than a second real run of the same length could."""
    spread: tuple[float, float] | None = None
    """With several simulation seeds: the lowest and highest simulated value
    (same unit as ``real``); ``sim`` is then their median."""

    @property
    def within_noise(self) -> bool | None:
        if self.noise is None or self.diff is None:
            return None
        return self.noise[0] <= self.diff <= self.noise[1]

    @property
    def within_spread(self) -> bool | None:
        """Whether some simulated seed comes within the target of the real figure.

        The seeds' range is widened by the target (± points for a rate, ± the
        relative target for a latency), so a real p95 of 302 ms against seeds
        reaching 301 ms counts as one of the seeds' outcomes.
        """
        if self.spread is None or self.real is None:
            return None
        lo, hi = self.spread
        if self.target is not None and self.unit == "points":
            lo, hi = lo - self.target / 100.0, hi + self.target / 100.0
        elif self.target is not None and self.unit == "relative":
            lo, hi = lo * (1 - self.target), hi * (1 + self.target)
        return lo <= self.real <= hi

    @property
    def explained(self) -> bool:
        """A miss that the real run's sampling noise or the seeds' spread accounts for."""
        return self.ok is False and bool(self.within_noise or self.within_spread)


@dataclass
class CalibrationReport:
    """The comparison of one scenario run both ways."""

    scenario: str
    deltas: list[Delta]
    real_history: Path
    sim_history: Path
    models: dict[str, Any] = field(default_factory=dict)
    sim_seeds: int = 1

    @property
    def within_targets(self) -> bool:
        return all(d.ok is not False for d in self.deltas)

    @property
    def misses(self) -> list[Delta]:
        return [d for d in self.deltas if d.ok is False]

    @property
    def misses_within_noise(self) -> int:
        """Misses inside the real p95's own 90 % interval (a longer run would decide)."""
        return sum(d.within_noise is True for d in self.misses)

    @property
    def misses_explained(self) -> int:
        """Misses inside the real run's noise or the simulated seeds' spread."""
        return sum(d.explained for d in self.misses)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "within_targets": self.within_targets,
            "misses_within_noise": self.misses_within_noise,
            "misses_explained": self.misses_explained,
            "sim_seeds": self.sim_seeds,
            "real_history": str(self.real_history),
            "sim_history": str(self.sim_history),
            "models": self.models,
            "deltas": [
                {
                    "metric": d.metric,
                    "real": d.real,
                    "sim": d.sim,
                    "diff": d.diff,
                    "unit": d.unit,
                    "target": d.target,
                    "ok": d.ok,
                    "noise": list(d.noise) if d.noise is not None else None,
                    "within_noise": d.within_noise,
                    "spread": list(d.spread) if d.spread is not None else None,
                    "within_spread": d.within_spread,
                }
                for d in self.deltas
            ],
        }


def _median_and_range(
    sims: Sequence[dict[str, Any]], key: str
) -> tuple[Any, tuple[float, float] | None]:
    """The median of ``key`` over the seeds (lower median) and its range (``None`` for one)."""
    values = sorted(v for v in (s.get(key) for s in sims) if v is not None)
    if not values:
        return None, None
    middle = values[(len(values) - 1) // 2]
    return middle, ((float(values[0]), float(values[-1])) if len(sims) > 1 else None)


def compare(real: dict[str, Any], sim: dict[str, Any] | Sequence[dict[str, Any]]) -> list[Delta]:
    """The deltas between :func:`side_metrics` results: one real, one or more simulated.

    With several simulated results (one per seed) each figure is their median
    and carries their range (:attr:`Delta.spread`).
    """
    sims = [sim] if isinstance(sim, dict) else list(sim)
    deltas: list[Delta] = []
    for name in _RATES:
        a, (b, spread) = real.get(name), _median_and_range(sims, name)
        if a is None and b is None and name == "booking.success_rate":
            continue  # no bookings in this scenario
        diff = None if a is None or b is None else (b - a) * 100.0
        ok = None if diff is None else abs(diff) <= RATE_TARGET_POINTS
        deltas.append(Delta(name, a, b, diff, "points", RATE_TARGET_POINTS, ok, None, spread))
    for path, series in _SERIES.items():
        if path == "booking" and not real.get("booking.count"):
            continue
        sim_count, _ = _median_and_range(sims, f"{path}.count")
        enough = min(real[f"{path}.count"], sim_count or 0) >= MIN_COMPARE
        for q in _QS:
            a, (b, spread) = real[f"{path}.p{q}"], _median_and_range(sims, f"{path}.p{q}")
            diff = None if a is None or b is None or a == 0 else (b - a) / a
            target = P95_TARGET if q == 95 else None
            ok = None
            if target is not None and diff is not None and enough:
                ok = abs(diff) <= target
            noise = None
            interval = real.get(f"{path}.p95_interval") if q == 95 else None
            if interval is not None and a:
                noise = (interval[0] / a - 1.0, interval[1] / a - 1.0)
            name = f"{series} p{q}"
            if q == 50:
                name += f" (n={real[f'{path}.count']}/{sim_count or 0})"
            deltas.append(Delta(name, a, b, diff, "relative", target, ok, noise, spread))
    for name in _COUNTS:
        count_real = real.get(name)
        count_sim, spread = _median_and_range(sims, name)
        if name != "breaker.opens" and count_real is None and count_sim is None:
            continue  # the upstream counts exist only where the booking API runs
        diff = None if count_real is None or count_sim is None else float(count_sim - count_real)
        deltas.append(Delta(name, count_real, count_sim, diff, "count", None, None, None, spread))
    return deltas


def _windows_on(history: Any, target: str) -> list[tuple[float, float]]:
    """Windows of the faults on ``target`` (by the history's fault records)."""
    names = {
        str(rec.get("name"))
        for rec in history.faults
        if rec.get("event") == "start" and rec.get("target") == target
    }
    windows = history.fault_windows() if names else {}
    return [w for name in names for w in windows.get(name, [])]


def fit_models(
    history: Any, base: ModelSettings | None = None, *, redis_timeout_s: float = 0.1
) -> ModelSettings:
    """Dependency models fitted to a real history (see the module docstring).

    Measured latencies include the real process's event-loop lag, which never
    makes a command time out (the reply is handled before the late timer), and
    the few real Redis timeouts come in bursts (one stall, many commands)
    that independent draws would scatter into many separate "Redis down"
    periods. So Redis draws are clipped just under ``redis_timeout_s``.
    Redis-path lookups count in every phase but Redis's own faults: a fault
    elsewhere loads the machine (a reconnect storm, error handling), and that
    is part of what a Redis round trip costs during the run. The
    query time is the DB-path quantile minus two Redis-path quantiles (the miss
    before, the write after), never below a quarter of the DB-path quantile.
    """
    from resilience.scenario.metrics import within

    base = base or ModelSettings()
    by_path: dict[str, list[float]] = {p: [] for p in _PATHS}
    redis_faults = _windows_on(history, "redis")
    for op in history.ops:
        if op.op != "lookup" or op.key == "invalid" or op.phase == "warmup":
            continue
        if op.outcome not in ("success", "fallback") or op.path not in ("cache", "redis", "db"):
            continue
        if op.phase == "during" and (op.path != "redis" or within(op.t_us / 1e6, redis_faults)):
            continue
        # A positive memory hit is timed across two clock reads (the cache's TTL
        # check and the end); a negative one reads once more, so it is left out.
        if op.path == "cache" and op.outcome != "success":
            continue
        by_path[op.path].append(op.latency_us / 1e6)
    changes: dict[str, Any] = {}
    cache = by_path["cache"]
    overhead = 2 * base.clock_read_cost_s
    if len(cache) >= MIN_SAMPLES:
        per_read = Empirical.from_samples([x / 2 for x in cache])
        changes["clock_read_cost"] = per_read
        overhead = 2 * per_read.quantile(0.5)
    redis = by_path["redis"]
    redis_fit: Empirical | None = None
    if len(redis) >= MIN_SAMPLES:
        limit = 0.95 * redis_timeout_s
        clipped = [min(limit, max(1e-6, x - overhead)) for x in redis]
        redis_fit = Empirical.from_samples(clipped)
        changes["redis_command"] = redis_fit
    db = by_path["db"]
    if len(db) >= MIN_SAMPLES:
        fitted_db = Empirical.from_samples(db)
        points = []
        for i, value in enumerate(fitted_db.points_s):
            q = i / (len(fitted_db.points_s) - 1)
            shift = overhead + (2 * redis_fit.quantile(q) if redis_fit is not None else 0.0)
            points.append(max(value - shift, value / 4, 1e-6))
        changes["db_query"] = Empirical(tuple(sorted(points)))
    booking = _booking_exchanges(history)
    if len(booking) >= MIN_SAMPLES:
        changes["booking_api"] = Empirical.from_samples(booking)
    return base.with_(**changes)


def _booking_exchanges(history: Any) -> list[float]:
    """Latencies (s) of bookings made in one attempt outside the faults on ``booking-api``
    (under 0.9 s, the shortest backoff):
    one exchange with the API through its proxy, with the service's own small share."""
    from resilience.scenario.metrics import within

    faults = _windows_on(history, "booking-api")
    return [
        op.latency_us / 1e6
        for op in history.ops
        if op.op == "booking"
        and op.outcome == "booked"
        and op.attempts <= 1  # the reference target does not count booking attempts (0):
        and op.latency_us < 900_000  # a retry waits at least 0.9 s first, so this is one
        and op.phase != "warmup"
        and not within(op.t_us / 1e6, faults)
    ]


def describe_models(models: ModelSettings) -> dict[str, Any]:
    """Quantiles (ms) of the fitted distributions, for the report."""

    def q(dist: Any) -> dict[str, float]:
        return {f"p{p}": round(dist.quantile(p / 100) * 1000, 4) for p in (50, 95, 99)}

    return {
        "db_query_ms": q(models.db_query),
        "redis_command_ms": q(models.redis_command),
        "booking_api_ms": q(models.booking_api),
        "clock_read_cost_us": (
            round(models.clock_read_cost.quantile(0.5) * 1e6, 3)
            if models.clock_read_cost is not None
            else round(models.clock_read_cost_s * 1e6, 3)
        ),
    }


def _run_real(scenario: Any, history_path: Path) -> Any:
    from resilience.sim.real_run import run_real

    result = run_real(scenario, history_path)
    if result.status not in ("completed",):
        raise RuntimeError(f"the real run did not complete ({result.status}): {result.error}")
    return result


def calibrate(
    scenario: Any,
    *,
    output: Path,
    real_history: Path | None = None,
    fit: bool = True,
    console: Any = None,
    sim_seeds: int = 1,
) -> CalibrationReport:
    """Run ``scenario`` real (unless ``real_history`` is given) and simulated; compare.

    ``sim_seeds`` simulations run with model seeds ``seed``, ``seed + 1`` …
    (the first one's history is ``sim.jsonl``, the others ``sim-<k>.jsonl``).
    """
    if sim_seeds < 1:
        raise ValueError(f"sim_seeds must be at least 1 (got {sim_seeds})")
    from resilience.scenario.history import read_history
    from resilience.sim.run import run_simulated

    output.mkdir(parents=True, exist_ok=True)
    if real_history is None:
        real_history = output / "real.jsonl"
        if console is not None:
            console.print(f"running {scenario.name} on the real stack …")
        _run_real(scenario, real_history)
    real = read_history(real_history)
    if fit:
        from resilience.service.config import ServiceConfig

        config = ServiceConfig().with_overrides(scenario.service)
        models = fit_models(real, redis_timeout_s=config.redis.timeout_s)
    else:
        models = ModelSettings()
    from resilience.sim.models_file import save_models

    save_models(models, output / "models.json")
    sim_history = output / "sim.jsonl"
    if console is not None:
        seeds = f" with {sim_seeds} seeds" if sim_seeds > 1 else ""
        console.print(f"simulating {scenario.name}{seeds} …")
    sims: list[dict[str, Any]] = []
    for k in range(sim_seeds):
        path = sim_history if k == 0 else output / f"sim-{k}.jsonl"
        sim_result = run_simulated(
            scenario, history_path=path, models=models, model_seed=scenario.seed + k
        )
        if sim_result.status != "completed":
            raise RuntimeError(f"the simulation did not complete: {sim_result.error}")
        sims.append(side_metrics(read_history(path)))
    deltas = compare(side_metrics(real), sims)
    return CalibrationReport(
        scenario=scenario.name,
        deltas=deltas,
        real_history=real_history,
        sim_history=sim_history,
        models={"fitted": fit, **describe_models(models)},
        sim_seeds=sim_seeds,
    )


def _fmt(delta: Delta, value: float | None) -> str:
    if value is None:
        return "–"
    if delta.unit == "points":
        return f"{value * 100:.2f}%"
    if delta.unit == "relative":
        return f"{value * 1000:.3f} ms"
    return f"{value:g}"


def _fmt_diff(delta: Delta) -> str:
    if delta.diff is None:
        return "–"
    if delta.unit == "points":
        return f"{delta.diff:+.2f} pt"
    if delta.unit == "relative":
        return f"{delta.diff * 100:+.1f}%"
    return f"{delta.diff:+g}"


def print_calibration(report: CalibrationReport, console: Any) -> None:
    """The comparison as a terminal table."""
    from rich.table import Table

    table = Table(title=f"calibration: {report.scenario}", title_justify="left")
    several = report.sim_seeds > 1
    simulated = f"simulated (median of {report.sim_seeds})" if several else "simulated"
    columns = ["metric", "real", simulated, "difference", "real 90% interval", "target"]
    if several:
        columns.insert(3, "simulated range")
    for name in (*columns, "verdict"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    for d in report.deltas:
        target = "–"
        if d.target is not None:
            target = f"±{d.target:g} pt" if d.unit == "points" else f"±{d.target * 100:g}%"
        verdict = {True: "ok", False: "OFF", None: ""}[d.ok]
        if d.ok is False and d.within_noise:
            verdict = "OFF (noise)"
        elif d.ok is False and d.within_spread:
            verdict = "OFF (seeds)"
        noise = "" if d.noise is None else f"{d.noise[0] * 100:+.0f}…{d.noise[1] * 100:+.0f}%"
        cells = [d.metric, _fmt(d, d.real), _fmt(d, d.sim), _fmt_diff(d), noise, target, verdict]
        if several:
            spread = "" if d.spread is None else f"{_fmt(d, d.spread[0])}…{_fmt(d, d.spread[1])}"
            cells.insert(3, spread)
        table.add_row(*cells)
    console.print(table)
    console.print(f"models: {report.models}")
    if report.within_targets:
        console.print("within targets")
        return
    noisy = report.misses_within_noise
    console.print(f"[red]outside the calibration targets[/] ({len(report.misses)} miss(es))")
    if noisy:
        console.print(
            f"{noisy} of them within the real run's own 90 % interval for that percentile: "
            "a second real run of this length could differ as much; a longer run decides"
        )
    seeds = sum(
        d.ok is False and not d.within_noise and d.within_spread is True for d in report.deltas
    )
    if seeds:
        console.print(
            f"{seeds} of them with the real figure inside the simulated seeds' range: "
            "chance within a run (e.g. which connections a toxicity roll hits) decides it"
        )
