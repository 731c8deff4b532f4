"""The pytest plugin: fixtures work, cleanup runs between tests, start is lazy, import is cheap."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN_TESTS = textwrap.dedent(
    """
    import os
    import sys
    from pathlib import Path

    import redis

    def test_0_nothing_started_before_a_test_asks():
        assert "resilience.backends.environment" not in sys.modules
        envs = Path(os.environ["RESILIENCE_STATE_DIR"]) / "envs"
        assert not envs.exists() or not any(envs.iterdir())

    def test_a_leaves_a_mess(pg_conn, postgres_proxy, redis_proxy, redis_client, resilience_env):
        pg_conn.execute(
            "INSERT INTO micro_services (id, slug, category) "
            "VALUES (gen_random_uuid(), 'mess', 'test')"
        )
        redis_client.set("mess", "1")
        postgres_proxy.add_toxic("latency", name="lat", attributes={"latency": 10})
        redis_proxy.disable()

    def test_b_finds_it_clean(pg_conn, postgres_proxy, toxiproxy_server, resilience_env):
        assert pg_conn.execute("SELECT count(*) FROM micro_services").fetchone() == (0,)
        assert postgres_proxy.toxics() == []
        assert toxiproxy_server.get_proxy("redis").enabled
        direct = redis.Redis.from_url(resilience_env.urls.redis_direct)
        assert direct.dbsize() == 0
        direct.close()

    def test_b2_typed_client(resilience_toxiproxy):
        assert set(resilience_toxiproxy.proxies()) == {"postgres", "redis", "booking-api"}

    async def test_c_asyncpg_through_the_proxy(asyncpg_conn, resilience_urls):
        assert await asyncpg_conn.fetchval("SELECT 1") == 1
        assert resilience_urls.postgres != resilience_urls.postgres_direct
    """
)


def _run_pytest(
    tmp_path: Path, state: Path, source: str, *args: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(source)
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args,
         str(tmp_path / "test_inner.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def test_lazy_start_fixtures_and_per_test_cleanup(state_dir: Path, tmp_path: Path) -> None:
    """One inner session: nothing starts before it is asked for (the option selects
    the backend), the fixtures work, and each test finds the environment clean."""
    result = _run_pytest(
        tmp_path, state_dir, PLUGIN_TESTS, "--resilience-backend=local", "-o", "asyncio_mode=auto"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_importing_the_plugin_is_cheap() -> None:
    code = (
        "import sys, resilience.pytest_plugin; "
        "heavy = [m for m in ('psycopg', 'redis', 'asyncpg', 'resilience.backends', 'toxiproxy')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
