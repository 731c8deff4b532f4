"""``resilience alerts``: the service's alert rules, listed or as a Prometheus rules file."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def alerts(
    prometheus: Annotated[
        bool,
        typer.Option(
            "--prometheus",
            help="Print the rules as a Prometheus alerting-rules file "
            "(resilience alerts --prometheus > rules.yml; check with promtool check rules).",
        ),
    ] = False,
    window_s: Annotated[
        float,
        typer.Option("--window", min=1.0, help="Evaluation window in seconds (the service's: 60)."),
    ] = 60.0,
    for_s: Annotated[
        float, typer.Option("--for", min=0.0, help="Prometheus 'for:' duration in seconds.")
    ] = 0.0,
) -> None:
    """The alert rules of ../shared/TARGETS.md's "alert at" thresholds, as the service runs them."""
    from resilience.service.alerts import DEFAULT_RULES, prometheus_rules

    if prometheus:
        import yaml

        document = prometheus_rules(DEFAULT_RULES, window_s=window_s, for_s=for_s)
        typer.echo(yaml.safe_dump(document, sort_keys=False, width=200), nl=False)
        return
    for rule in DEFAULT_RULES:
        typer.echo(
            f"{rule.name:<30} {rule.severity:<8} {rule.metric} {rule.op} {rule.threshold:g}"
            f"  ({rule.summary})"
        )


def register(app: typer.Typer) -> None:
    """Add ``alerts`` to the ``resilience`` command."""
    app.command(name="alerts")(alerts)
