"""``resilience tune`` on a team's own HTTP service: the simulator cannot run another
program, so every trial is a real run with the tuned ``env.NAME`` settings in the
started service's environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resilience.cli import app
from tests.servers import have_servers
from tests.targets.conftest import TINY_APP

SCENARIO = """\
name: tiny-tune
seed: 3
target:
  command: "{python} {app} {{port}}"
  url: "http://127.0.0.1:{{port}}"
  ready: /health
  env: {{REDIS_URL: "{{redis.url}}", DELAY_MS: "500"}}
workload:
  duration: 3s
  warmup: 0.5s
  rate: 40
  keys: {{values: [alpha, beta]}}
  requests:
    - {{name: item, path: "/items/{{key}}", degraded_when: [{{header: X-Fallback}}]}}
steady_state: {{probes: 2, timeout: 5s}}
gates:
  - http p(99) < 200ms
  - http.error_rate == 0
"""


def _scenario(tmp_path: Path, **changes: str) -> Path:
    text = SCENARIO.format(python=sys.executable, app=TINY_APP)
    for old, new in changes.items():
        text = text.replace(old, new)
    path = tmp_path / "tiny-tune.yaml"
    path.write_text(text)
    return path


def _tune(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["tune", *args])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.skipif(not have_servers(), reason="needs PostgreSQL and Redis binaries")
def test_the_trials_are_real_runs_with_the_tuned_environment(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = _tune(
        str(_scenario(tmp_path)),
        *("--param", "env.DELAY_MS=0,300", "--search", "grid", "--repeats", "1"),
        *("--workers", "1", "-o", str(out)),
    )
    assert code == 0, output
    assert "real runs" in output
    assert "2 run(s) of about 8 s, 1 at once: about 16 s" in output  # said before they start
    report = json.loads((out / "tune.json").read_text())
    held = {str(c["params"]["env.DELAY_MS"]): c["passed"] for c in report["candidates"]}
    # the scenario's own DELAY_MS (500) is replaced by each trial's
    assert held == {"0": True, "300": False}, report["candidates"]
    assert "target: env: DELAY_MS: '0'" in output  # the block to paste


@pytest.mark.parametrize(
    ("args", "changes", "why"),
    [
        (
            ["--param", "breaker.failure_threshold=2,3"],
            {},
            "unknown setting 'breaker.failure_threshold' for a service of your own",
        ),
        (["--param", "env.9LIVES=1,2"], {}, "name an environment variable it reads, as env.NAME"),
        (["--param", "env.DELAY_MS=0,1", "--confirm", "1"], {}, "real runs already"),
        (["--param", "env.DELAY_MS=0,1", "--cluster", "tcp://127.0.0.1:9"], {}, "this machine"),
        (["--param", "env.DELAY_MS=0,1", "--minimize", "lookup p(95)"], {}, "unknown metric"),
        (
            ["--param", "env.DELAY_MS=0,1"],
            {'  command: "': '  # command: "'},
            "no target.command",
        ),
    ],
    ids=["reference setting", "bad name", "confirm", "cluster", "objective", "running service"],
)
def test_what_cannot_be_tuned_is_exit_2_with_why(
    tmp_path: Path, args: list[str], changes: dict[str, str], why: str
) -> None:
    scenario = _scenario(tmp_path, **changes)
    if changes:  # a running service: the url must name its port
        text = scenario.read_text().replace("127.0.0.1:{port}", "127.0.0.1:9")
        scenario.write_text(text)
    code, output = _tune(str(scenario), *args, "-o", str(tmp_path / "out"))
    assert code == 2, output
    assert why in output
    assert not (tmp_path / "out").exists()  # nothing ran


def test_a_mix_of_reference_and_own_scenarios_is_refused(tmp_path: Path) -> None:
    reference = Path(__file__).resolve().parents[2] / "scenarios" / "03-postgres-down.yaml"
    code, output = _tune(
        str(_scenario(tmp_path)), str(reference), "--param", "env.DELAY_MS=0,1"
    )
    assert code == 2, output
    assert "one target at a time" in output
