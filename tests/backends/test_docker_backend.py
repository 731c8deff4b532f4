"""The docker backend: real containers where an engine answers, one clear sentence where not."""

from __future__ import annotations

import pytest

from resilience.backends import BackendUnavailable, Environment, EnvironmentConfig
from resilience.backends.docker import docker_engine_answers
from resilience.backends.environment import resolve_backend_name

ENGINE = docker_engine_answers()


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


@pytest.mark.docker
@pytest.mark.skipif(not ENGINE, reason="no Docker engine answers on this machine")
def test_docker_environment_serves_through_toxiproxy() -> None:  # pragma: no cover - needs Docker
    import psycopg

    with Environment("docker") as env:
        with psycopg.connect(env.urls.postgres) as conn:
            assert conn.execute(b"SELECT 1").fetchone() == (1,)
        assert set(env.toxiproxy.proxies()) == {"postgres", "redis"}
