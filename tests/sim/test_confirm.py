"""Real confirmations side by side: a process and an environment each, none left behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from resilience.scenario.result import RunResult
from resilience.sim.confirm import confirm, default_jobs
from resilience.sim.objectives import parse_objective
from tests.servers import requires_servers

from .conftest import make_scenario

forks = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(),
    reason="the fake run reaches the run's process through fork",
)


@dataclass
class Candidate:
    number: int
    params: dict[str, Any] = field(default_factory=dict)


def _objectives() -> list[Any]:
    return [parse_objective("fallback_rate", maximize=False)]


def _fake_run(seconds: float, exit_code: int | None = None) -> Any:
    """A stand-in for run_scenario: notes its pid and times beside the history, then
    sleeps; a cancellation is noted too (what a real run tears down on)."""

    async def run_scenario(scenario: Any, *, history_path: Path) -> RunResult:
        note = Path(history_path).with_suffix(".json")
        note.write_text(json.dumps({"pid": os.getpid(), "start": time.time()}))
        if exit_code is not None and scenario.service.get("breaker.failure_threshold") == 3:
            os._exit(exit_code)
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            Path(history_path).with_suffix(".stopped").write_text("torn down")
            raise
        data = json.loads(note.read_text())
        note.write_text(json.dumps({**data, "end": time.time()}))
        return RunResult(scenario=scenario, history_path=Path(history_path))

    return run_scenario


def _candidates(n: int) -> list[Candidate]:
    return [Candidate(i, {"breaker.failure_threshold": i + 1}) for i in range(n)]


@forks
def test_runs_go_side_by_side_each_in_a_process_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("resilience.scenario.runner.run_scenario", _fake_run(0.6))
    said: list[str] = []
    confirmations = confirm(
        [make_scenario()], _candidates(3), _objectives(), tmp_path, jobs=2, say=said.append
    )
    assert [c.candidate.number for c in confirmations] == [0, 1, 2]
    assert len(said) == 3
    assert "#2" in said[2]
    notes = [json.loads((tmp_path / f"confirm-{i}-sim-test.json").read_text()) for i in range(3)]
    assert len({n["pid"] for n in notes} | {os.getpid()}) == 4  # three processes, none ours
    overlaps = [sum(1 for n in notes if n["start"] < m["start"] + 0.3 < n["end"]) for m in notes]
    assert max(overlaps) == 2  # two at once, never three
    for c in confirmations:
        (side,) = c.real
        assert (side.status, side.passed) == ("completed", True)
        assert side.history == str(tmp_path / f"confirm-{c.candidate.number}-sim-test.jsonl")
    assert multiprocessing.active_children() == []


@forks
def test_a_run_whose_process_dies_is_reported_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("resilience.scenario.runner.run_scenario", _fake_run(0.2, exit_code=3))
    confirmations = confirm([make_scenario()], _candidates(3), _objectives(), tmp_path, jobs=3)
    sides = [c.real[0] for c in confirmations]
    assert [s.status for s in sides] == ["completed", "completed", "crashed"]
    assert sides[2].error == "the run's process ended with exit code 3"
    assert not confirmations[2].passed
    assert multiprocessing.active_children() == []


@forks
@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)]
)
def test_an_interrupted_confirmation_stops_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, raised: type[BaseException]
) -> None:
    sigterm_before = signal.getsignal(signal.SIGTERM)
    if signum == signal.SIGTERM and sigterm_before != signal.SIG_DFL:
        pytest.skip("SIGTERM is handled by someone else here")
    monkeypatch.setattr("resilience.scenario.runner.run_scenario", _fake_run(60))
    notes = [tmp_path / f"confirm-{i}-sim-test.json" for i in range(2)]

    def interrupt() -> None:
        deadline = time.monotonic() + 20
        while not all(n.exists() for n in notes) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signum)  # Ctrl-C, or `kill`, while both runs are under way

    threading.Thread(target=interrupt, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(raised):
        confirm([make_scenario()], _candidates(3), _objectives(), tmp_path, jobs=2)
    assert time.monotonic() - t0 < 15  # stopped, not waited for
    assert sorted(p.name for p in tmp_path.glob("*.stopped")) == [
        "confirm-0-sim-test.stopped",
        "confirm-1-sim-test.stopped",
    ]  # each run was cancelled (its stack torn down); the third never started
    assert multiprocessing.active_children() == []
    assert signal.getsignal(signal.SIGTERM) == sigterm_before  # the handler found is back


def test_one_run_per_core_by_default_never_more_than_the_runs() -> None:
    cores = os.cpu_count() or 1
    assert default_jobs(1) == 1
    assert default_jobs(100) == cores
    assert default_jobs(0) == 1


def _servers_of(state: Path) -> list[int]:
    """Processes whose command line names the state dir (the servers' data dirs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(state).encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
@requires_servers
def test_real_confirmations_at_once_each_get_an_environment_and_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir_private: Path
) -> None:
    state = state_dir_private
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(state))
    scenario = make_scenario(
        name="short",
        workload={"duration": 4, "rate": 50, "warmup": 1, "keys": {"catalogue_size": 50}},
        faults=[],
        gates=["fallback_rate < 0.5"],
    )
    seen: set[frozenset[str]] = set()
    done = threading.Event()

    def watch() -> None:  # the environments alive at each moment
        while not done.is_set():
            with contextlib.suppress(OSError):
                seen.add(frozenset(p.name for p in (state / "envs").iterdir()))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        confirmations = confirm([scenario], _candidates(2), _objectives(), tmp_path, jobs=2)
        done.set()
        watcher.join()
        for c in confirmations:
            (side,) = c.real
            assert side.status == "completed", side.error
            assert side.passed, side.gates
        assert max(len(s) for s in seen) == 2  # two environments at once
        assert list((state / "envs").iterdir()) == []  # both removed
        assert _servers_of(state) == []
        assert multiprocessing.active_children() == []
    finally:
        done.set()
