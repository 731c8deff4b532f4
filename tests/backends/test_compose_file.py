"""docker-compose.yml parses, has the three services with healthchecks, and matches
the external backend's defaults."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from resilience.backends.external import COMPOSE_DEFAULTS

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _compose_cli() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


def _load() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.skipif(not _compose_cli(), reason="the docker compose CLI is not installed")
def test_docker_compose_config_accepts_the_file() -> None:  # pragma: no cover - needs the CLI
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_services_have_healthchecks_and_loopback_ports() -> None:
    services = _load()["services"]
    assert set(services) == {"postgres", "redis", "toxiproxy"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert all(str(p).startswith("127.0.0.1:") for p in service["ports"]), name
    assert services["toxiproxy"]["image"].startswith("ghcr.io/shopify/toxiproxy")


def test_ports_and_proxies_match_the_external_defaults() -> None:
    data = _load()
    published = {int(p.split(":")[1]) for s in data["services"].values() for p in s["ports"]}
    for key in ("postgres_url", "redis_url", "postgres_direct_url", "redis_direct_url",
                "toxiproxy_url"):  # fmt: skip
        assert int(COMPOSE_DEFAULTS[key].rsplit(":", 1)[1].split("/")[0]) in published, key
    proxies = {p["name"]: p for p in json.loads(data["configs"]["toxiproxy_proxies"]["content"])}
    assert proxies["postgres"]["upstream"] == COMPOSE_DEFAULTS["postgres_upstream"]
    assert proxies["redis"]["upstream"] == COMPOSE_DEFAULTS["redis_upstream"]
