"""One local environment (PostgreSQL, Redis, fault proxy) shared by the HTTP-target tests."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import have_servers

TINY_APP = Path(__file__).with_name("tiny_app.py")


class OneEnvironment:
    """An ``EnvironmentPool`` stand-in that hands out one started environment."""

    def __init__(self, env: Any) -> None:
        self.env = env

    async def get(self, spec: object) -> Any:
        del spec
        return self.env


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OneEnvironment]:
    if not have_servers():
        pytest.skip("needs PostgreSQL and Redis binaries")
    from resilience.backends import Environment, EnvironmentConfig

    del tmp_path_factory
    state = Path(tempfile.mkdtemp(prefix="resilience-targets-state-"))
    state.chmod(0o755)  # PostgreSQL runs as an unprivileged user and must enter it
    old = os.environ.get("RESILIENCE_STATE_DIR")
    os.environ["RESILIENCE_STATE_DIR"] = str(state)
    env = Environment("local", config=EnvironmentConfig.from_env())
    env.start()
    try:
        yield OneEnvironment(env)
    finally:
        env.stop()
        shutil.rmtree(state, ignore_errors=True)
        if old is None:
            os.environ.pop("RESILIENCE_STATE_DIR", None)
        else:
            os.environ["RESILIENCE_STATE_DIR"] = old


@pytest.fixture
def tiny_command() -> str:
    return f"{sys.executable} {TINY_APP} {{port}}"
