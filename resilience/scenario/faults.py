"""The fault timeline and the controllers that put faults in and take them out.

:func:`plan` turns the scenario's fault entries into time-ordered start/stop
events (repeats expanded). A :class:`FaultController` applies them: the real
one, :class:`ToxiproxyFaultController`, speaks the Toxiproxy API and bounds
every control call with a timeout; :class:`RecordingFaultController` keeps the
state in memory (tests, dry runs); the simulator supplies its own.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from resilience.errors import TimeoutFailure
from resilience.scenario.model import (
    EXTENSION_TOXICS,
    HTTP_TOXICS,
    INSTANT_ACTIONS,
    PROCESS_ACTIONS,
    PROTOCOL_TOXICS,
    FaultSpec,
)

__all__ = [
    "FaultControlError",
    "FaultController",
    "FaultEvent",
    "PhaseRule",
    "RecordingFaultController",
    "ToxiproxyFaultController",
    "active_faults",
    "active_windows",
    "plan",
]


class FaultControlError(RuntimeError):
    """A fault could not be applied or removed (the control call failed or timed out)."""


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """Start or stop of one occurrence of a fault, ``t_s`` seconds after the workload start."""

    t_s: float
    event: Literal["start", "stop"]
    fault: FaultSpec
    occurrence: int = 0


def plan(faults: Sequence[FaultSpec]) -> list[FaultEvent]:
    """Every start/stop event in time order (a stop sorts before a start at the same instant)."""
    events: list[FaultEvent] = []
    for fault in faults:
        for i in range(fault.times):
            start = fault.at + i * (fault.every or 0.0)
            events.append(FaultEvent(start, "start", fault, i))
            if fault.duration is not None:
                events.append(FaultEvent(start + fault.duration, "stop", fault, i))
    return sorted(events, key=lambda e: (e.t_s, e.event != "stop"))


_ENDED_BY = {"disable": "enable", "pause": "resume"}


def _open_end(faults: Sequence[FaultSpec], fault: FaultSpec, start: float) -> float:
    """When a fault without a duration ends: a later ``enable`` of a disabled proxy (``resume``
    of a paused server), else never."""
    ender = _ENDED_BY.get(fault.action or "")
    if ender is None:
        return float("inf")
    enables = [
        f.at for f in faults if f.action == ender and f.target == fault.target and f.at > start
    ]
    return min(enables, default=float("inf"))


def active_faults(faults: Sequence[FaultSpec], t_s: float) -> list[str]:
    """Names of the faults planned to be active at ``t_s`` (``enable`` actions never are).

    A ``disable`` without a duration lasts until the next ``enable`` of the same proxy.
    """
    names: list[str] = []
    for fault in faults:
        if fault.action in INSTANT_ACTIONS:
            continue
        for i in range(fault.times):
            start = fault.at + i * (fault.every or 0.0)
            if fault.duration is not None:
                end = start + fault.duration
            else:
                end = _open_end(faults, fault, start)
            if start <= t_s < end:
                names.append(fault.name)
                break
    return names


def active_windows(faults: Sequence[FaultSpec]) -> list[tuple[float, float]]:
    """The planned active windows of ``faults``, merged where they overlap or touch, in order.

    ``t`` is inside one exactly when :func:`active_faults` at ``t`` is not empty.
    """
    spans: list[tuple[float, float]] = []
    for fault in faults:
        if fault.action in INSTANT_ACTIONS:
            continue
        for i in range(fault.times):
            start = fault.at + i * (fault.every or 0.0)
            if fault.duration is not None:
                end = start + fault.duration
            else:
                end = _open_end(faults, fault, start)
            if end > start:
                spans.append((start, end))
    spans.sort()
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class PhaseRule:
    """The phase of an operation started at ``t_s``: call it (``rule(t_s)``).

    ``warmup`` before ``warmup_s``; ``during`` inside a planned fault window;
    ``before`` until the first fault starts; ``after`` from then on. The
    windows are merged once and bisected, so a call costs microseconds
    whatever the length of the timeline (it runs once per operation).
    """

    __slots__ = ("_ends", "_first_fault_s", "_starts", "_warmup_s")

    def __init__(self, faults: Sequence[FaultSpec], *, warmup_s: float) -> None:
        windows = active_windows(faults)
        self._starts = [a for a, _ in windows]
        self._ends = [b for _, b in windows]
        self._warmup_s = warmup_s
        self._first_fault_s = min((f.at for f in faults), default=None)

    def __call__(self, t_s: float) -> str:
        if t_s < self._warmup_s:
            return "warmup"
        i = bisect.bisect_right(self._starts, t_s) - 1
        if i >= 0 and t_s < self._ends[i]:
            return "during"
        if self._first_fault_s is None or t_s < self._first_fault_s:
            return "before"
        return "after"


@runtime_checkable
class FaultController(Protocol):
    """Puts faults into the system under test and takes them out again."""

    async def apply(self, fault: FaultSpec) -> None:
        """Start ``fault`` (add the toxic, or disable/enable the proxy)."""
        ...

    async def clear(self, fault: FaultSpec) -> None:
        """Undo ``fault`` (remove the toxic, or re-enable the proxy)."""
        ...

    async def clear_all(self) -> None:
        """Remove every fault and enable every proxy, whatever state they are in."""
        ...


class ToxiproxyFaultController:
    """A :class:`FaultController` on a Toxiproxy API client.

    ``client`` is an async Toxiproxy client (``add_toxic``, ``remove_toxic``,
    ``update_proxy``, ``reset``), such as
    :class:`resilience.proxy.client.AsyncToxiproxyClient`. Each call is bounded
    by ``timeout_s``; a failure raises :class:`FaultControlError`.
    """

    def __init__(self, client: Any, *, timeout_s: float = 5.0) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.armed: set[str] = set()
        self.http: dict[str, str] = {}  # applied http_* toxic name → its proxy

    async def _toxic_error(self, target: str, name: str) -> str | None:
        """The ``error`` our proxy reports on an ``http_*`` toxic (a non-HTTP stream
        passed through unchanged), else None; a failed look-up is not an error."""
        try:
            toxics = await asyncio.wait_for(self.client.toxics(target), self.timeout_s)
        except Exception:
            return None
        for toxic in toxics:
            if getattr(toxic, "name", None) == name and getattr(toxic, "error", None):
                return str(toxic.error)
        return None

    async def _check_http(self, names: list[str]) -> None:
        """FaultControlError naming every ``http_*`` toxic of ``names`` that did not apply."""
        problems = []
        for name in names:
            target = self.http.pop(name, None)
            if target is None:
                continue
            error = await self._toxic_error(target, name)
            if error:
                problems.append(
                    f"toxic {name!r} on {target!r} passed the connection through unchanged: {error}"
                )
        if problems:
            raise FaultControlError("; ".join(problems))

    async def _call(self, what: str, call: Any) -> None:
        try:
            await asyncio.wait_for(call, self.timeout_s)
        except TimeoutError as exc:
            raise FaultControlError(f"{what}: no answer within {self.timeout_s:g} s") from exc
        except TimeoutFailure as exc:
            raise FaultControlError(f"{what}: {exc}") from exc
        except Exception as exc:
            raise FaultControlError(f"{what}: {exc}") from exc

    async def check_supported(self, faults: Sequence[FaultSpec]) -> None:
        """Refuse, before anything starts, toxics that this Toxiproxy API does not have.

        ``postgres_error``, ``redis_error`` and the ``http_*`` toxics exist only
        on our own proxy; the real ``toxiproxy-server`` would answer 400 mid-run.
        """
        wanted = sorted({f.toxic for f in faults if f.toxic in EXTENSION_TOXICS})
        if not wanted:
            return
        try:
            available = await asyncio.wait_for(self.client.toxic_types(), self.timeout_s)
        except Exception as exc:
            raise FaultControlError(f"could not list the proxy's toxic types: {exc}") from exc
        missing = [name for name in wanted if available is None or name not in available]
        if missing:
            server = "the real toxiproxy-server" if available is None else "this proxy server"
            raise FaultControlError(
                f"toxic {', '.join(map(repr, missing))} is an extension of resilience's own "
                f"proxy, and {server} does not have it. Run with resilience's proxy: on the "
                "local backend unset RESILIENCE_TOXIPROXY_SERVER or take toxiproxy-server off "
                "PATH; on docker or external, point RESILIENCE_TOXIPROXY_URL at "
                "'python -m resilience.proxy'"
            )

    async def arm(self, faults: Sequence[FaultSpec]) -> None:
        """Attach the protocol toxics at ``rate: 0`` before the system under test connects.

        A protocol toxic matches a ``prefix`` only on statements it saw being
        prepared; attached early, it watches every connection from its start,
        and :meth:`apply` / :meth:`clear` then only raise and zero its rate.
        """
        for fault in faults:
            if fault.toxic not in PROTOCOL_TOXICS or fault.name in self.armed:
                continue
            await self._call(
                f"arm toxic {fault.name!r} on {fault.target!r}",
                self.client.add_toxic(
                    fault.target,
                    fault.toxic,
                    name=fault.name,
                    stream=fault.stream,
                    toxicity=fault.toxicity,
                    attributes={**fault.attributes, "rate": 0.0},
                ),
            )
            self.armed.add(fault.name)

    async def _set_rate(self, fault: FaultSpec, attributes: dict[str, Any]) -> None:
        try:
            await self._call(
                f"set toxic {fault.name!r} on {fault.target!r}",
                self.client.update_toxic(fault.target, fault.name, attributes=attributes),
            )
        except FaultControlError:
            self.armed.discard(fault.name)  # gone (a reset): add it the ordinary way
            raise

    async def apply(self, fault: FaultSpec) -> None:
        if fault.name in self.armed:
            await self._set_rate(fault, {"rate": 1.0, **fault.attributes})
            return
        if fault.action in PROCESS_ACTIONS:
            raise FaultControlError(
                f"{fault.action} {fault.target!r} acts on a server process, not a proxy "
                "(the run needs a ProcessFaultController)"
            )
        if fault.action is not None:
            enabled = fault.action == "enable"
            await self._call(
                f"{fault.action} proxy {fault.target!r}",
                self.client.update_proxy(fault.target, enabled=enabled),
            )
            return
        await self._call(
            f"add toxic {fault.name!r} to {fault.target!r}",
            self.client.add_toxic(
                fault.target,
                fault.toxic,
                name=fault.name,
                stream=fault.stream,
                toxicity=fault.toxicity,
                attributes=dict(fault.attributes),
            ),
        )
        if fault.toxic in HTTP_TOXICS:
            self.http[fault.name] = fault.target

    async def clear(self, fault: FaultSpec) -> None:
        if fault.name in self.armed:
            await self._set_rate(fault, {"rate": 0.0})
            return
        if fault.action is not None:
            if fault.action == "disable":
                await self._call(
                    f"enable proxy {fault.target!r}",
                    self.client.update_proxy(fault.target, enabled=True),
                )
            return
        error = None
        if fault.name in self.http:
            try:
                await self._check_http([fault.name])
            except FaultControlError as exc:
                error = exc
        await self._call(
            f"remove toxic {fault.name!r} from {fault.target!r}",
            self.client.remove_toxic(fault.target, fault.name),
        )
        if error is not None:  # removed; the run's report names what did not apply
            raise error

    async def clear_all(self) -> None:
        self.armed.clear()  # a reset removes every toxic, armed ones too
        error = None
        try:
            await self._check_http(list(self.http))
        except FaultControlError as exc:
            error = exc
        self.http.clear()
        await self._call("reset all proxies", self.client.reset())
        if error is not None:
            raise error


@dataclass
class RecordingFaultController:
    """An in-memory :class:`FaultController` that records every call.

    ``active`` holds the names of applied toxics and disabled proxies
    (``proxy:<target>``); ``calls`` every call in order. Set ``fail_on`` to a
    fault name to make applying it raise :class:`FaultControlError`.
    """

    active: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_on: str | None = None

    async def apply(self, fault: FaultSpec) -> None:
        self.calls.append(("apply", fault.name))
        if fault.name == self.fail_on:
            raise FaultControlError(f"refusing to apply {fault.name!r} (fail_on)")
        if fault.action == "disable":
            self.active.add(f"proxy:{fault.target}")
        elif fault.action == "enable":
            self.active.discard(f"proxy:{fault.target}")
        else:
            self.active.add(fault.name)

    async def clear(self, fault: FaultSpec) -> None:
        self.calls.append(("clear", fault.name))
        if fault.action == "disable":
            self.active.discard(f"proxy:{fault.target}")
        else:
            self.active.discard(fault.name)

    async def clear_all(self) -> None:
        self.calls.append(("clear_all", "*"))
        self.active.clear()
