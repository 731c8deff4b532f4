"""docker compose up with the local images, then the external backend against it.

Needs the private engine with the local images and Compose v2
(``.ci/docker-engine start && .ci/docker-engine compose && resilience images build``);
skips with the reason otherwise. Uses the compose file's fixed host ports.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilience.backends import Environment
from resilience.backends.docker import docker_engine_answers, docker_image_present
from resilience.backends.images import LOCAL_IMAGES
from resilience.backends.readiness import tcp_open

ROOT = Path(__file__).resolve().parents[2]
FILES = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "docker-compose.local.yml")]
HOST_PORTS = (55432, 56379, 8474, 15432, 16379)


def _why_not() -> str | None:
    if not docker_engine_answers():
        return "no Docker engine answers (.ci/docker-engine start)"
    if not all(docker_image_present(image) for image in LOCAL_IMAGES.values()):
        return "the engine lacks the local images (resilience images build)"
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "Compose v2 is not installed (.ci/docker-engine compose)"
    busy = [port for port in HOST_PORTS if tcp_open("127.0.0.1", port)]
    if busy:
        return f"the compose file's host ports {busy} are taken"
    return None


WHY_NOT = _why_not()
pytestmark = [pytest.mark.docker, pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")]


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "compose", "-p", "resilience-test", *FILES, *args],
        capture_output=True, text=True, timeout=180, check=False, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def compose_up() -> Iterator[None]:
    up = _compose("up", "-d", "--wait")
    try:
        assert up.returncode == 0, up.stderr[-2000:]
        yield
    finally:
        down = _compose("down", "--timeout", "5")
        assert down.returncode == 0, down.stderr[-2000:]


@pytest.mark.usefixtures("compose_up")
def test_the_external_backend_serves_and_faults_through_the_compose_proxy() -> None:
    import psycopg

    with Environment("external") as env:
        assert env.urls.postgres.endswith("@127.0.0.1:15432/resilience")
        with psycopg.connect(env.urls.postgres) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with env.toxiproxy.down("postgres"), pytest.raises(psycopg.OperationalError):
            psycopg.connect(env.urls.postgres, connect_timeout=2)
        with psycopg.connect(env.urls.postgres) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.slow
@pytest.mark.usefixtures("compose_up")
def test_a_suite_passes_with_resilience_backend_external_skipping_process_faults(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "RESILIENCE_BACKEND": "external",
           "RESILIENCE_STATE_DIR": str(tmp_path / "state")}  # fmt: skip
    result = subprocess.run(
        [str(Path(sys.executable).with_name("resilience")), "run",
         str(ROOT / "scenarios" / "02-unknown-service.yaml"),
         str(ROOT / "scenarios" / "14-postgres-paused.yaml"),
         "--report-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-2000:] + result.stderr[-2000:]
    assert "PASS unknown-service" in out
    assert "SKIPPED postgres-paused" in out  # the compose servers are not ours to pause
    assert "external backend cannot pause, kill or restart" in " ".join(out.split())


def test_compose_down_leaves_no_container() -> None:
    up = _compose("up", "-d", "--wait")
    down = _compose("down", "--timeout", "5")
    assert up.returncode == 0, up.stderr[-2000:]
    assert down.returncode == 0, down.stderr[-2000:]
    left = _compose("ps", "-a", "-q")
    assert left.stdout.strip() == ""
