"""The run history: one JSON object per line, written as the run goes.

The first line is a ``meta`` record; every later record has ``type`` and
``t_us``, microseconds since the workload started (negative before it, e.g.
the first steady-state check). Record types:

``meta``    scenario, seed, start_wall (Unix s), mode (real|simulated), config,
            target (the target kind; absent in older histories: ``reference``)
``op``      op (an operation of the target: lookup|job for the reference
            service), key (known|unknown|invalid), slug (the key's value),
            outcome, path, reason, latency_us, attempts, late_us, phase,
            status (HTTP status; written only when not 0, absent reads as 0);
            ``t_us`` is the *scheduled* start, ``late_us`` how much later it
            really started
``fault``   event (start|stop|error), name, target, kind, toxic, action,
            stream, toxicity, attributes, error
``breaker`` from, to (a breaker state change seen by the sampler)
``sample``  stats (the service's statistics), in_flight
``steady``  when (before|after), ok, detail
``migration`` event (run_start|run_end|run_error|final|unsupported), run,
            counts, stats, error
``check``   name, metrics, gates, detail: a target's end-of-run check (e.g. the
            reference service's job reconciliation), after the in-flight ops
``scrape``  samples (series → value) scraped from the target's Prometheus endpoint
``target``  event (exited|unresponsive), error: the target was lost during the run
``end``     status (completed|interrupted|crashed|target_failed), workload_end_us, error

Operations are by far the most numerous records, so they have their own
path: :meth:`HistoryWriter.write_op` queues an :class:`OpRecord` (a named
tuple) and the line is formatted only when the buffer is flushed, from a
template with each distinct string JSON-encoded once — the same bytes
``orjson`` would write for the record as a mapping, at a fraction of the
cost. A writer made with ``keep=True`` also keeps what it wrote as a
:class:`History` (:meth:`HistoryWriter.history`), equal to what
:func:`read_history` reads back from the file, so a run can evaluate its
gates without reading its own history again.

See docs/scenarios.md.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from resilience.errors import InvalidInput

__all__ = ["History", "HistoryError", "HistoryWriter", "OpRecord", "read_history"]


class HistoryError(InvalidInput):
    """A history file that cannot be read."""


class OpRecord(NamedTuple):
    """One operation (times in µs since the workload started).

    Its history line has the fields in the order ``type`` ("op"), ``t_us``,
    ``op``, ``key``, ``slug``, ``outcome``, ``path``, ``reason``,
    ``latency_us``, ``attempts``, ``late_us``, ``phase`` and, when not 0,
    ``status``. Integers must be ``int`` and texts ``str`` (``reason`` may
    be ``None``).
    """

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
    slug: str = ""
    status: int = 0


_OP_LINE = (
    b'{"type":"op","t_us":%d,"op":%b,"key":%b,"slug":%b,"outcome":%b,"path":%b,'
    b'"reason":%b,"latency_us":%d,"attempts":%d,"late_us":%d,"phase":%b}'
)
_OP_LINE_STATUS = _OP_LINE[:-1] + b',"status":%d}'
_ENCODED_LIMIT = 50_000  # distinct strings kept encoded (slugs, outcomes, reasons ...)


class _Encoder:
    """JSON text of strings, each distinct one encoded once (at most ``_ENCODED_LIMIT``)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[object, bytes] = {None: b"null"}

    def __call__(self, value: object) -> bytes:
        cached = self._cache.get(value) if type(value) is str or value is None else None
        if cached is not None:
            return cached
        encoded = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str)
        if type(value) is str and len(self._cache) < _ENCODED_LIMIT:
            self._cache[value] = encoded
        return encoded

    def op_lines(self, ops: list[OpRecord]) -> list[bytes]:
        """The history lines of ``ops`` (the bytes ``orjson`` writes for them as mappings)."""
        cache = self._cache
        line = _OP_LINE
        out: list[bytes] = []
        append = out.append
        with_status = _OP_LINE_STATUS
        for (
            t_us,
            op,
            key,
            outcome,
            path,
            reason,
            latency_us,
            attempts,
            late_us,
            phase,
            slug,
            status,
        ) in ops:
            try:
                values = (
                    t_us,
                    cache[op],
                    cache[key],
                    cache[slug],
                    cache[outcome],
                    cache[path],
                    cache[reason],
                    latency_us,
                    attempts,
                    late_us,
                    cache[phase],
                )
            except (KeyError, TypeError):  # a string seen for the first time
                values = (
                    t_us,
                    self(op),
                    self(key),
                    self(slug),
                    self(outcome),
                    self(path),
                    self(reason),
                    latency_us,
                    attempts,
                    late_us,
                    self(phase),
                )
            append(line % values if not status else with_status % (*values, status))
        return out


class HistoryWriter:
    """Appends records to a JSON-lines file, buffered (flushed every ``flush_every``).

    ``keep=True`` also keeps every record in memory: :meth:`history` returns
    them as :func:`read_history` would read them back.
    """

    def __init__(self, path: str | Path, *, flush_every: int = 2000, keep: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: io.BufferedWriter | None = open(self.path, "wb")  # noqa: SIM115  # closed in close()
        self._buffer: list[bytes | OpRecord] = []
        self._flush_every = flush_every
        self._encode = _Encoder()
        self._kept: _Builder | None = _Builder(self.path) if keep else None
        self.records = 0

    def write(self, record: Mapping[str, Any]) -> None:
        """Queue one record (a JSON-ready mapping)."""
        line = orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS, default=str)
        self._buffer.append(line)
        self.records += 1
        if self._kept is not None:
            self._kept.add(orjson.loads(line), self.records)
        if len(self._buffer) >= self._flush_every:
            self.flush()

    def write_op(self, record: OpRecord) -> None:
        """Queue one operation (its line is formatted when the buffer is flushed)."""
        self._buffer.append(record)
        self.records += 1
        if self._kept is not None:
            self._kept.ops.append(record)
        if len(self._buffer) >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        if self._file is None or not self._buffer:
            return
        buffer = self._buffer
        ops = [r for r in buffer if type(r) is OpRecord]
        lines = iter(self._encode.op_lines(ops))
        data = b"\n".join([next(lines) if type(r) is OpRecord else r for r in buffer])  # type: ignore[misc]
        self._file.write(data + b"\n")
        self._file.flush()
        buffer.clear()

    def history(self) -> History:
        """What was written, as :func:`read_history` reads it (needs ``keep=True``)."""
        if self._kept is None:
            raise RuntimeError("this HistoryWriter does not keep its records (keep=True)")
        return self._kept.finish()

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
    notify: list[dict[str, Any]] = field(default_factory=list)
    """The target's event stream and the stored error events (resilience.scenario.notify)."""
    end: dict[str, Any] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    """``check`` records: a target's end-of-run checks (metrics, implicit gates)."""
    other: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Records of other types by type (``scrape``, ``target`` …), in file order."""
    _starts: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    """``ops``' start times (µs), built once for :meth:`ops_between` (rebuilt if ``ops`` grew)."""

    def ops_between(self, start_s: float, stop_s: float) -> list[OpRecord]:
        """The operations that started in [``start_s``, ``stop_s``), by bisection.

        The start-time index is built on the first call, so gates scoped to many
        windows (phases, recovery buckets) do not rescan every operation each time.
        """
        if len(self._starts) != len(self.ops):
            self._starts = [o.t_us for o in self.ops]
        lo = bisect.bisect_left(self._starts, int(start_s * 1e6))
        hi = bisect.bisect_left(self._starts, int(stop_s * 1e6))
        return self.ops[lo:hi]

    @property
    def scenario_name(self) -> str:
        return str(self.meta.get("scenario", "?"))

    @property
    def target_kind(self) -> str:
        """The kind of target the run drove (histories from before targets: ``reference``)."""
        return str(self.meta.get("target") or "reference")

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


class _Builder:
    """Collects records into a :class:`History` (read from a file, or kept while written)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.head: History | None = None
        self.ops: list[OpRecord] = []

    def add(self, rec: dict[str, Any], number: int) -> None:
        kind = rec["type"]
        history = self.head
        if history is None:
            if kind != "meta":
                raise HistoryError(
                    f"{self.path}:{number}: the first record must be 'meta', got {kind!r}"
                )
            self.head = History(meta=rec)
            return
        if kind == "op":
            try:
                self.ops.append(
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
                        str(rec.get("slug", "")),
                        int(rec.get("status", 0)),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise HistoryError(f"{self.path}:{number}: bad op record ({exc!r})") from None
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
        elif kind in ("notify", "notify_db"):
            history.notify.append(rec)
        elif kind == "check":
            history.checks.append(rec)
        elif kind == "end":
            history.end = rec
        else:
            history.other.setdefault(str(kind), []).append(rec)

    def finish(self) -> History:
        """The history so far: operations, faults and breaker records sorted by time."""
        head = self.head
        if head is None:
            raise HistoryError(f"{self.path}: empty history")
        return History(
            meta=head.meta,
            ops=sorted(self.ops, key=_op_time),
            faults=sorted(head.faults, key=_record_time),
            breaker=sorted(head.breaker, key=_record_time),
            samples=list(head.samples),
            steady=list(head.steady),
            migration=list(head.migration),
            notify=list(head.notify),
            end=head.end,
            checks=list(head.checks),
            other={kind: list(records) for kind, records in head.other.items()},
        )


def _op_time(op: OpRecord) -> int:
    return op.t_us


def _record_time(rec: dict[str, Any]) -> float:
    return float(rec["t_us"])


def read_history(path: str | Path) -> History:
    """Read a history file written by :class:`HistoryWriter`."""
    p = Path(path)
    if not p.is_file():
        raise HistoryError(f"{p}: no such history file")
    builder = _Builder(p)
    for number, rec in _iter_lines(p):
        builder.add(rec, number)
    return builder.finish()
