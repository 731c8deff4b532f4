"""The live progress display: phase, rate, hit and fallback rates, breaker, faults.

The runner hands a :class:`Snapshot` to a sink a few times a second;
:class:`LiveProgress` renders them with rich (on a terminal), and
:class:`PlainProgress` prints one line every few seconds (CI logs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["LiveProgress", "PlainProgress", "Snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state of a run at one moment (rates over the last sampling interval)."""

    scenario: str
    t_s: float
    duration_s: float
    phase: str
    rate: float
    hit_rate: float | None
    fallback_rate: float | None
    breaker: str
    faults: tuple[str, ...]
    in_flight: int
    ops: int
    late: int
    errors: int


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:5.1f}%"


_BREAKER_STYLE = {"closed": "green", "open": "bold red", "half_open": "yellow"}


def render(snapshot: Snapshot) -> Table:
    """One snapshot as a small rich table."""
    table = Table.grid(padding=(0, 2))
    done = min(1.0, snapshot.t_s / snapshot.duration_s) if snapshot.duration_s else 1.0
    bar = "█" * int(done * 30) + "░" * (30 - int(done * 30))
    table.add_row(
        Text(snapshot.scenario, style="bold"),
        Text(f"{bar} {snapshot.t_s:5.1f}/{snapshot.duration_s:g}s"),
        Text(snapshot.phase, style="cyan"),
    )
    table.add_row(
        Text(f"rate {snapshot.rate:7.0f}/s  ops {snapshot.ops}  in flight {snapshot.in_flight}"),
        Text(f"hit {_pct(snapshot.hit_rate)}  fallback {_pct(snapshot.fallback_rate)}"),
        Text(f"breaker {snapshot.breaker}", style=_BREAKER_STYLE.get(snapshot.breaker, "")),
    )
    faults = ", ".join(snapshot.faults) or "none"
    table.add_row(
        Text(f"faults: {faults}", style="magenta" if snapshot.faults else "dim"),
        Text(
            f"late {snapshot.late}  errors {snapshot.errors}",
            style="red" if snapshot.errors else "",
        ),
        Text(""),
    )
    return table


class LiveProgress:
    """A rich ``Live`` display; use as a context manager and pass it as the sink."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._live: Live | None = None

    def __enter__(self) -> LiveProgress:
        self._live = Live(console=self.console, refresh_per_second=4, transient=True)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def __call__(self, snapshot: Snapshot) -> None:
        if self._live is not None:
            self._live.update(render(snapshot))


class PlainProgress:
    """One status line every ``every_s`` seconds of run time."""

    def __init__(self, stream: IO[str] | None = None, *, every_s: float = 5.0) -> None:
        import sys

        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._next = 0.0

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __call__(self, s: Snapshot) -> None:
        if s.t_s < self._next:
            return
        self._next = s.t_s + self.every_s
        faults = ",".join(s.faults) or "-"
        print(
            f"[{s.scenario}] t={s.t_s:5.1f}s {s.phase:<7} rate={s.rate:6.0f}/s "
            f"hit={_pct(s.hit_rate)} fallback={_pct(s.fallback_rate)} "
            f"breaker={s.breaker} faults={faults} errors={s.errors}",
            file=self.stream,
            flush=True,
        )
