"""``resilience init``: a commented starter scenario for the user's own service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "starter_scenario"]

_TEMPLATE = """\
# A starter chaos scenario for your service (docs/own-service.md).
# Check it with: resilience run {path} --check ; run it with: resilience run {path}
name: {name}
description: >
  PostgreSQL goes away for 5 s while requests keep arriving. Does the
  service answer, and does it come back?
seed: 1

# The service under test. {{port}} is a free port the harness picks; {{postgres.url}}
# and {{redis.url}} are the throwaway databases *behind the fault proxies*
# ({{postgres.direct_url}} bypasses them; host, port, user, password, database too).
target:
{target}
  ready: /health              # must answer 2xx once the service is up
  startup_timeout: 30s
  # metrics: /metrics         # scrape Prometheus text: gate on prom.<name>

# What sits behind fault proxies. postgres and redis are started for you; any
# other TCP service: payments: {{upstream: 127.0.0.1:9000}}
dependencies:
  postgres: {{}}              # {{init: [schema.sql], seed: [seed.sql]}} run before the run
  redis: {{}}

workload:
  duration: 20s
  warmup: 2s                  # excluded from the gates
  rate: 50                    # requests per second (open model: on schedule, always)
  late_tolerance: 20ms
  keys: {{values: [a, b, c]}}   # or {{file: keys.txt}}: drawn for {{key}} (Zipf by default)
  requests:                   # each is an operation; metrics per name (http.<name>)
    - name: health
      path: /health
      # path: "/items/{{key}}"  (also {{uuid}}, {{seq}}, {{random_int}}; method, query,
      # headers, json or body, weight, timeout, status: {{404: ok}},
      # degraded_when: [{{header: X-Fallback}}], path_from: {{json: /source}})

faults:                       # target: a dependency name; toxic or action
  - {{name: pg-down, at: 6s, duration: 5s, target: postgres, action: disable}}

steady_state:                 # checked before the run (exit 2) and after the faults (a gate)
  timeout: 15s
  http:
    - {{get: /health, status: 200, within: 1s}}

gates:                        # docs/gates.md
  - http.error_rate == 0 @ before
  - http.error_rate < 0.05 @ during pg-down
  - http p(99) < 500ms @ during pg-down
  - http.error_rate == 0 @ recovery within 5s
"""


def starter_scenario(*, name: str, url: str | None, command: str | None, path: str) -> str:
    """The starter text for a service at ``url`` or started by ``command``."""
    if command is not None:
        quoted = command.replace('"', '\\"')
        target = (
            f'  command: "{quoted}"\n'
            '  url: "http://127.0.0.1:{port}"\n'
            '  env: {DATABASE_URL: "{postgres.url}", REDIS_URL: "{redis.url}"}'
        )
    else:
        target = f'  url: "{url or "http://127.0.0.1:8000"}"   # already running'
    return _TEMPLATE.format(name=name, target=target, path=path)


def register(app: typer.Typer) -> None:
    """Add ``init``."""

    @app.command("init")
    def init(
        output: Annotated[Path, typer.Argument(help="Scenario file to write")] = Path(
            "scenarios/my-service.yaml"
        ),
        url: Annotated[
            str | None, typer.Option(help="URL of a service that is already running")
        ] = None,
        command: Annotated[
            str | None,
            typer.Option(help='Command starting the service, e.g. "uvicorn app:app --port {port}"'),
        ] = None,
        force: Annotated[bool, typer.Option(help="Overwrite an existing file")] = False,
    ) -> None:
        """Write a commented starter scenario for your own service."""
        from resilience.scenario.loader import ScenarioError, parse_scenario

        if url is not None and command is not None:
            typer.echo("give --url or --command, not both", err=True)
            raise typer.Exit(2)
        if command is not None and "{port}" not in command:
            typer.echo(
                "--command should bind the port the harness picks: put {port} in it "
                '(e.g. "uvicorn app:app --port {port}")',
                err=True,
            )
            raise typer.Exit(2)
        if output.exists() and not force:
            typer.echo(f"{output} exists; pass --force to overwrite it", err=True)
            raise typer.Exit(2)
        name = "".join(c if c.isalnum() or c in "-_" else "-" for c in output.stem) or "my-service"
        text = starter_scenario(name=name, url=url, command=command, path=str(output))
        try:
            parse_scenario(text, source=str(output))
        except ScenarioError as exc:
            typer.echo(f"the starter would not be valid: {exc}", err=True)
            raise typer.Exit(2) from None
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}; edit the requests and gates, then: resilience run {output}")
