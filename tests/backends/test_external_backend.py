"""The external backend uses servers given by configuration (here: the session's own)."""

from __future__ import annotations

import psycopg
import pytest

from resilience.backends import Environment, EnvironmentConfig, StartupFailed
from resilience.backends.readiness import http_json


def test_external_uses_configured_urls_and_resets_proxies_on_stop(
    resilience_env: Environment, resilience_clean: None
) -> None:
    config = EnvironmentConfig.from_env(resilience_env.urls.as_env())
    external = Environment("external", config=config)
    with external:
        assert external.urls == resilience_env.urls
        with psycopg.connect(external.urls.postgres) as conn:
            assert conn.execute(b"SELECT 1").fetchone() == (1,)
        external.toxiproxy.add_toxic("postgres", "latency", name="x", attributes={"latency": 5})
    toxics = http_json("GET", f"{resilience_env.urls.toxiproxy_api}/proxies/postgres/toxics")
    assert toxics == []


def test_external_without_a_proxy_api_says_where_it_looked() -> None:
    config = EnvironmentConfig(toxiproxy_url="http://127.0.0.1:9", startup_timeout_s=0.3)
    with pytest.raises(StartupFailed, match=r"Toxiproxy API at http://127.0.0.1:9"):
        Environment("external", config=config).start()
