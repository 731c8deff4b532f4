"""Run a scenario in simulation: the scenario runner on a virtual-time loop.

:func:`run_simulated` is what ``resilience run --simulate`` calls. It builds a
:class:`~resilience.sim.stack.SimStack` for the scenario (the service with
the scenario's ``service`` settings plus ``overrides``, the seeded catalogue
the real stack would seed) and runs the same
:func:`~resilience.scenario.runner.run_scenario` the real mode uses, inside
one :class:`~resilience.sim.loop.VirtualEventLoop`, with the simulator's
:class:`~resilience.sim.dispatch.EagerDispatcher` plugged into the runner's
dispatcher seam. The history has the real
format (``mode: simulated``), so gates, reports and ``analyze`` work on it
unchanged. Same scenario, seed, overrides and models → byte-identical history.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from resilience.sim.dispatch import EagerDispatcher
from resilience.sim.loop import run_virtual
from resilience.sim.stack import ModelSettings, SimStack, build_sim_stack

__all__ = ["build_stack_for", "not_simulatable", "run_simulated", "run_simulated_async"]


def build_stack_for(
    scenario: Any,
    *,
    overrides: Mapping[str, Any] | None = None,
    models: ModelSettings | None = None,
    model_seed: int | None = None,
) -> SimStack:
    """The modelled stack for ``scenario`` (inside a running virtual loop).

    ``model_seed`` seeds the models' random streams (toxicity rolls, service
    times) instead of the scenario's seed; the workload and the catalogue keep
    the scenario's, so only what chance decides in a real run changes.
    """
    from resilience.db.catalogue import catalogue
    from resilience.service.config import ServiceConfig

    config = ServiceConfig().with_overrides({**scenario.service, **(overrides or {})})
    entries = catalogue(seed=scenario.seed, size=scenario.workload.keys.catalogue_size)
    return build_sim_stack(
        config=config,
        catalogue={e.slug: e.uuid for e in entries},
        slugs=[e.slug for e in entries],
        seed=scenario.seed if model_seed is None else model_seed,
        models=models,
    )


def not_simulatable(scenario: Any) -> str | None:
    """Why the simulator cannot run ``scenario`` faithfully, ``None`` when it can.

    Not modelled, so such a scenario is reported SKIPPED, never passed: a
    team's own HTTP service (the simulator runs the reference service's code
    in process, not another program), the migration backfill
    (``migration:``), the service's background components (``action:
    crash``) and its notification stream (gates on ``notify.*``,
    ``alerts.*``, ``health.*``): their gates would see no data.
    """
    from resilience.scenario.notify import NAMES

    if scenario.target_kind != "reference":
        return (
            "not simulatable: the simulator runs the reference service in process, and this "
            "scenario's target is an HTTP service of its own (target:); run it on a real stack"
        )
    if getattr(scenario, "migration", None) is not None:
        return (
            "not simulatable: the simulator does not model the migration backfill "
            "(migration:); run it on a real stack"
        )
    crashes = [f.name for f in scenario.faults if f.action == "crash"]
    if crashes:
        return (
            "not simulatable: the simulator does not model the service's background "
            f"components (action: crash in {', '.join(crashes)}); run it on a real stack"
        )
    notify = [g.expr for g in scenario.gates or () if g.scoped.gate.metric in NAMES]
    if notify:
        return (
            "not simulatable: the simulator does not model the service's notifications "
            f"(gates {', '.join(notify)}); run it on a real stack"
        )
    return None


async def run_simulated_async(
    scenario: Any,
    *,
    history_path: str | Path,
    overrides: Mapping[str, Any] | None = None,
    models: ModelSettings | None = None,
    gates: Sequence[Any] | None = None,
    progress: Callable[[Any], None] | None = None,
    fast: bool = True,
    model_seed: int | None = None,
) -> Any:
    """:func:`run_simulated` for a caller already inside a virtual loop."""
    from resilience.scenario.runner import RunResult, run_scenario

    reason = not_simulatable(scenario)
    if reason is not None:
        return RunResult(scenario, Path(history_path), status="skipped", error=reason)
    stack = build_stack_for(scenario, overrides=overrides, models=models, model_seed=model_seed)
    return await run_scenario(
        scenario,
        stack=stack,
        history_path=history_path,
        gates=gates,
        progress=progress,
        dispatcher=EagerDispatcher() if fast else None,
    )


def run_simulated(
    scenario: Any,
    *,
    history_path: str | Path,
    overrides: Mapping[str, Any] | None = None,
    models: ModelSettings | None = None,
    seed: int | None = None,
    gates: Sequence[Any] | None = None,
    progress: Callable[[Any], None] | None = None,
    fast: bool = True,
    model_seed: int | None = None,
) -> Any:
    """Simulate ``scenario`` (a :class:`~resilience.scenario.model.Scenario`).

    Synchronous: it runs its own virtual-time loop, so call it outside any
    running event loop (from a thread or process if needed). ``overrides``
    are dotted service settings (``breaker.failure_threshold`` …) applied
    over the scenario's; ``seed`` replaces the scenario's seed (``model_seed``
    only the models' random streams: see :func:`build_stack_for`); ``models``
    sets the dependency models (default: loopback PostgreSQL and Redis).
    ``fast=False`` uses the runner's default dispatcher (a task per
    operation) instead of the simulator's
    (:class:`~resilience.sim.dispatch.EagerDispatcher`). Returns the runner's
    :class:`~resilience.scenario.runner.RunResult`, with ``wall_s`` the real
    time the simulation took; status ``skipped`` (nothing run) for a scenario
    the simulator does not model (:func:`not_simulatable`).
    """
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    started = time.perf_counter()
    result = run_virtual(
        run_simulated_async(
            scenario,
            history_path=history_path,
            overrides=overrides,
            models=models,
            gates=gates,
            progress=progress,
            fast=fast,
            model_seed=model_seed,
        )
    )
    result.wall_s = time.perf_counter() - started
    return result
