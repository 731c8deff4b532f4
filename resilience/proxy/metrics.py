"""``/metrics`` in Prometheus text format (exposition 0.0.4).

``-proxy-metrics`` gives Toxiproxy's byte counters
(``toxiproxy_proxy_received_bytes_total`` / ``..._sent_bytes_total`` with
``direction``, ``listener``, ``proxy``, ``upstream`` labels);
``-runtime-metrics`` gives process and Python runtime figures in place of Go's.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import sys
import time
from collections.abc import Callable

from .collection import ProxyCollection

__all__ = ["metrics_renderer"]

_START_S = time.time()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _proxy_lines(collection: ProxyCollection) -> list[str]:
    lines: list[str] = []
    series: dict[str, list[str]] = {"received": [], "sent": []}
    for proxy in collection.sorted():
        received, sent = proxy.byte_counts()
        for direction in ("downstream", "upstream"):
            labels = (
                f'direction="{direction}",listener="{_label(proxy.listen)}",'
                f'proxy="{_label(proxy.name)}",upstream="{_label(proxy.upstream)}"'
            )
            series["received"].append(
                f"toxiproxy_proxy_received_bytes_total{{{labels}}} {received[direction]}"
            )
            series["sent"].append(f"toxiproxy_proxy_sent_bytes_total{{{labels}}} {sent[direction]}")
    for kind, help_text in (
        ("received", "The total bytes received from a given proxy link"),
        ("sent", "The total bytes sent to a given proxy link"),
    ):
        name = f"toxiproxy_proxy_{kind}_bytes_total"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", *series[kind]]
    unparsed = [
        f'resilience_proxy_toxic_unparsed_total{{proxy="{_label(proxy.name)}",'
        f'toxic="{_label(toxic)}"}} {n}'
        for proxy in collection.sorted()
        for toxic, n in sorted(proxy.stats.unparsed.items())
    ]
    if unparsed:  # extension: connections a protocol toxic (http_*) passed through
        name = "resilience_proxy_toxic_unparsed_total"
        lines += [
            f"# HELP {name} Connections a protocol toxic could not parse (passed through)",
            f"# TYPE {name} counter",
            *unparsed,
        ]
    return lines


def _runtime_lines() -> list[str]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        open_fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_fds = -1
    gen = gc.get_count()
    version = platform.python_version()
    return [
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
        "# TYPE process_cpu_seconds_total counter",
        f"process_cpu_seconds_total {usage.ru_utime + usage.ru_stime:.6f}",
        "# HELP process_max_resident_memory_bytes Peak resident memory size in bytes.",
        "# TYPE process_max_resident_memory_bytes gauge",
        f"process_max_resident_memory_bytes {usage.ru_maxrss * 1024}",
        "# HELP process_open_fds Number of open file descriptors.",
        "# TYPE process_open_fds gauge",
        f"process_open_fds {open_fds}",
        "# HELP process_start_time_seconds Start time of the process since unix epoch.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {_START_S:.3f}",
        "# HELP python_gc_objects_pending Objects tracked per GC generation.",
        "# TYPE python_gc_objects_pending gauge",
        *(f'python_gc_objects_pending{{generation="{i}"}} {n}' for i, n in enumerate(gen)),
        "# HELP python_info Python platform information.",
        "# TYPE python_info gauge",
        f'python_info{{implementation="{sys.implementation.name}",version="{version}"}} 1',
    ]


def metrics_renderer(
    collection: ProxyCollection, *, proxy_metrics: bool, runtime_metrics: bool
) -> Callable[[], str] | None:
    """The ``/metrics`` body function, or None when neither flag is on (404)."""
    if not (proxy_metrics or runtime_metrics):
        return None

    def render() -> str:
        lines: list[str] = []
        if proxy_metrics:
            lines += _proxy_lines(collection)
        if runtime_metrics:
            lines += _runtime_lines()
        return "\n".join(lines) + "\n"

    return render
