"""Virtual-time simulation: the real primitives against modelled dependencies.

* :func:`run_simulated` — run a scenario on virtual time (what ``resilience
  run --simulate`` calls); same seed, same history, byte for byte.
* :class:`VirtualEventLoop`, :func:`run_virtual`, :class:`LoopClock` — the
  virtual-time machinery, usable on its own.
* :class:`ModelSettings` — the dependency models' parameters;
  :mod:`resilience.sim.calibrate` derives them from a real run's history.
* :func:`tune` (:mod:`resilience.sim.tune`) — an optuna search of service
  settings with the gates as constraints, early stopping, noise re-runs and
  the Pareto front; :mod:`resilience.sim.confirm` checks the best for real,
  :mod:`resilience.sim.cluster` runs trials on Dask. The Poisson rate bounds (:func:`poisson_upper`,
  :func:`rate_upper_bound`) live with the gates that judge on them
  (:mod:`resilience.scenario.gates.confidence`) and are re-exported here.

See docs/simulation.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from resilience.sim.clock import LoopClock
from resilience.sim.loop import SimulationDeadlock, VirtualEventLoop, run_virtual

if TYPE_CHECKING:
    from resilience.scenario.gates.confidence import poisson_upper, rate_upper_bound
    from resilience.sim.run import run_simulated, run_simulated_async
    from resilience.sim.stack import ModelSettings, SimStack, build_sim_stack

# The service (and its web app) load only when a simulation is built; the
# scenario package (where the rate bounds live) only when they are asked for.
_LAZY = {
    "run_simulated": "resilience.sim.run",
    "run_simulated_async": "resilience.sim.run",
    "ModelSettings": "resilience.sim.stack",
    "SimStack": "resilience.sim.stack",
    "build_sim_stack": "resilience.sim.stack",
    "poisson_upper": "resilience.scenario.gates.confidence",
    "rate_upper_bound": "resilience.scenario.gates.confidence",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'resilience.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "LoopClock",
    "ModelSettings",
    "SimStack",
    "SimulationDeadlock",
    "VirtualEventLoop",
    "build_sim_stack",
    "poisson_upper",
    "rate_upper_bound",
    "run_simulated",
    "run_simulated_async",
    "run_virtual",
]
