"""Trials on a Dask cluster: a local one started here, and one that does not answer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resilience.sim.cluster import ClusterError, dask_executor
from resilience.sim.objectives import parse_objective
from resilience.sim.space import parse_param
from resilience.sim.tune import tune

from .test_search import FIELDS, outage

distributed = pytest.importorskip("distributed")


def test_a_small_tuning_runs_on_a_local_dask_cluster() -> None:
    """A scheduler and one worker process on 127.0.0.1; same study as in this process."""
    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        scenario = outage()
        params = [parse_param("breaker.failure_threshold=2..400:log", FIELDS)]
        objectives = [parse_objective("fallback_rate", maximize=False)]
        with dask_executor(cluster.scheduler_address) as (executor, width):
            assert width == 2
            remote = tune(
                [scenario], params, objectives, trials=4, seed=2, executor=executor, width=width
            )
        local = tune([scenario], params, objectives, trials=4, seed=2)
    finally:
        cluster.close()
    assert len(remote.candidates) == 4
    by_params = {str(c.params): c.spread(0) for c in local.candidates}
    for c in remote.candidates:
        if c.state == "complete":
            assert c.spread(0) == by_params[str(c.params)]  # the same simulation, elsewhere


def test_a_cluster_that_does_not_answer_is_a_clear_error_within_10_s(tmp_path: Path) -> None:
    from resilience.cli import app

    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: c\nworkload: {duration: 5s, rate: 10}\n")
    started = time.monotonic()
    result = CliRunner().invoke(
        app,
        [
            "tune",
            str(scenario),
            "-p",
            "retry.max_attempts=1..2",
            "--cluster",
            "tcp://127.0.0.1:9",
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "no Dask scheduler answers at 'tcp://127.0.0.1:9'" in result.output
    assert "within 10 s" in result.output
    assert time.monotonic() - started < 30  # a hang guard, not a speed target
    with (
        pytest.raises(ClusterError, match="within 1 s"),
        dask_executor("tcp://127.0.0.1:9", timeout_s=1),
    ):
        pass
