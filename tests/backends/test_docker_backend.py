"""The docker backend on a real engine: containers, URLs, readiness, faults, teardown, orphans.

Tests marked ``docker`` need an engine with the local images; start one with
``.ci/docker-engine start && eval "$(.ci/docker-engine env)" && resilience images build``
(``.ci/run`` does this). Without it they skip and say why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from resilience.backends import BackendUnavailable, Environment, EnvironmentConfig
from resilience.backends.docker import (
    docker_engine_answers,
    docker_image_present,
    images_of,
)
from resilience.backends.docker_reaper import ENVIRONMENT_LABEL
from resilience.backends.environment import resolve_backend_name
from resilience.backends.images import LOCAL_IMAGES

F = TypeVar("F", bound=Any)
ENGINE = docker_engine_answers()
WHERE = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
IMAGES = ENGINE and all(docker_image_present(i) for i in LOCAL_IMAGES.values())
_IMAGE_MARKS = (
    pytest.mark.docker,
    pytest.mark.skipif(
        not ENGINE,
        reason=f"no Docker engine answers at {WHERE} (.ci/docker-engine start; "
        'eval "$(.ci/docker-engine env)")',
    ),
    pytest.mark.skipif(
        ENGINE and not IMAGES, reason="the engine lacks the local images (resilience images build)"
    ),
)


def requires_images(test: F) -> F:
    """Mark ``test`` as needing an engine with the local images (skips with the reason)."""
    for mark in _IMAGE_MARKS:
        test = mark(test)
    return test


ABSENT_IMAGE = "resilience-local/absent:0"


def _labelled(environment_id: str) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        # The low-level list: the high-level one inspects each, racing with the reaper.
        found = client.api.containers(
            all=True, filters={"label": f"{ENVIRONMENT_LABEL}={environment_id}"}
        )
        return [str(c["Id"]) for c in found]
    finally:
        client.close()


@pytest.fixture
def docker_env() -> Iterator[Environment]:
    with Environment("docker") as env:
        yield env


def test_the_default_images_are_the_ones_images_build_makes() -> None:
    assert images_of(EnvironmentConfig()) == LOCAL_IMAGES


def test_image_names_come_from_resilience_variables() -> None:
    config = EnvironmentConfig.from_env(
        {"RESILIENCE_POSTGRES_IMAGE": "postgres:16", "RESILIENCE_TOXIPROXY_IMAGE": "tp:2.12.0"}
    )
    assert images_of(config)["postgres"] == "postgres:16"
    assert images_of(config)["redis"] == LOCAL_IMAGES["redis"]
    assert images_of(config)["toxiproxy"] == "tp:2.12.0"


@pytest.mark.skipif(ENGINE, reason="a Docker engine answers here")
def test_without_an_engine_the_error_is_one_clear_sentence() -> None:
    with pytest.raises(BackendUnavailable) as info:
        Environment("docker").start()
    message = str(info.value)
    assert "needs a running Docker engine" in message
    assert "\n" not in message
    assert message.count(". ") == 0


@pytest.mark.skipif(ENGINE, reason="a Docker engine answers here")
def test_auto_picks_local_without_an_engine() -> None:
    assert resolve_backend_name("auto", EnvironmentConfig()) == "local"
    assert resolve_backend_name("auto", EnvironmentConfig(backend="external")) == "external"


@requires_images
def test_auto_picks_docker_when_the_engine_has_the_images() -> None:
    assert resolve_backend_name("auto", EnvironmentConfig()) == "docker"


@pytest.mark.docker
@pytest.mark.skipif(not ENGINE, reason=f"no Docker engine answers at {WHERE}")
def test_auto_falls_back_to_local_with_a_notice_when_an_image_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = EnvironmentConfig(postgres_image=ABSENT_IMAGE)
    assert resolve_backend_name("auto", config) == "local"
    notice = capsys.readouterr().err
    assert notice.count("\n") == 1
    assert ABSENT_IMAGE in notice
    assert "using the local backend" in notice


@pytest.mark.docker
@pytest.mark.skipif(not ENGINE, reason=f"no Docker engine answers at {WHERE}")
def test_explicit_docker_names_the_image_it_could_not_get_in_one_sentence() -> None:
    config = EnvironmentConfig(redis_image=ABSENT_IMAGE)
    with pytest.raises(BackendUnavailable) as info:
        Environment("docker", config=config).start()
    message = str(info.value)
    assert f"could not get the redis image {ABSENT_IMAGE!r}" in message
    assert "resilience images build" in message
    assert "\n" not in message
    assert "Traceback" not in message


@pytest.mark.docker
@pytest.mark.skipif(not ENGINE, reason=f"no Docker engine answers at {WHERE}")
def test_resilience_up_with_an_image_it_cannot_get_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RESILIENCE_STATE_DIR": str(tmp_path),
        "RESILIENCE_REDIS_IMAGE": ABSENT_IMAGE,
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("resilience")), "up", "--backend", "docker"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert ABSENT_IMAGE in result.stderr
    assert "Traceback" not in result.stderr


@requires_images
def test_docker_environment_serves_on_loopback_through_the_proxy_container(
    docker_env: Environment,
) -> None:
    import psycopg
    import redis

    urls = docker_env.urls
    for url in (urls.postgres, urls.redis, urls.postgres_direct, urls.redis_direct):
        assert "@127.0.0.1:" in url or "//127.0.0.1:" in url
    assert urls.toxiproxy_api.startswith("http://127.0.0.1:")
    assert urls.postgres != urls.postgres_direct
    with psycopg.connect(urls.postgres) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("resilience",)
    assert redis.Redis.from_url(urls.redis).ping()
    assert set(docker_env.toxiproxy.proxies()) == {"postgres", "redis", "booking-api"}
    assert docker_env.backend_name == "docker"


@requires_images
def test_docker_environment_runs_the_booking_stub_behind_its_proxy(
    docker_env: Environment,
) -> None:
    """The stub's container (the project image) answers through proxy booking-api and
    counts at its direct URL; the proxy's HTTP toxics act on it."""
    import httpx

    from resilience.upstream import fetch_stats

    urls = docker_env.urls
    assert urls.booking_api.startswith("http://127.0.0.1:")
    assert urls.booking_api_direct.startswith("http://127.0.0.1:")
    assert urls.booking_api != urls.booking_api_direct
    with httpx.Client(base_url=urls.booking_api, timeout=5) as http:
        assert http.get("/availability", params={"date": "2026-12-05"}).status_code == 200
        docker_env.toxiproxy.add_toxic(
            "booking-api", "http_error", stream="upstream", attributes={"status": 503}
        )
        assert http.get("/availability", params={"date": "2026-12-05"}).status_code == 503
    assert fetch_stats(urls.booking_api_direct).by_route == {"GET /availability": {"200": 1}}


@requires_images
def test_a_fault_on_the_proxy_container_cuts_postgres_and_lifting_it_restores(
    docker_env: Environment,
) -> None:
    import psycopg

    urls = docker_env.urls
    docker_env.toxiproxy.update_proxy("postgres", enabled=False)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(urls.postgres, connect_timeout=2)
    with psycopg.connect(urls.postgres_direct) as conn:  # the server itself is fine
        assert conn.execute("SELECT 1").fetchone() == (1,)
    docker_env.toxiproxy.update_proxy("postgres", enabled=True)
    with psycopg.connect(urls.postgres) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@requires_images
def test_a_latency_toxic_on_the_proxy_container_delays_redis(docker_env: Environment) -> None:
    import redis

    client = redis.Redis.from_url(docker_env.urls.redis)
    client.ping()
    docker_env.toxiproxy.add_toxic("redis", "latency", attributes={"latency": 300})
    started = time.monotonic()
    client.ping()
    delayed_s = time.monotonic() - started
    assert delayed_s >= 0.3


@requires_images
def test_stop_removes_every_container_and_the_reaper() -> None:
    env = Environment("docker")
    env.start()
    backend = env.backend
    environment_id = backend.environment_id  # type: ignore[attr-defined]
    reaper = backend._reaper._process  # type: ignore[attr-defined]
    assert len(_labelled(environment_id)) == 4  # postgres, redis, proxy, booking stub
    env.stop()
    assert _labelled(environment_id) == []
    assert reaper.poll() is not None


HARNESS = textwrap.dedent(
    """
    import sys, time
    from resilience.backends import Environment
    env = Environment("docker")
    env.start()
    env.toxiproxy.update_proxy("postgres", enabled=False)
    print(env.backend.environment_id, flush=True)
    time.sleep(600)
    """
)


@requires_images
def test_sigkill_of_the_harness_leaves_no_container_within_5_s() -> None:
    harness = subprocess.Popen([sys.executable, "-c", HARNESS], stdout=subprocess.PIPE, text=True)
    try:
        assert harness.stdout is not None
        environment_id = harness.stdout.readline().strip()
        assert len(_labelled(environment_id)) == 4
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait()
        deadline = time.monotonic() + 5.0
        while _labelled(environment_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _labelled(environment_id) == []
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()


@requires_images
@pytest.mark.slow
@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("02-unknown-service.yaml", "unknown-service"),
        # the booking API stub in its container, behind the proxy container, an HTTP toxic
        ("22-booking-503-30pct.yaml", "booking-503-30pct"),
    ],
)
def test_a_default_scenario_passes_on_the_docker_backend(
    tmp_path: Path, file: str, name: str
) -> None:
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / file
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("resilience")), "run", str(scenario),
         "--backend", "docker", "--report-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"PASS {name}" in result.stdout


def test_images_build_without_an_engine_exits_2_with_one_sentence(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("resilience")), "images", "build"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "no Docker engine answers" in result.stderr
