"""The simulator's :class:`~resilience.scenario.faults.FaultController`.

Applies each fault of the timeline to the modelled proxies with the same
parameters the Toxiproxy controller sends: a toxic is added with its name,
type, stream, toxicity and wire attributes; ``disable`` / ``enable`` switch
the proxy (``down`` in Toxiproxy's clients is the same); ``clear_all`` is
``POST /reset``. Process faults act on the modelled server behind the proxy:
``pause`` holds every exchange until ``resume``, ``kill`` / ``restart``
close its connections and refuse new ones until the window ends (a
restarted Redis model loses its data unless ``keep_data``). Every call is
instantaneous in virtual time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resilience.scenario.model import PROCESS_ACTIONS
from resilience.sim.proxy import ModelProxy

__all__ = ["ModelFaultController"]


class ModelFaultController:
    """Faults onto :class:`ModelProxy` objects, by target name (``postgres``, ``redis``)."""

    def __init__(self, proxies: Mapping[str, ModelProxy]) -> None:
        self.proxies = dict(proxies)
        self.calls: list[tuple[str, str]] = []
        self.down: dict[str, bool] = {}  # target killed or stopped → keep_data at its start

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
        if fault.action in PROCESS_ACTIONS:
            self._process(proxy, fault)
            return
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

    def _process(self, proxy: ModelProxy, fault: Any) -> None:
        """A process fault on the server behind ``proxy`` (see ModelProxy's server methods)."""
        if fault.action == "pause":
            proxy.pause_server()
        elif fault.action == "resume":
            proxy.resume_server()
        else:  # kill, restart: down now, up when the window ends (restart: at once if open)
            proxy.kill_server()
            if fault.action == "restart" and fault.duration is None:
                proxy.start_server(keep_data=fault.keep_data)
            else:
                self.down[fault.target] = fault.keep_data

    async def clear(self, fault: Any) -> None:
        """Undo ``fault``: remove its toxic, or re-enable a disabled proxy."""
        self.calls.append(("clear", fault.name))
        proxy = self._proxy(fault.target)
        if fault.action == "pause":
            proxy.resume_server()
            return
        if fault.action in ("kill", "restart"):
            proxy.start_server(keep_data=self.down.pop(fault.target, True))
            return
        if fault.action is not None:
            if fault.action == "disable":
                proxy.enable()
            return
        if fault.name in proxy.toxics:
            proxy.remove_toxic(fault.name)

    async def clear_all(self) -> None:
        """Enable every proxy and remove every toxic."""
        self.calls.append(("clear_all", "*"))
        for target, proxy in self.proxies.items():
            proxy.resume_server()
            if target in self.down:
                proxy.start_server(keep_data=self.down.pop(target))
            proxy.reset()
