"""Virtual-time simulation: the real primitives against modelled dependencies."""

from __future__ import annotations

from resilience.sim.clock import LoopClock
from resilience.sim.loop import SimulationDeadlock, VirtualEventLoop, run_virtual

__all__ = ["LoopClock", "SimulationDeadlock", "VirtualEventLoop", "run_virtual"]
