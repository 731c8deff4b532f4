"""The run history: one JSON object per line, written as the run goes.

The first line is a ``meta`` record; every later record has ``type`` and
``t_us``, microseconds since the workload started (negative before it, e.g.
the first steady-state check). Record types:

``meta``    scenario, seed, start_wall (Unix s), mode (real|simulated), config
``op``      op (lookup|job), key (known|unknown|invalid), slug, outcome, path,
            reason, latency_us, attempts, late_us, phase; ``t_us`` is the
            *scheduled* start, ``late_us`` how much later it really started
``fault``   event (start|stop|error), name, target, kind, toxic, action,
            stream, toxicity, attributes, error
``breaker`` from, to (a breaker state change seen by the sampler)
``sample``  stats (the service's statistics), in_flight
``steady``  when (before|after), ok, detail
``migration`` event (run_start|run_end|run_error|final|unsupported), run,
            counts, stats, error
``end``     status (completed|interrupted|crashed), workload_end_us, error

See docs/scenarios.md.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from resilience.errors import InvalidInput

__all__ = ["History", "HistoryError", "HistoryWriter", "OpRecord", "read_history"]


class HistoryError(InvalidInput):
    """A history file that cannot be read."""


class HistoryWriter:
    """Appends records to a JSON-lines file, buffered (flushed every ``flush_every``)."""

    def __init__(self, path: str | Path, *, flush_every: int = 2000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: io.BufferedWriter | None = open(self.path, "wb")  # noqa: SIM115  # closed in close()
        self._buffer: list[bytes] = []
        self._flush_every = flush_every
        self.records = 0

    def write(self, record: Mapping[str, Any]) -> None:
        """Queue one record (a JSON-ready mapping)."""
        self._buffer.append(orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS, default=str))
        self.records += 1
        if len(self._buffer) >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        if self._file is None or not self._buffer:
            return
        self._file.write(b"\n".join(self._buffer) + b"\n")
        self._file.flush()
        self._buffer.clear()

    def close(self) -> None:
        if self._file is None:
            return
        self.flush()
        self._file.close()
        self._file = None

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One operation, as read back (times in µs since the workload started)."""

    t_us: int
    op: str
    key: str
    outcome: str
    path: str
    reason: str | None
    latency_us: int
    attempts: int
    late_us: int
    phase: str


@dataclass(slots=True)
class History:
    """A history read back into memory; ``ops`` sorted by start time."""

    meta: dict[str, Any]
    ops: list[OpRecord] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    breaker: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    steady: list[dict[str, Any]] = field(default_factory=list)
    migration: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None

    @property
    def scenario_name(self) -> str:
        return str(self.meta.get("scenario", "?"))

    @property
    def config(self) -> dict[str, Any]:
        cfg = self.meta.get("config")
        return cfg if isinstance(cfg, dict) else {}

    @property
    def warmup_s(self) -> float:
        return float(self.config.get("workload", {}).get("warmup", 0.0))

    @property
    def duration_s(self) -> float:
        """Workload length: the configured one, or the end record's, or the last op's."""
        if self.end and self.end.get("workload_end_us") is not None:
            return float(self.end["workload_end_us"]) / 1e6
        configured = self.config.get("workload", {}).get("duration")
        if configured is not None:
            return float(configured)
        return (self.ops[-1].t_us / 1e6) if self.ops else 0.0

    def fault_windows(self) -> dict[str, list[tuple[float, float]]]:
        """Fault name → [(start_s, stop_s)] from start/stop records (open ones end with the run)."""
        windows: dict[str, list[tuple[float, float]]] = {}
        open_at: dict[str, float] = {}
        disabled: dict[str, str] = {}  # target → name of the open ``disable`` fault
        for rec in self.faults:
            name = str(rec.get("name"))
            t = float(rec["t_us"]) / 1e6
            event = rec.get("event")
            if event == "start":
                open_at[name] = t
                if rec.get("action") == "disable":
                    disabled[str(rec.get("target"))] = name
            elif event == "stop" and name in open_at:
                windows.setdefault(name, []).append((open_at.pop(name), t))
            elif event == "instant" and rec.get("action") == "enable":
                # an explicit enable ends an open-ended disable of the same proxy
                ended = disabled.pop(str(rec.get("target")), None)
                if ended is not None and ended in open_at:
                    windows.setdefault(ended, []).append((open_at.pop(ended), t))
        for name, start in open_at.items():
            windows.setdefault(name, []).append((start, max(start, self.duration_s)))
        return windows


def _iter_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise HistoryError(f"{path}:{number}: not a JSON record ({exc})") from None
            if not isinstance(rec, dict) or "type" not in rec:
                raise HistoryError(f"{path}:{number}: a record needs a 'type'")
            yield number, rec


def read_history(path: str | Path) -> History:
    """Read a history file written by :class:`HistoryWriter`."""
    p = Path(path)
    if not p.is_file():
        raise HistoryError(f"{p}: no such history file")
    history: History | None = None
    for number, rec in _iter_lines(p):
        kind = rec["type"]
        if history is None:
            if kind != "meta":
                raise HistoryError(f"{p}:{number}: the first record must be 'meta', got {kind!r}")
            history = History(meta=rec)
            continue
        if kind == "op":
            try:
                history.ops.append(
                    OpRecord(
                        int(rec["t_us"]),
                        str(rec["op"]),
                        str(rec.get("key", "known")),
                        str(rec["outcome"]),
                        str(rec.get("path", "")),
                        rec.get("reason"),
                        int(rec.get("latency_us", 0)),
                        int(rec.get("attempts", 0)),
                        int(rec.get("late_us", 0)),
                        str(rec.get("phase", "")),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise HistoryError(f"{p}:{number}: bad op record ({exc!r})") from None
        elif kind == "fault":
            history.faults.append(rec)
        elif kind == "breaker":
            history.breaker.append(rec)
        elif kind == "sample":
            history.samples.append(rec)
        elif kind == "steady":
            history.steady.append(rec)
        elif kind == "migration":
            history.migration.append(rec)
        elif kind == "end":
            history.end = rec
    if history is None:
        raise HistoryError(f"{p}: empty history")
    history.ops.sort(key=lambda o: o.t_us)
    history.faults.sort(key=lambda r: float(r["t_us"]))
    history.breaker.sort(key=lambda r: float(r["t_us"]))
    return history
