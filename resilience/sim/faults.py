"""The simulator's :class:`~resilience.scenario.faults.FaultController`.

Applies each fault of the timeline to the modelled proxies with the same
parameters the Toxiproxy controller sends: a toxic is added with its name,
type, stream, toxicity and wire attributes; ``disable`` / ``enable`` switch
the proxy (``down`` in Toxiproxy's clients is the same); ``clear_all`` is
``POST /reset``. Every call is instantaneous in virtual time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resilience.scenario.model import PROCESS_ACTIONS, PROTOCOL_TOXICS
from resilience.sim.proxy import ModelProxy

__all__ = ["ModelFaultController"]


class ModelFaultController:
    """Faults onto :class:`ModelProxy` objects, by target name (``postgres``, ``redis``)."""

    def __init__(self, proxies: Mapping[str, ModelProxy]) -> None:
        self.proxies = dict(proxies)
        self.calls: list[tuple[str, str]] = []

    def _proxy(self, target: str) -> ModelProxy:
        try:
            return self.proxies[target]
        except KeyError:
            known = ", ".join(sorted(self.proxies))
            raise ValueError(f"no modelled proxy {target!r} (known: {known})") from None

    async def apply(self, fault: Any) -> None:
        """Start ``fault`` (a :class:`~resilience.scenario.model.FaultSpec`)."""
        self.calls.append(("apply", fault.name))
        proxy = self._proxy(fault.target)
        if fault.action in PROCESS_ACTIONS or fault.toxic in PROTOCOL_TOXICS:
            raise ValueError(
                f"the simulator has no model of {fault.kind} yet; run this scenario for real"
            )
        if fault.action is not None:
            if fault.action == "disable":
                proxy.disable()
            else:
                proxy.enable()
            return
        proxy.add_toxic(
            fault.name,
            fault.toxic,
            stream=fault.stream,
            toxicity=fault.toxicity,
            attributes=dict(fault.attributes),
        )

    async def clear(self, fault: Any) -> None:
        """Undo ``fault``: remove its toxic, or re-enable a disabled proxy."""
        self.calls.append(("clear", fault.name))
        proxy = self._proxy(fault.target)
        if fault.action is not None:
            if fault.action == "disable":
                proxy.enable()
            return
        if fault.name in proxy.toxics:
            proxy.remove_toxic(fault.name)

    async def clear_all(self) -> None:
        """Enable every proxy and remove every toxic."""
        self.calls.append(("clear_all", "*"))
        for proxy in self.proxies.values():
            proxy.reset()
