"""Time-sliced request buckets: what phase-scoped load gates are judged on.

Locust keeps totals; a gate such as ``failure_ratio < 1% @ after: redis-down``
needs the requests of a time window. Every process (local, master or worker)
adds each request to a bucket keyed by (request name, method, the
:data:`BUCKET_S` slice of its start time, epoch); workers ship theirs to the master with each report
(``report_to_master`` / ``worker_report``), so the master holds them all when
the gates are judged. A bucket keeps counts (requests, failures, degraded)
and the response times in whole milliseconds with their counts, so memory is
bounded by names × slices × distinct milliseconds.

:meth:`Buckets.records` turns the buckets that lie in given windows
(seconds since the test start; a slice belongs to a window when its middle
does, so phases are exact to :data:`BUCKET_S`) into :class:`~loadtests.results.EndpointRecord`
values for :func:`~loadtests.results.load_metrics`, so a phase's metrics have
the same names as the whole run's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from loadtests.results import EndpointRecord

__all__ = ["BUCKET_S", "REPORT_KEY", "Buckets", "degraded_metrics"]

BUCKET_S = 0.1
"""Width of a bucket in seconds: how exactly a request is placed in a phase."""

REPORT_KEY = "resilience_buckets"
"""The key of a worker report carrying its buckets."""

_Key = tuple[str, str, int]


class Buckets:
    """Counts and response times per (method, name, slice of :data:`BUCKET_S`)."""

    def __init__(self) -> None:
        self._data: dict[_Key, list[Any]] = {}

    def add(
        self, method: str, name: str, start_s: float, response_ms: float, *, failed: bool,
        degraded: bool = False,
    ) -> None:  # fmt: skip
        """One request that started at ``start_s`` (epoch seconds)."""
        key = (method, name, int(start_s / BUCKET_S))
        bucket = self._data.get(key)
        if bucket is None:
            bucket = self._data[key] = [0, 0, 0, {}]
        bucket[0] += 1
        bucket[1] += int(failed)
        bucket[2] += int(degraded)
        ms = round(response_ms or 0.0)
        bucket[3][ms] = bucket[3].get(ms, 0) + 1

    def drain(self) -> list[list[Any]]:
        """The buckets as plain lists (msgpack-safe), emptied: a worker's report."""
        out = [
            [method, name, slot, b[0], b[1], b[2], [[ms, n] for ms, n in b[3].items()]]
            for (method, name, slot), b in self._data.items()
        ]
        self._data = {}
        return out

    def merge(self, rows: Iterable[Sequence[Any]]) -> None:
        """Add a worker's :meth:`drain` output."""
        for method, name, slot, requests, failures, degraded, times in rows:
            key = (str(method), str(name), int(slot))
            bucket = self._data.get(key)
            if bucket is None:
                bucket = self._data[key] = [0, 0, 0, {}]
            bucket[0] += int(requests)
            bucket[1] += int(failures)
            bucket[2] += int(degraded)
            for ms, n in times:
                bucket[3][int(ms)] = bucket[3].get(int(ms), 0) + int(n)

    def records(
        self, windows: Sequence[tuple[float, float]], *, start_s: float
    ) -> tuple[list[EndpointRecord], dict[str, int]]:
        """Endpoint records of the seconds in ``windows`` and degraded counts by name.

        A slice belongs to a window when its middle does; ``windows`` are
        seconds since ``start_s`` (epoch).
        """
        merged: dict[tuple[str, str], list[Any]] = {}
        degraded: dict[str, int] = {}
        for (method, name, slot), b in self._data.items():
            middle = (slot + 0.5) * BUCKET_S - start_s
            if not any(a <= middle < z for a, z in windows):
                continue
            total = merged.setdefault((method, name), [0, 0, {}])
            total[0] += b[0]
            total[1] += b[1]
            for ms, n in b[3].items():
                total[2][ms] = total[2].get(ms, 0) + n
            degraded[name] = degraded.get(name, 0) + b[2]
        records = [
            EndpointRecord(method, name, t[0], t[1], dict(t[2]))
            for (method, name), t in merged.items()
        ]
        return records, degraded

    def __len__(self) -> int:
        return len(self._data)


def degraded_metrics(
    records: Sequence[EndpointRecord],
    degraded: dict[str, int],
    plain_names: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """``http.<endpoint>.degraded_ratio`` and ``degraded_ratio`` (degraded / sent)."""
    from loadtests.results import endpoint_key

    out: dict[str, float] = {}
    sent_all = sum(r.requests for r in records)
    for record in records:
        if record.requests:
            key = endpoint_key(record.method, record.name, plain_names)
            out[f"http.{key}.degraded_ratio"] = degraded.get(record.name, 0) / record.requests
    if sent_all:
        out["degraded_ratio"] = sum(degraded.values()) / sent_all
    return out
