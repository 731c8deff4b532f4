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
from resilience.backends.images import LOCAL_IMAGES
from resilience.proxy.api import TOXIPROXY_VERSION

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
LOCAL_OVERRIDE = COMPOSE.with_name("docker-compose.local.yml")


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags (``!reset``, ``!override``) read as plain values."""


for _tag in ("!reset", "!override"):
    _ComposeLoader.add_constructor(
        _tag,
        lambda loader, node: (
            loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_object(node)
        ),
    )


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
    assert ":-ghcr.io/shopify/toxiproxy:" in services["toxiproxy"]["image"]


def test_the_compose_toxiproxy_version_is_the_one_our_proxy_claims() -> None:
    image = _load()["services"]["toxiproxy"]["image"]
    assert image.rstrip("}").endswith(f"toxiproxy:{TOXIPROXY_VERSION}")


def test_the_local_override_runs_the_local_images_on_the_published_host_ports() -> None:
    override = yaml.load(LOCAL_OVERRIDE.read_text(), Loader=_ComposeLoader)
    own_port = {"postgres": "55432", "redis": "56379", "toxiproxy": "8474"}
    for name, service in override["services"].items():
        assert service["network_mode"] == "host", name
        assert service["ports"] == [], name
        assert f":-{LOCAL_IMAGES[name]}}}" in service["image"], name
        assert own_port[name] in service["command"], name
    proxies = json.loads(override["configs"]["toxiproxy_proxies_host"]["content"])
    by_name = {p["name"]: p for p in proxies}
    assert by_name["postgres"]["listen"].endswith(":15432")
    assert by_name["postgres"]["upstream"] == "127.0.0.1:55432"
    assert by_name["redis"]["listen"].endswith(":16379")
    assert by_name["redis"]["upstream"] == "127.0.0.1:56379"


def test_ports_and_proxies_match_the_external_defaults() -> None:
    data = _load()
    published = {int(p.split(":")[1]) for s in data["services"].values() for p in s["ports"]}
    for key in ("postgres_url", "redis_url", "postgres_direct_url", "redis_direct_url",
                "toxiproxy_url"):  # fmt: skip
        assert int(COMPOSE_DEFAULTS[key].rsplit(":", 1)[1].split("/")[0]) in published, key
    proxies = {p["name"]: p for p in json.loads(data["configs"]["toxiproxy_proxies"]["content"])}
    assert proxies["postgres"]["upstream"] == COMPOSE_DEFAULTS["postgres_upstream"]
    assert proxies["redis"]["upstream"] == COMPOSE_DEFAULTS["redis_upstream"]
