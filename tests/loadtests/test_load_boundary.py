"""Locust stays a leaf: the resilience package never imports locust or gevent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from resilience.loadrun import locust_command, serve_command


def test_importing_the_cli_and_loadrun_pulls_in_neither_locust_nor_gevent() -> None:
    code = (
        "import sys, resilience.loadrun, resilience.cli; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')); "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pure_loadtests_modules_import_without_locust() -> None:
    code = (
        "import sys; import loadtests.stages, loadtests.workload, loadtests.profile, "
        "loadtests.timeline, loadtests.results, loadtests.report; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')); "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_command_lines_carry_profile_reports_faults_and_workers() -> None:
    command = locust_command(
        locustfile=Path("/x/locustfile.py"),
        host_url="http://127.0.0.1:1",
        profile=Path("/x/p.yaml"),
        report_dir=Path("/r"),
        toxiproxy_url="http://127.0.0.1:2",
        processes=2,
        extra=["--only-summary"],
    )
    text = " ".join(command)
    assert "-m locust -f /x/locustfile.py --headless --host http://127.0.0.1:1" in text
    assert "--load-profile /x/p.yaml --csv /r/locust --html /r/locust.html --report-dir /r" in text
    assert text.endswith("--toxiproxy-url http://127.0.0.1:2 --processes 2 --only-summary")
    serve = serve_command(
        host="127.0.0.1",
        port=9,
        workers=3,
        postgres_url="pg",
        redis_url="rd",
        overrides={"cache.max_size": 10},
    )
    assert serve[-8:] == [
        "--workers",
        "3",
        "--postgres-url",
        "pg",
        "--redis-url",
        "rd",
        "--set",
        "cache.max_size=10",
    ]
