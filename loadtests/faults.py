"""The fault timeline during a Locust run, applied through the Toxiproxy API.

:class:`FaultApplier` is plain code over a :class:`ProxyControl` (the
harness's :class:`~resilience.proxy.client.ToxiproxyClient` by default;
tests pass a fake): it starts and
stops faults and remembers what is active so :meth:`FaultApplier.cleanup`
can always put every proxy back. :class:`FaultHook` is the Locust side: on
``test_start`` (master or local runner only) it spawns a greenlet that walks
the timeline; on ``test_stop`` and ``quitting`` it stops the greenlet and
cleans up, whatever happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from loadtests.options import resolve
from loadtests.timeline import TimelineCursor
from resilience.scenario.faults import FaultEvent, plan

__all__ = [
    "FaultApplier",
    "FaultHook",
    "FaultRecord",
    "ProxyControl",
    "toxic_name",
    "toxiproxy_client",
]

log = logging.getLogger("loadtests.faults")


class ProxyControl(Protocol):
    """The part of :class:`resilience.proxy.client.ToxiproxyClient` a fault timeline uses."""

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, int] | None = None,
    ) -> Any: ...

    def remove_toxic(self, proxy: str, name: str) -> None: ...

    def update_proxy(self, name: str, *, enabled: bool | None = None) -> Any: ...


def toxiproxy_client(api_url: str) -> ProxyControl:
    """The harness's typed Toxiproxy client (sync httpx; gevent makes it cooperative)."""
    from resilience.proxy.client import ToxiproxyClient

    return ToxiproxyClient(api_url)


def toxic_name(event: FaultEvent) -> str:
    """The toxic's name on the proxy (and the record's ``fault``): one per occurrence.

    Repeats get ``-<occurrence>`` so a repeated fault without ``duration`` adds
    a second toxic instead of clashing with the first.
    """
    fault = event.fault
    return f"{fault.name}-{event.occurrence}" if fault.times > 1 else fault.name


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """What happened to one timeline event (times in seconds from the start of the load)."""

    at_s: float
    applied_at_s: float
    op: str
    fault: str
    target: str
    kind: str
    ok: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at_s": self.at_s,
            "applied_at_s": round(self.applied_at_s, 3),
            "op": self.op,
            "fault": self.fault,
            "target": self.target,
            "kind": self.kind,
            "ok": self.ok,
            "error": self.error,
        }


class FaultApplier:
    """Starts and stops faults on ``control``; :meth:`cleanup` undoes everything still active."""

    def __init__(self, control: ProxyControl, proxy_names: dict[str, str]) -> None:
        self.control = control
        self.proxy_names = proxy_names
        self.records: list[FaultRecord] = []
        self._toxics: dict[str, str] = {}  # toxic name → proxy
        self._disabled: set[str] = set()

    def handle(self, event: FaultEvent, elapsed_s: float) -> None:
        """Apply ``event``; a failing proxy call is recorded, never raised."""
        fault = event.fault
        key = toxic_name(event)
        proxy = self.proxy_names.get(fault.target, fault.target)
        try:
            if fault.toxic is not None:
                if event.event == "start":
                    self.control.add_toxic(
                        proxy,
                        fault.toxic,
                        name=key,
                        stream=fault.stream,
                        toxicity=fault.toxicity,
                        attributes=dict(fault.attributes),
                    )
                    self._toxics[key] = proxy
                else:
                    self._toxics.pop(key, None)
                    self.control.remove_toxic(proxy, key)
            else:
                disable = (fault.action == "disable") == (event.event == "start")
                self.control.update_proxy(proxy, enabled=not disable)
                if disable:
                    self._disabled.add(proxy)
                else:
                    self._disabled.discard(proxy)
            error = None
        except Exception as exc:  # recorded and reported; the run goes on
            error = f"{type(exc).__name__}: {exc}"
            log.error("fault %s %s on %s failed: %s", event.event, key, proxy, error)
        else:
            log.info("fault %s %s (%s) at %.1f s", event.event, key, fault.kind, elapsed_s)
        self.records.append(
            FaultRecord(
                event.t_s,
                elapsed_s,
                event.event,
                key,
                fault.target,
                fault.kind,
                error is None,
                error,
            )
        )

    def cleanup(self) -> None:
        """Remove every toxic this applier added and re-enable every proxy it disabled."""
        for name, proxy in list(self._toxics.items()):
            try:
                self.control.remove_toxic(proxy, name)
            except Exception as exc:  # the proxy may already be gone at shutdown
                log.warning("could not remove toxic %s from %s: %s", name, proxy, exc)
            self._toxics.pop(name, None)
        for proxy in sorted(self._disabled):
            try:
                self.control.update_proxy(proxy, enabled=True)
            except Exception as exc:  # as above
                log.warning("could not re-enable proxy %s: %s", proxy, exc)
        self._disabled.clear()

    @property
    def active(self) -> bool:
        return bool(self._toxics or self._disabled)


class FaultHook:
    """Locust listeners running one profile's fault timeline on the master (or local) runner."""

    def __init__(self, control_factory: Any = toxiproxy_client) -> None:
        self._control_factory = control_factory
        self.applier: FaultApplier | None = None
        self._greenlet: Any = None

    def attach(self, environment: Any) -> None:
        """Register on ``environment.events`` (call from the ``init`` event)."""
        environment.events.test_start.add_listener(self._on_start)
        environment.events.test_stop.add_listener(self._on_stop)
        environment.events.quitting.add_listener(self._on_stop)

    def _on_start(self, environment: Any, **_: Any) -> None:
        from locust.runners import WorkerRunner

        if isinstance(environment.runner, WorkerRunner):
            return
        settings = resolve(environment.parsed_options, host=environment.host)
        faults = settings.profile.faults if settings.profile else ()
        if not faults:
            return
        if not settings.toxiproxy_url:
            log.error("the profile has %d faults but no --toxiproxy-url; none applied", len(faults))
            return
        self.applier = FaultApplier(
            self._control_factory(settings.toxiproxy_url), settings.proxy_names
        )
        self._greenlet = _spawn(self._walk, plan(faults))

    def _walk(self, events: list[FaultEvent]) -> None:
        import gevent

        assert self.applier is not None
        cursor = TimelineCursor(events)
        started = time.monotonic()
        while not cursor.done:
            elapsed = time.monotonic() - started
            for event in cursor.due(elapsed):
                self.applier.handle(event, elapsed)
            next_at = cursor.next_at_s()
            if next_at is not None:
                gevent.sleep(min(max(next_at - (time.monotonic() - started), 0.0), 0.5))

    def _on_stop(self, **_: Any) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=5)
            self._greenlet = None
        if self.applier is not None and self.applier.active:
            self.applier.cleanup()


def _spawn(function: Any, *args: Any) -> Any:
    import gevent

    return gevent.spawn(function, *args)
