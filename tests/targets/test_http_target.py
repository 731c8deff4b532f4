"""An HTTP service started as a command: faults through the proxies, classification,
scraping, crashes and bad input, with real processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from resilience.scenario.loader import parse_scenario
from resilience.scenario.metrics import metrics_for
from resilience.scenario.real_stack import open_real_stack
from resilience.scenario.runner import run_scenario
from tests.targets.conftest import TINY_APP, OneEnvironment

BASE = """\
name: tiny
seed: 7
target:
  command: "{command}"
  url: "http://127.0.0.1:{{port}}"
  ready: /health
  env: {{REDIS_URL: "{{redis.url}}"{env}}}
  startup_timeout: {startup}
  shutdown_timeout: 2s
{metrics}
workload:
  duration: {duration}
  rate: 60
  keys: {{values: [alpha, beta, gamma, "a b/c"]}}
  requests:
    - {{name: item, path: "/items/{{key}}", weight: 4,
        degraded_when: [{{header: X-Fallback}}], path_from: {{json: /source}}}}
    - {{name: missing, path: /missing, weight: 1, status: {{404: ok}}}}
    - {{name: broken, path: /nowhere, weight: 1}}
steady_state:
  timeout: 3s
  http: [{{get: /health, status: 200}}, {{get: "/items/{{key}}", status: 200, within: 2s}}]
{faults}
gates:
  - http.degraded_rate > 0.5 @ during redis-down
  - http.degraded_rate < 0.1 @ before
  - http.status.500 > 0
{extra_gates}
"""


FAULT = (
    "faults:\n  - {{name: redis-down, at: {at}, duration: {duration}, target: redis, "
    "action: disable}}"
)


def _scenario(
    command: str,
    tmp_path: Path,
    *,
    env: str = "",
    startup: str = "15s",
    metrics: str = "",
    duration: str = "4s",
    faults: str = FAULT.format(at="1.5s", duration="1.5s"),
    extra_gates: str = "",
) -> object:
    text = BASE.format(
        command=command.replace("\\", "\\\\"),
        env=env,
        startup=startup,
        metrics=metrics,
        duration=duration,
        faults=faults,
        extra_gates=extra_gates,
    )
    return parse_scenario(text)


def _factory(environment: OneEnvironment):  # type: ignore[no-untyped-def]
    def make(scenario):  # type: ignore[no-untyped-def]
        return open_real_stack(scenario, pool=environment)

    return make


def _processes_with(marker: str) -> list[int]:
    """PIDs whose command line contains ``marker`` (the test's own tmp folder name)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if marker.encode() in cmdline and b"tiny_app" in cmdline:
            found.append(int(entry.name))
    return found


async def test_faults_reach_the_service_and_answers_are_classified(
    environment: OneEnvironment, tiny_command: str, tmp_path: Path
) -> None:
    scenario = _scenario(
        tiny_command,
        tmp_path,
        metrics="  metrics: /metrics",
        extra_gates=(
            "  - prom.tiny_requests_total.delta > 10\n"
            '  - prom.tiny_requests_total.delta{status="404"} >= 1\n'
            '  - prom.tiny_requests_total.delta{status="404"} < 60\n'
            "  - missing.count >= 1"
        ),
    )
    result = await run_scenario(
        scenario,  # type: ignore[arg-type]
        stack_factory=_factory(environment),
        history_path=tmp_path / "history.jsonl",
    )
    assert result.status == "completed", result.error
    assert [r.message for r in result.results if not r.passed] == []
    history = result.history
    assert history is not None
    assert history.target_kind == "http"
    m = metrics_for(history, [(0.0, 4.0)])
    assert m["http.status.404"] == m["missing.count"]
    assert m["missing.outcome.ok"] == 1.0
    assert m["broken.error_rate"] == 1.0
    assert m["item.redis"]
    assert m["item.fallback"]  # path_from read the JSON body during the fault
    assert {o.status for o in history.ops} == {200, 404, 500}
    assert history.other["scrape"]
    # every 500 the service counted is one the workload asked for: the harness did not
    # knock on /ws/events (no gate here reads the event stream)
    served_500 = metrics_for(history, [(0.0, 1e9)])['prom.tiny_requests_total{status="500"}']
    assert served_500 == sum(1 for o in history.ops if o.status == 500)
    assert (tmp_path / "target.log").read_text().startswith("tiny_app: listening")
    assert _processes_with(tmp_path.name) == []


async def test_same_seed_sends_the_same_request_sequence(
    environment: OneEnvironment, tiny_command: str, tmp_path: Path
) -> None:
    runs = []
    for i in range(2):
        short = FAULT.format(at="0.5s", duration="0.5s")
        scenario = _scenario(tiny_command, tmp_path, duration="1.5s", faults=short)
        result = await run_scenario(
            scenario,  # type: ignore[arg-type]
            stack_factory=_factory(environment),
            history_path=tmp_path / f"h{i}.jsonl",
        )
        assert result.history is not None
        runs.append([(o.t_us, o.op, o.slug) for o in result.history.ops])
    assert runs[0] == runs[1]
    assert len(runs[0]) > 40


async def test_a_target_that_exits_mid_run_fails_the_run_and_says_why(
    environment: OneEnvironment, tiny_command: str, tmp_path: Path
) -> None:
    scenario = _scenario(tiny_command, tmp_path, env=', EXIT_AFTER_S: "2"', duration="6s")
    result = await run_scenario(
        scenario,  # type: ignore[arg-type]
        stack_factory=_factory(environment),
        history_path=tmp_path / "history.jsonl",
    )
    assert result.status == "target_failed"
    assert result.exit_code == 1
    assert "exit code 3" in (result.error or "")
    assert "tiny_app: exiting on purpose" in (result.error or "")
    controller_proxies = await _proxies_enabled(environment)
    assert all(controller_proxies.values())  # faults removed


async def _proxies_enabled(environment: OneEnvironment) -> dict[str, bool]:
    from resilience.proxy.client import AsyncToxiproxyClient

    async with AsyncToxiproxyClient(environment.env.urls.toxiproxy_api) as client:
        return {name: p.enabled and not p.toxics for name, p in (await client.proxies()).items()}


@pytest.mark.parametrize(
    ("command", "env", "startup", "metrics", "expected"),
    [
        ("no-such-binary-xyz {port}", "", "5s", "", "'no-such-binary-xyz' not found"),
        ("TINY", ', EXIT_AT_START: "1"', "5s", "", "refusing to start"),
        ("sleep 30", "", "1s", "", "not ready within 1s"),
        ("TINY", ', BAD_METRICS: "1"', "10s", "  metrics: /metrics", "not Prometheus text"),
    ],
    ids=["not-found", "crash-at-start", "never-ready", "bad-metrics"],
)
async def test_a_target_that_cannot_start_aborts_with_the_reason(
    environment: OneEnvironment,
    tiny_command: str,
    tmp_path: Path,
    command: str,
    env: str,
    startup: str,
    metrics: str,
    expected: str,
) -> None:
    scenario = _scenario(
        tiny_command if command == "TINY" else command,
        tmp_path,
        env=env,
        startup=startup,
        metrics=metrics,
    )
    result = await run_scenario(
        scenario,  # type: ignore[arg-type]
        stack_factory=_factory(environment),
        history_path=tmp_path / "history.jsonl",
    )
    assert result.status == "aborted"
    assert result.exit_code == 2
    assert expected in (result.error or "")
    if (tmp_path / "target.log").exists():
        assert _processes_with(tmp_path.name) == []


def test_a_problem_found_at_start_names_the_file_and_line(tmp_path: Path) -> None:
    from resilience.scenario.loader import locate_message

    file = tmp_path / "s.yaml"
    file.write_text("name: x\ntarget:\n  command: nope {port}\n  env: {A.B: '1'}\n")
    said = "target.command: 'nope' not found"
    assert locate_message(file, said) == f"{file}:3: {said}"
    assert locate_message(file, "target.env.A.B: x").startswith(f"{file}:4: ")
    assert locate_message(file, "the target exited") == "the target exited"
    assert locate_message(None, said) == said


def test_bad_target_sections_name_the_problem() -> None:
    from resilience.scenario.loader import ScenarioError

    with pytest.raises(ScenarioError, match=r":3: workload\.requests: an HTTP target needs"):
        parse_scenario(
            "name: x\ntarget: {url: 'http://127.0.0.1:9'}\nworkload: {duration: 1s, rate: 1}\n"
        )
    with pytest.raises(ScenarioError, match=r":2: target\.command: .* did you mean 'postgres'"):
        parse_scenario(
            "name: x\ntarget: {command: 'app --db {postgress.url}'}\n"
            "workload: {duration: 1s, rate: 1, requests: [{name: a, path: /}]}\n"
        )
    located = r"faults\[0\]\.target: target .payment. is not a declared dependency; did you mean"
    with pytest.raises(ScenarioError, match=located):
        parse_scenario(
            "name: x\ndependencies: {payments: {upstream: '127.0.0.1:9000'}}\n"
            "workload: {duration: 2s, rate: 1}\n"
            "faults: [{at: 0, duration: 1s, target: payment, action: disable}]\n"
        )
    with pytest.raises(ScenarioError, match=r"unknown placeholder \{slug\}"):
        parse_scenario(
            "name: x\ntarget: {url: 'http://127.0.0.1:9'}\n"
            "workload: {duration: 1s, rate: 1, requests: [{name: a, path: '/s/{slug}'}]}\n"
        )


async def test_a_port_already_taken_is_refused_before_starting(
    environment: OneEnvironment, tmp_path: Path
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        text = f"""\
name: busy
target: {{command: "{sys.executable} {TINY_APP} {port}", url: "http://127.0.0.1:{port}"}}
workload: {{duration: 1s, rate: 5, keys: {{values: [a]}}, requests: [{{name: h, path: /health}}]}}
"""
        result = await run_scenario(
            parse_scenario(text),
            stack_factory=_factory(environment),
            history_path=tmp_path / "history.jsonl",
        )
    assert result.exit_code == 2
    assert f"port {port} is already taken" in (result.error or "")
    assert not (tmp_path / "target.log").exists()


RESILIENCE = str(Path(sys.executable).with_name("resilience"))
HARNESS_SCENARIO = """\
name: harness-signal
target:
  command: "{python} {app} {{port}} {marker}"
  env: {{REDIS_URL: "{{redis.url}}"}}
workload:
  duration: 60s
  rate: 20
  keys: {{values: [a, b]}}
  requests: [{{name: item, path: "/items/{{key}}"}}]
steady_state: {{timeout: 3s}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_signal_to_the_harness_leaves_no_target_process(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """A real ``resilience run`` process: stopped mid-run, its target goes with it."""
    marker = f"marker-{tmp_path.name}"
    scenario = tmp_path / "s.yaml"
    scenario.write_text(HARNESS_SCENARIO.format(python=sys.executable, app=TINY_APP, marker=marker))
    state = Path(tempfile.mkdtemp(prefix="resilience-targets-sig-"))
    state.chmod(0o755)
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(state)}
    harness = subprocess.Popen(
        [RESILIENCE, "run", str(scenario), "-o", str(tmp_path / "out"), "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _processes_with(marker):
            assert harness.poll() is None, "the harness ended before its target started"
            assert time.monotonic() < deadline, "the target never started"
            time.sleep(0.2)
        time.sleep(1.0)
        harness.send_signal(sig)
        harness.wait(60)
        deadline = time.monotonic() + 10
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_with(marker) == []
    finally:
        if harness.poll() is None:
            os.killpg(harness.pid, signal.SIGKILL)
            harness.wait(10)
        for pid in _processes_with(marker):
            os.kill(pid, signal.SIGKILL)
        _stop_processes_under(state)  # a SIGKILLed harness leaves its environment behind
        shutil.rmtree(state, ignore_errors=True)


def _stop_processes_under(state: Path) -> None:
    """Stop the servers this test's harness started (their command lines name ``state``)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(state).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGTERM)


async def test_a_running_service_without_dependencies_needs_no_environment(
    tmp_path: Path,
) -> None:
    from resilience.backends.readiness import free_port

    port = free_port()
    app = subprocess.Popen(  # noqa: ASYNC220  # a quick fork before the run starts
        [sys.executable, str(TINY_APP), str(port)],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:1"},  # nothing there: fallbacks
    )
    try:
        text = f"""\
name: running
target: {{url: "http://127.0.0.1:{port}", startup_timeout: 10s}}
dependencies: {{}}
workload:
  duration: 1.5s
  rate: 40
  keys: {{values: [a, b]}}
  requests:
    - {{name: item, path: "/items/{{key}}", degraded_when: [{{header: X-Fallback}}]}}
gates:
  - http.degraded_rate == 1
  - http.error_rate == 0
"""
        result = await run_scenario(parse_scenario(text), history_path=tmp_path / "h.jsonl")
    finally:
        app.terminate()
        app.wait(10)
    assert result.status == "completed", result.error
    assert [r.message for r in result.results if not r.passed] == []
    assert not (tmp_path / "target.log").exists()  # nothing started, nothing logged


async def test_a_service_that_stops_answering_mid_run_fails_the_run(tmp_path: Path) -> None:
    from resilience.backends.readiness import free_port

    port = free_port()
    app = subprocess.Popen(  # noqa: ASYNC220  # a quick fork before the run starts
        [sys.executable, str(TINY_APP), str(port)],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "EXIT_AFTER_S": "2"},
    )
    try:
        text = f"""\
name: vanishing
target: {{url: "http://127.0.0.1:{port}", startup_timeout: 10s}}
dependencies: {{}}
workload:
  duration: 30s
  rate: 20
  keys: {{values: [a]}}
  requests: [{{name: health, path: /health}}]
steady_state: {{required: false}}
"""
        result = await run_scenario(parse_scenario(text), history_path=tmp_path / "h.jsonl")
    finally:
        if app.poll() is None:
            app.kill()
        app.wait(10)
    assert result.status == "target_failed"
    assert result.exit_code == 1
    assert f"nothing accepted a connection at 127.0.0.1:{port}" in (result.error or "")
    history = (tmp_path / "h.jsonl").read_text()
    assert '"type":"target","t_us"' in history  # recorded when it went away


async def test_a_stopped_target_is_reported_unresponsive_and_the_run_fails(
    tmp_path: Path,
) -> None:
    """SIGSTOP keeps the socket accepting (the kernel queues connections): only
    the liveness watch (requests time out, ``ready`` too) can tell it is gone."""
    import asyncio

    marker = f"stopme-{tmp_path.name}"
    text = f"""\
name: frozen
target:
  command: "{sys.executable} {TINY_APP} {{port}} {marker}"
  startup_timeout: 10s
  shutdown_timeout: 2s
  unresponsive_after: 2s
dependencies: {{}}
workload:
  duration: 30s
  rate: 20
  keys: {{values: [a]}}
  requests: [{{name: health, path: /health, timeout: 1s}}]
steady_state: {{required: false}}
"""
    history = tmp_path / "h.jsonl"
    stopped: list[int] = []

    async def until_written(record: str) -> None:  # the history is flushed as it goes
        for _ in range(600):
            if history.exists() and record in history.read_text():
                return
            await asyncio.sleep(0.1)

    async def stop_it_then_resume() -> None:
        await until_written('"type":"op"')
        pids = _processes_with(marker)
        assert len(pids) == 1
        os.kill(pids[0], signal.SIGSTOP)
        stopped.append(pids[0])
        await until_written('"type":"target"')
        os.kill(pids[0], signal.SIGCONT)  # before the harness's clean-up stops it

    stopper = asyncio.ensure_future(stop_it_then_resume())
    t0 = time.monotonic()
    try:
        result = await run_scenario(parse_scenario(text), history_path=history)
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        stopper.cancel()
        await asyncio.gather(stopper, return_exceptions=True)
    assert stopped, "the target was never stopped"
    assert result.status == "target_failed", result.error
    assert result.exit_code == 1
    error = result.error or ""
    assert "the target stopped answering" in error
    assert "GET /health got no answer" in error
    assert "stopped (SIGSTOP" in error
    assert "tiny_app: listening" in error  # the log's last lines
    assert time.monotonic() - t0 < 25  # ended early, not after the 30 s workload
    assert '"event":"unresponsive"' in history.read_text()
    assert _processes_with(marker) == []


async def test_an_http_target_scenario_can_pause_postgres(
    environment: OneEnvironment, tiny_command: str, tmp_path: Path
) -> None:
    """Process actions reach an HTTP target's dependencies (the shared fault controls)."""
    import asyncio

    import asyncpg

    text = f"""\
name: pg-pause
target: {{command: "{tiny_command}", ready: /health, shutdown_timeout: 2s}}
dependencies: {{postgres: {{}}, redis: {{}}}}
workload:
  duration: 3s
  rate: 20
  keys: {{values: [a]}}
  requests: [{{name: health, path: /health}}]
steady_state: {{required: false}}
faults:
  - {{name: pg-pause, at: 0.5s, duration: 2s, target: postgres, action: pause}}
"""
    history = tmp_path / "h.jsonl"
    direct = environment.env.urls.postgres_direct
    answered_while_paused: list[bool] = []

    async def connect_during_the_pause() -> None:
        for _ in range(100):
            if history.exists() and '"type":"fault"' in history.read_text():
                break
            await asyncio.sleep(0.1)
        try:
            conn = await asyncpg.connect(direct, timeout=0.7)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            answered_while_paused.append(False)
        else:
            answered_while_paused.append(True)
            await conn.close()

    probe = asyncio.ensure_future(connect_during_the_pause())
    result = await run_scenario(
        parse_scenario(text), stack_factory=_factory(environment), history_path=history
    )
    await probe
    assert result.status == "completed", result.error
    assert result.fault_errors == []
    events = [line for line in history.read_text().splitlines() if '"type":"fault"' in line]
    assert ['"event":"start"' in events[0], '"event":"stop"' in events[-1]] == [True, True]
    assert answered_while_paused == [False]  # the server really was paused
    conn = await asyncpg.connect(direct, timeout=5)  # and resumed afterwards
    await conn.close()


def test_resilience_run_in_process_leaves_sigterm_as_it_found_it(
    tmp_path: Path, tiny_command: str
) -> None:
    """``resilience run`` cancels the suite on SIGTERM through the loop; called in
    process (a test, a script) it must not leave SIGTERM to a loop that is closed."""
    from typer.testing import CliRunner

    from resilience.cli import app

    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(
        f"""\
name: tiny
target: {{command: "{tiny_command}", startup_timeout: 10s}}
dependencies: {{}}
workload:
  duration: 0.5s
  rate: 20
  keys: {{values: [a]}}
  requests: [{{name: health, path: /health}}]
steady_state: {{required: false}}
gates: [http.error_rate == 0]
"""
    )

    def mine(signum: int, frame: object) -> None:  # e.g. an Environment's own handler
        pass

    before = signal.signal(signal.SIGTERM, mine)
    try:
        result = CliRunner().invoke(
            app, ["run", "--no-progress", str(scenario), "-o", str(tmp_path / "out")]
        )
        assert result.exit_code == 0, result.output
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)
