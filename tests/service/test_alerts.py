"""Alert rules: sliding-window evaluation, and the Prometheus export checked by promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from service_support import FAST
from typer.testing import CliRunner

from resilience.cli import app as cli
from resilience.service import create_app
from resilience.service.alerts import DEFAULT_RULES, AlertEvaluator, prometheus_rules
from resilience.service.model import LookupResult
from resilience.service.runtime import open_service


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _result(outcome: str, *, path: str = "db", reason: str | None = None, ms: float = 5) -> Any:
    return LookupResult(
        slug="roof-repair",
        uuid=None,
        path=path,  # type: ignore[arg-type]
        outcome=outcome,  # type: ignore[arg-type]
        reason=reason,
        duration_us=int(ms * 1000),
        attempts=1,
    )


def test_fallback_alerts_fire_over_the_window_and_resolve_when_it_slides_past() -> None:
    clock = _Clock()
    alerts = AlertEvaluator(window_s=10.0, min_samples=20, clock=clock)
    for i in range(100):
        clock.now += 0.05
        alerts(
            _result("fallback", path="fallback", reason="connection")
            if i % 2
            else _result("success")
        )
    fired = {(t.rule.name, t.state) for t in alerts.evaluate()}
    again = alerts.evaluate()
    clock.now += 11.0
    for _ in range(30):
        alerts(_result("success", path="cache", ms=0.1))
    resolved = {(t.rule.name, t.state) for t in alerts.evaluate()}
    assert {("FallbackRateHigh", "firing"), ("FallbackRateCritical", "firing")} <= fired
    assert ("LookupFailureRateCritical", "firing") in fired
    assert ("LookupLatencyHigh", "firing") not in fired
    assert again == []
    assert ("FallbackRateHigh", "resolved") in resolved
    assert ("FallbackRateCritical", "resolved") in resolved
    assert alerts.firing == {}


def test_rate_rules_wait_for_enough_lookups_and_not_found_is_no_failure() -> None:
    clock = _Clock()
    alerts = AlertEvaluator(min_samples=20, clock=clock)
    for _ in range(19):
        alerts(_result("error", reason="connection"))
    early = alerts.evaluate()
    unknown = AlertEvaluator(min_samples=20, clock=clock)
    for _ in range(40):
        unknown(_result("fallback", path="fallback", reason="not_found"))
    names = {t.rule.name for t in unknown.evaluate()}
    assert early == []
    assert "LookupFailureRateHigh" not in names
    assert "FallbackRateHigh" in names


def test_breaker_opens_and_migration_failures_have_their_own_rules() -> None:
    from resilience.breaker.state import BreakerState, Transition

    clock = _Clock()
    alerts = AlertEvaluator(clock=clock)
    opened = Transition(BreakerState.CLOSED, BreakerState.OPEN, "test", 0.0, clock.now)
    for _ in range(6):
        alerts.on_transition(None, opened)
    alerts.record_migration(processed=100, failed=7)
    names = {t.rule.name for t in alerts.evaluate()}
    assert names == {"BreakerOpensHigh", "MigrationFailureRateHigh"}


async def test_every_metric_the_exported_rules_read_is_served_on_metrics(
    urls: Any, known: dict[str, uuid.UUID]
) -> None:
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        transport = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            await client.get(f"/services/{next(iter(known))}")
            await client.get("/services/not-known-here")
            text = (await client.get("/metrics")).text
    served = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    document = prometheus_rules()
    read = {
        name
        for rule in document["groups"][0]["rules"]
        for name in re.findall(r"resilience_[a-z_]+", rule["expr"])
    }
    missing = sorted(read - served - {"resilience_lookup_reason_total"})
    assert missing == []
    assert "resilience_lookup_reason_total" in served  # the not_found fallback above


def test_alerts_cli_lists_the_rules_and_exports_prometheus_yaml() -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["alerts"])
    exported = runner.invoke(cli, ["alerts", "--prometheus", "--for", "30"])
    document = yaml.safe_load(exported.stdout)
    assert listed.exit_code == 0
    assert len(listed.stdout.splitlines()) == len(DEFAULT_RULES)
    assert exported.exit_code == 0
    rules = document["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == [r.name for r in DEFAULT_RULES]
    assert {r["for"] for r in rules} == {"30s"}


_PROMTOOL_TEST = """
rule_files: [rules.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'resilience_operations_total{operation="lookup",outcome="success"}'
        values: '0+70x20'
      - series: 'resilience_operations_total{operation="lookup",outcome="fallback"}'
        values: '0+30x20'
      - series: 'resilience_lookup_reason_total{reason="circuit_open"}'
        values: '0+30x20'
      - series: 'resilience_operation_path_total{operation="lookup",path="cache"}'
        values: '0+80x20'
      - series: 'resilience_operation_latency_seconds_sum{operation="lookup"}'
        values: '0+1x20'
      - series: 'resilience_operation_latency_seconds_count{operation="lookup"}'
        values: '0+100x20'
    alert_rule_test:
      - eval_time: 4m
        alertname: FallbackRateHigh
        exp_alerts:
          - exp_labels: {severity: warning, metric: fallback_rate}
            exp_annotations:
              summary: fallback rate above 20 %
              description: fallback_rate > 0.2 over 60s
      - eval_time: 4m
        alertname: FallbackRateCritical
        exp_alerts: []
      - eval_time: 4m
        alertname: LookupLatencyHigh
        exp_alerts: []
      - eval_time: 4m
        alertname: CacheHitRateLow
        exp_alerts: []
"""


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian: apt-get install prometheus)",
)
def test_exported_rules_pass_promtool_check_and_fire_on_synthetic_series(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    exported = CliRunner().invoke(cli, ["alerts", "--prometheus"])
    rules.write_text(exported.stdout)
    (tmp_path / "test.yml").write_text(_PROMTOOL_TEST)
    check = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    unit = subprocess.run(
        ["promtool", "test", "rules", "test.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(DEFAULT_RULES)} rules found" in check.stdout
    assert unit.returncode == 0, unit.stdout + unit.stderr
