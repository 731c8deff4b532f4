"""A port picked as free and taken by someone else before the bind: the local backend
starts again on new ports instead of failing (environments side by side under
``pytest -n`` or ``tune --confirm-jobs`` pick their ports independently)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilience.backends import Environment, EnvironmentConfig, StartupFailed
from resilience.backends.local import PORT_RACE_RETRIES, lost_port_race
from resilience.backends.readiness import free_port, redis_ping
from resilience.backends.state import StateDir


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _first_pick_taken(monkeypatch: pytest.MonkeyPatch, module: str, port: int) -> list[int]:
    """``module``'s free_port hands out ``port`` once, then real free ports; returns its picks."""
    picks: list[int] = []

    def pick(host: str = "127.0.0.1") -> int:
        picks.append(port if not picks else free_port(host))
        return picks[-1]

    monkeypatch.setattr(f"{module}.free_port", pick)
    return picks


@pytest.mark.parametrize(
    "module",
    [
        "resilience.backends.postgres",  # the PostgreSQL server's port
        "resilience.backends.redis",  # the Redis server's port
        "resilience.backends.proxies",  # the proxy server's API
        "resilience.backends.booking_api",  # the booking API stub
        "resilience.backends.local",  # a proxy's listen address (postgres's comes first)
    ],
)
def test_a_lost_port_race_starts_again_on_new_ports(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, taken: int, module: str
) -> None:
    picks = _first_pick_taken(monkeypatch, module, taken)
    with Environment("local", config=EnvironmentConfig(state_dir=state_dir)) as env:
        urls = env.urls.as_dict()
        assert picks[0] == taken  # the taken port was tried first, then another
        assert len(picks) >= 2
        assert not any(f":{taken}/" in u or u.endswith(f":{taken}") for u in urls.values())
        redis_host, redis_port = env.urls.redis.split("//")[1].split("/")[0].split(":")
        assert redis_ping(redis_host, int(redis_port))  # the retried environment works


def test_a_port_taken_every_time_fails_with_the_servers_own_words(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, taken: int
) -> None:
    monkeypatch.setattr("resilience.backends.redis.free_port", lambda host="127.0.0.1": taken)
    before = {m.directory for m in StateDir(state_dir).markers()}
    with pytest.raises(StartupFailed, match=r"(?i)address already in use") as failed:
        Environment("local", config=EnvironmentConfig(state_dir=state_dir)).start()
    assert lost_port_race(failed.value)
    assert {m.directory for m in StateDir(state_dir).markers()} == before  # all torn down
    assert PORT_RACE_RETRIES >= 1


def test_other_startup_failures_are_not_retried() -> None:
    assert not lost_port_race(StartupFailed("postgres was not ready after 30.0 s"))
    assert lost_port_race(StartupFailed("x", log_tail="bind: Address already in use"))
