"""Environment configuration: env vars, TOML and YAML files, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.backends import ConfigurationError, EnvironmentConfig, EnvironmentURLs


def test_environment_variables_override_the_file(tmp_path: Path) -> None:
    file = tmp_path / "env.toml"
    file.write_text(
        '[environment]\nbackend = "external"\nredis_url = "redis://file:1/0"\n'
        "startup_timeout_s = 7\n"
    )
    cfg = EnvironmentConfig.from_env(
        {"RESILIENCE_CONFIG": str(file), "RESILIENCE_REDIS_URL": "redis://env:2/0"}
    )
    assert cfg.backend == "external"
    assert cfg.redis_url == "redis://env:2/0"
    assert cfg.startup_timeout_s == 7.0


def test_yaml_file_is_read(tmp_path: Path) -> None:
    file = tmp_path / "env.yaml"
    file.write_text("backend: local\npg_template_cache: false\npg_settings:\n  work_mem: 8MB\n")
    cfg = EnvironmentConfig.from_file(file)
    assert cfg.backend == "local"
    assert cfg.pg_template_cache is False
    assert cfg.pg_settings == {"work_mem": "8MB"}


def test_unknown_keys_are_named(tmp_path: Path) -> None:
    file = tmp_path / "env.yaml"
    file.write_text("backend: local\npostgress_url: x\n")
    with pytest.raises(ConfigurationError, match="postgress_url"):
        EnvironmentConfig.from_file(file)


def test_bad_backend_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="auto, local, docker, external"):
        EnvironmentConfig(backend="kubernetes")


def test_urls_export_as_external_configuration() -> None:
    urls = EnvironmentURLs("postgresql://a", "redis://b", "postgresql://c", "redis://d", "http://e")
    cfg = EnvironmentConfig.from_env(urls.as_env())
    assert (cfg.postgres_url, cfg.redis_url, cfg.toxiproxy_url) == (
        "postgresql://a",
        "redis://b",
        "http://e",
    )
