"""The plugin for a team's own tests (through pytester): their schema and seed files,
per-test reset and re-seed, the one toxic style on the proxy fixtures, fixture factories."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SCHEMA = "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);\n"
SEED = "INSERT INTO orders (item) VALUES ('seeded');\n"

USER_TESTS = '''
import time

def test_1_sees_the_seed_and_writes(pg_conn):
    assert pg_conn.execute("SELECT item FROM orders").fetchall() == [("seeded",)]
    pg_conn.execute("INSERT INTO orders (item) VALUES ('mine')")
    assert pg_conn.execute("SELECT count(*) FROM orders").fetchone() == (2,)

def test_2_finds_the_table_truncated_and_reseeded(pg_conn):
    assert pg_conn.execute("SELECT id, item FROM orders").fetchall() == [(1, "seeded")]

def test_3_latency_on_the_postgres_proxy(pg_conn, postgres_proxy):
    # The documented style: the typed client bound to the proxy.
    postgres_proxy.add_toxic("latency", attributes={"latency": 200})
    started = time.monotonic()
    pg_conn.execute("SELECT 1")
    assert time.monotonic() - started >= 0.2
    assert [t.type for t in postgres_proxy.toxics()] == ["latency"]

def test_4_the_toxic_is_gone(postgres_proxy, redis_proxy):
    assert postgres_proxy.toxics() == []
    with redis_proxy.down():
        assert not redis_proxy.info.enabled
    assert redis_proxy.info.enabled

def test_5_toxiproxy_server_is_one_per_session(toxiproxy_server, request):
    assert request.fixturenames.count("toxiproxy_server") == 1
    assert toxiproxy_server.get_proxy("postgres").enabled
'''

FACTORY_CONFTEST = '''
from resilience import pytest_factories as factories

shop_env = factories.environment(
    backend="local", schema=["sql/schema.sql"], seed=["sql/seed.sql"], reference_schema=False
)
shop_db = factories.pg_conn("shop_env")
shop_pg_proxy = factories.proxy("shop_env", "postgres")
'''

FACTORY_TESTS = '''
import psycopg
import pytest

def test_a_own_environment_without_the_reference_schema(shop_db):
    tables = shop_db.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    ).fetchall()
    assert tables == [("orders",)]
    shop_db.execute("DELETE FROM orders")

def test_b_reseeded(shop_db):
    assert shop_db.execute("SELECT count(*) FROM orders").fetchone() == (1,)

def test_c_cut(shop_env, shop_pg_proxy):
    shop_pg_proxy.disable()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(shop_env.urls.postgres, connect_timeout=2)

def test_d_enabled_again(shop_db):
    assert shop_db.execute("SELECT 1").fetchone() == (1,)
'''


@pytest.fixture
def project(pytester: pytest.Pytester, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(state_dir))
    monkeypatch.delenv("RESILIENCE_BACKEND", raising=False)
    sql = pytester.path / "sql"
    sql.mkdir()
    (sql / "schema.sql").write_text(SCHEMA)
    (sql / "seed.sql").write_text(SEED)
    return pytester.path


def test_schema_and_seed_files_from_ini_are_applied_and_reset_per_test(
    pytester: pytest.Pytester, project: Path
) -> None:
    pytester.makeini(
        "[pytest]\nresilience_backend = local\nresilience_schema = sql/schema.sql\n"
        "resilience_seed = sql/seed.sql\n"
    )
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_seed_files_from_the_command_line_add_to_the_ini(
    pytester: pytest.Pytester, project: Path
) -> None:
    (project / "sql" / "more.sql").write_text("INSERT INTO orders (item) VALUES ('more');\n")
    pytester.makeini(
        "[pytest]\nresilience_schema = sql/schema.sql\nresilience_seed = sql/seed.sql\n"
    )
    pytester.makepyfile(
        test_more="def test_both(pg_conn):\n"
        "    rows = pg_conn.execute('SELECT item FROM orders ORDER BY id').fetchall()\n"
        "    assert rows == [('seeded',), ('more',)]\n"
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--resilience-backend=local", "--resilience-seed=sql/more.sql"
    )
    result.assert_outcomes(passed=1)


def test_fixture_factories_build_a_second_environment(
    pytester: pytest.Pytester, project: Path
) -> None:
    pytester.makeconftest(FACTORY_CONFTEST)
    pytester.makepyfile(test_shop=FACTORY_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_a_missing_sql_file_is_named(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makeini("[pytest]\nresilience_backend = local\nresilience_schema = sql/nope.sql\n")
    pytester.makepyfile(test_x="def test_x(pg_conn):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*SQL file*sql/nope.sql does not exist*"])
