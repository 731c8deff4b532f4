"""The Environment facade: public names, start-once, idempotent stop, the backend seam."""

from __future__ import annotations

import pytest

import resilience.backends as backends
from resilience.backends import ConfigurationError, Environment, EnvironmentConfig
from resilience.backends.fake import StaticBackend


def test_public_names() -> None:
    assert sorted(backends.__all__) == backends.__all__
    assert {"Environment", "EnvironmentConfig", "EnvironmentURLs", "BinaryNotFound",
            "StartupFailed"} <= set(backends.__all__)  # fmt: skip


def test_starts_once_stops_idempotently_and_hands_out_the_backend_urls() -> None:
    fake = StaticBackend()
    env = Environment(backend_impl=fake)
    with pytest.raises(RuntimeError, match="not started"):
        _ = env.urls
    with env:
        assert env.start() is env.urls
        assert env.urls == fake.urls
        assert env.backend_name == "static"
    env.stop()
    assert (fake.starts, fake.stops) == (1, 2)
    assert not env.started


async def test_async_context_manager_uses_the_same_backend() -> None:
    fake = StaticBackend()
    async with Environment(backend_impl=fake) as env:
        assert env.urls.redis == fake.urls.redis
    assert (fake.starts, fake.stops) == (1, 1)


def test_unknown_backend_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="backend must be one of"):
        Environment("podman", config=EnvironmentConfig()).start()
