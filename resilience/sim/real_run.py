"""One configuration run for real: what confirmations, calibration and real trials share.

A tuned setting reaches the service one of two ways (:func:`with_params`):
``section.field`` names a setting of the reference service (the scenario's
``service:`` block), ``env.NAME`` an environment variable of a team's own
service that the harness starts (``target.env``). :func:`run_real` runs the
scenario through ``resilience run``'s path (:func:`run_scenario` on the
scenario's backend, uvloop), with SIGTERM cancelling it so that it is torn
down, not abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ENV_PREFIX",
    "check_env_param",
    "env_value",
    "run_real",
    "settings_block",
    "with_params",
]

ENV_PREFIX = "env."
"""Parameters named ``env.NAME`` set the started target's environment variable NAME."""

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_value(value: Any) -> str:
    """A parameter's value as an environment variable's text: ``3``, ``0.25``, ``true``
    (a duration was already turned into seconds)."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.6g}"
    return str(value)


def check_env_param(name: str) -> str:
    """``name`` if it is ``env.NAME`` with a valid variable name, else :class:`ParamError`."""
    from resilience.sim.space import ParamError

    variable = name.removeprefix(ENV_PREFIX)
    if not name.startswith(ENV_PREFIX) or not ENV_NAME.match(variable):
        raise ParamError(
            f"unknown setting {name!r} for a service of your own: name an environment "
            "variable it reads, as env.NAME (e.g. env.RETRY_ATTEMPTS=1..4; durations are "
            "passed in seconds)"
        )
    return name


def settings_block(params: Mapping[str, Any]) -> str:
    """YAML to paste into a scenario: ``service:`` settings and/or ``target: env:``."""
    import yaml

    data: dict[str, Any] = {}
    service = {k: v for k, v in params.items() if not k.startswith(ENV_PREFIX)}
    env = {
        k.removeprefix(ENV_PREFIX): env_value(v)
        for k, v in params.items()
        if k.startswith(ENV_PREFIX)
    }
    if service:
        data["service"] = service
    if env:
        data["target"] = {"env": env}
    return yaml.safe_dump(data, sort_keys=False)


def with_params(scenario: Any, params: Mapping[str, Any], *, seed: int | None = None) -> Any:
    """``scenario`` with ``params`` applied (and ``seed`` replacing its own, if given)."""
    env = {
        name.removeprefix(ENV_PREFIX): env_value(value)
        for name, value in params.items()
        if name.startswith(ENV_PREFIX)
    }
    service = {k: v for k, v in params.items() if not k.startswith(ENV_PREFIX)}
    update: dict[str, Any] = {}
    if service:
        update["service"] = {**scenario.service, **service}
    if env:
        target = scenario.target
        # A value is text, never a template: braces stay braces.
        literal = {k: v.replace("{", "{{").replace("}", "}}") for k, v in env.items()}
        update["target"] = target.model_copy(update={"env": {**target.env, **literal}})
    if seed is not None:
        update["seed"] = seed
    return scenario.model_copy(update=update) if update else scenario


def run_real(scenario: Any, history: Path) -> Any:
    """``resilience run``'s path for ``scenario``; SIGTERM cancels it (torn down)."""
    from resilience import eventloop
    from resilience.scenario.runner import run_scenario

    async def main() -> Any:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        previous = signal.getsignal(signal.SIGTERM)
        added = False
        if task is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGTERM, task.cancel)
                added = True
        try:
            return await run_scenario(scenario, history_path=history)
        finally:
            if added:  # a worker runs one trial after another: leave SIGTERM as found
                loop.remove_signal_handler(signal.SIGTERM)
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)

    return eventloop.run(main())
