"""End-of-run gates: Locust's statistics plus the service's ``/stats``, judged.

On ``quitting`` (master or local runner; workers have only part of the
numbers) the hook copies Locust's per-endpoint statistics, fetches
``/stats`` from the service, evaluates the profile's gates with the scenario
gate grammar (:mod:`resilience.scenario.gates`), prints the table, writes
``gates.json`` and ``gates.junit.xml`` into the report directory (beside
Locust's ``--csv``/``--html`` output by default) and sets Locust's process
exit code: 0 when every gate holds, 1 when one fails. The gates then decide
the exit code instead of Locust's "any failed request" rule, because a run
with a fault timeline is expected to see some failures.

Whole-run gates read Locust's totals. A phase-scoped gate (``@ during:
redis-down``, ``@ after: …``, ``@ before: …``, ``@ recovery …``) is judged
as in a scenario (:func:`resilience.scenario.gates.phases.evaluate_scoped`)
on the per-second buckets of :mod:`loadtests.buckets`, over the profile's
fault windows (seconds since the test start, to a tenth of a second).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

from loadtests.buckets import REPORT_KEY, Buckets, degraded_metrics
from loadtests.options import LoadSettings, resolve
from loadtests.profile import parse_gates
from loadtests.report import render_table, write_json, write_junit
from loadtests.results import EndpointRecord, load_metrics
from resilience.scenario.faults import plan
from resilience.scenario.gates import GateResult, ScopedGate, evaluate
from resilience.scenario.gates.evaluate import Metrics
from resilience.scenario.gates.phases import Timeline, Window, evaluate_scoped
from resilience.scenario.model import FaultSpec

__all__ = ["DEFAULT_GATES", "HTTP_DEFAULT_GATES", "GateHook", "fetch_service_stats", "judge"]

log = logging.getLogger("loadtests.gates")

DEFAULT_GATES: tuple[str, ...] = (
    "failure_ratio < 1%",  # error rate < 1 %
    "http.lookup p(95) < 50ms",  # the load benchmark's latency bar
    "cache.hit_rate >= 0.70",  # cache hit rate > 70 %
    "lookup.cache < 1ms",  # lookup time, cache hit (mean)
    "lookup.db < 50ms",  # lookup time, database (mean)
    "success_rate >= 0.95",  # lookup success rate > 95 %
    "fallback_rate < 0.10",  # fallback rate < 10 %
)
"""Gates of a profile that names none: the documented targets of TARGETS.md."""

HTTP_DEFAULT_GATES: tuple[str, ...] = ("failure_ratio < 1%",)
"""Gates of an HTTP target's profile that names none (the others read the reference's /stats)."""


PhaseMetrics = Any
"""``metrics_for(windows) -> Metrics``: the metrics of the requests started in ``windows``."""


def fault_timeline(faults: tuple[FaultSpec, ...], end_s: float) -> Timeline:
    """The profile's fault windows (seconds since the test start), clipped to ``end_s``."""
    windows: dict[str, list[Window]] = {f.name: [] for f in faults}
    starts: dict[tuple[str, int], float] = {}
    for event in plan(faults):
        key = (event.fault.name, event.occurrence)
        if event.event == "start":
            starts[key] = event.t_s
        elif key in starts:
            windows[event.fault.name].append((starts.pop(key), event.t_s))
    for (name, _), start in starts.items():  # no duration: until the end of the run
        windows[name].append((start, end_s))
    return Timeline(start_s=0.0, end_s=end_s, faults=windows)


def fetch_service_stats(url: str, *, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The service's ``/stats`` JSON, or ``None`` (logged) when it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            data = json.loads(response.read())
    except Exception as exc:  # the gates on service.* then fail as "no such metric"
        log.error("could not read %s: %s", url, exc)
        return None
    return data if isinstance(data, dict) else None


def judge(
    gates: tuple[str, ...],
    metrics: Mapping[str, Any],
    *,
    timeline: Timeline | None = None,
    metrics_for: PhaseMetrics = None,
) -> list[GateResult]:
    """Parse and evaluate ``gates`` (profile order) against ``metrics``.

    A phase-scoped gate is judged on ``metrics_for(windows)`` over ``timeline``
    (both needed; without them it fails saying so).

    A sample aggregation (``p(N)``, ``min``, ``max``, ``med``) on a metric that
    is a single number (``lookup.db`` is a mean) fails with a message naming
    the metric to use instead, rather than silently comparing the mean.
    """
    scoped = parse_gates(gates)
    results: list[GateResult] = []
    for gate in scoped:
        if gate.phase.kind != "all":
            results.append(_phased(gate, timeline, metrics_for))
            continue
        value = metrics.get(gate.gate.metric)
        summary_only = isinstance(value, int | float) and gate.gate.aggregation in _SAMPLE_AGGS
        if summary_only:
            message = (
                f"{gate.gate.metric} is a single number, not samples; "
                f"name a percentile metric such as {gate.gate.metric}.p95"
            )
            results.append(GateResult(gate, "fail", None, message))
        else:
            results.extend(evaluate([gate], metrics))
    return results


_SAMPLE_AGGS = ("p", "min", "max", "med")


def _phased(gate: ScopedGate, timeline: Timeline | None, metrics_for: PhaseMetrics) -> GateResult:
    if timeline is None or metrics_for is None:
        return GateResult(gate, "fail", None, "no per-second data to judge a phase on")
    return evaluate_scoped([gate], timeline, metrics_for)[0]


class GateHook:
    """Locust listener evaluating the gates once, when the master (or local) process quits."""

    def __init__(self, faults: Any = None) -> None:
        self._faults = faults  # the FaultHook, whose records go into the report
        self.results: list[GateResult] | None = None
        self._started = time.time()
        self._environment: Any = None
        self._workers = 0
        self._stopped: float | None = None
        self.buckets = Buckets()

    def attach(self, environment: Any) -> None:
        """Register on ``environment.events`` (call from the ``init`` event)."""
        self._environment = environment
        environment.events.test_start.add_listener(self._on_start)
        environment.events.spawning_complete.add_listener(self._count_workers)
        environment.events.quitting.add_listener(self._on_quitting)
        environment.events.test_stop.add_listener(self._on_stop)
        environment.events.request.add_listener(self._on_request)
        environment.events.report_to_master.add_listener(self._ship)
        environment.events.worker_report.add_listener(self._merge)

    def _on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: Any = None,
        context: Any = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        degraded = isinstance(context, dict) and context.get("outcome") == "degraded"
        self.buckets.add(
            request_type or "",
            name,
            start_time if start_time is not None else time.time(),
            response_time or 0.0,
            failed=exception is not None,
            degraded=degraded,
        )

    def _ship(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        data[REPORT_KEY] = self.buckets.drain()

    def _merge(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        self.buckets.merge(data.get(REPORT_KEY) or ())

    def _on_stop(self, **_: Any) -> None:
        self._stopped = time.time()

    def _on_start(self, **_: Any) -> None:
        self._started = time.time()

    def _count_workers(self, **_: Any) -> None:
        # Workers have left by the time the master quits; count them while they run.
        runner = getattr(self._environment, "runner", None)
        self._workers = max(self._workers, int(getattr(runner, "worker_count", 1) or 0))

    def _on_quitting(self, environment: Any, **_: Any) -> None:
        from locust.runners import WorkerRunner

        if isinstance(environment.runner, WorkerRunner) or self.results is not None:
            return
        settings = resolve(environment.parsed_options, host=environment.host)
        if not settings.gates_enabled:
            return
        stats = environment.runner.stats
        records = [
            EndpointRecord(
                e.method or "", e.name, e.num_requests, e.num_failures, dict(e.response_times)
            )
            for e in stats.entries.values()
        ]
        total = stats.total
        window_s = max((total.last_request_timestamp or 0) - (total.start_time or 0), 0.0)
        service = fetch_service_stats(settings.stats_url) if settings.stats_url else None
        target = settings.load_target
        plain = frozenset(r.name for r in target.requests) if target is not None else frozenset()
        metrics = load_metrics(records, window_s=window_s, service_stats=service, plain_names=plain)
        end_s = max((self._stopped or time.time()) - self._started, 0.0)
        everything = self.buckets.records([(0.0, end_s + 1.0)], start_s=self._started)
        metrics.update(degraded_metrics(*everything, plain_names=plain))
        faults = settings.profile.faults if settings.profile else ()

        def metrics_for(windows: list[Window]) -> Metrics:
            found, degraded = self.buckets.records(windows, start_s=self._started)
            span = sum(max(z - a, 0.0) for a, z in windows)
            out = load_metrics(found, window_s=span, plain_names=plain)
            out.update(degraded_metrics(found, degraded, plain_names=plain))
            return out

        default = HTTP_DEFAULT_GATES if plain else DEFAULT_GATES
        gates = settings.gates or default
        try:
            self.results = judge(
                gates,
                metrics,
                timeline=fault_timeline(tuple(faults), end_s),
                metrics_for=metrics_for,
            )
        except ValueError as exc:  # a gate that does not parse: say so, fail the run
            log.error("%s", exc)
            environment.process_exit_code = 2
            return
        run_errors = self._report(environment, settings, metrics, service)
        passed = all(result.passed for result in self.results)
        # As for scenarios: 0 every gate holds, 1 a gate failed, 2 the faults could not be applied.
        environment.process_exit_code = 2 if run_errors else (0 if passed else 1)

    def _report(
        self,
        environment: Any,
        settings: LoadSettings,
        metrics: Mapping[str, Any],
        service: Mapping[str, Any] | None,
    ) -> list[str]:
        """Print the table, write gates.json and gates.junit.xml; return fault-control errors."""
        assert self.results is not None
        print(render_table(self.results), flush=True)
        runner = environment.runner
        applier = getattr(self._faults, "applier", None)
        records = applier.records if applier else []
        run_errors = [f"fault {r.op} {r.fault}: {r.error}" for r in records if not r.ok]
        summary = {
            "profile": settings.profile.name if settings.profile else None,
            "host": environment.host,
            "started_at": self._started,
            "locust_workers": self._workers or getattr(runner, "worker_count", 1),
            "window_s": metrics.get("window_s"),
            "requests": metrics.get("http.all.requests"),
            "failures": metrics.get("http.all.failures"),
            "throughput_rps": (
                metrics["http.all.requests"] / metrics["window_s"]
                if metrics.get("window_s")
                else None
            ),
            "endpoints": _endpoint_summary(metrics),
            "service_stats": service,
            "faults": [r.to_dict() for r in records],
            "fault_errors": run_errors,
        }
        directory = settings.report_dir
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / "gates.json", self.results, summary)
        write_junit(
            directory / "gates.junit.xml",
            self.results,
            suite=summary["profile"] or "load",
            run_errors=run_errors,
        )
        for problem in run_errors:
            print(f"run error: {problem}", flush=True)
        log.info("gate reports written to %s", directory)
        return run_errors


def _endpoint_summary(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        if not key.startswith("http.") or key.count(".") != 1 or not isinstance(value, list):
            continue
        samples = value  # sorted ascending already
        n = len(samples)

        def pct(q: float, samples: list[float] = samples, n: int = n) -> float | None:
            return samples[min(n - 1, max(0, -(-int(q * n) // 100) - 1))] * 1000 if n else None

        out[key[5:]] = {
            "requests": metrics.get(f"{key}.requests"),
            "failures": metrics.get(f"{key}.failures"),
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": samples[-1] * 1000 if n else None,
        }
    return out
