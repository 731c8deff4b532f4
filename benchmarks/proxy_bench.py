#!/usr/bin/env python3
"""Benchmark our Toxiproxy-compatible server against direct loopback.

Starts ``python -m resilience.proxy`` (uvloop when installed) on a free port,
runs the shared loopback benchmark (``shared/bench/proxy_bench.py``, found
next to the repository or at ``$PROXY_BENCH_SCRIPT``) against it, and prints
its figures followed by the ratios against the targets of the proxy issue:

  round-trip p50 <= 1.4 x direct    bulk >= 0.35 x direct
  connection rate >= 0.50 x direct  toxic add+remove <= 0.8 ms
  100 ms latency toxic within +-1 ms

Usage: python benchmarks/proxy_bench.py [--strict] [shared-script args, e.g. --quick]
Exit status: 2 on set-up errors, else 0 (with --strict: 1 when a target is missed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resilience.proxy.process import ProxyServerProcess  # noqa: E402


def _shared_script() -> Path | None:
    candidates = [
        os.environ.get("PROXY_BENCH_SCRIPT", ""),
        str(ROOT.parent / "shared" / "bench" / "proxy_bench.py"),
        str(ROOT / "shared" / "bench" / "proxy_bench.py"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _ratios(res: dict) -> list[tuple[str, str, bool]]:  # type: ignore[type-arg]
    rows: list[tuple[str, str, bool]] = []

    def get(*path: str) -> float | None:
        cur = res
        for key in path:
            if not isinstance(cur, dict) or key not in cur:
                return None
            cur = cur[key]
        return float(cur)  # type: ignore[arg-type]

    rtt_d, rtt_p = get("direct", "rtt", "p50_us"), get("proxy", "rtt", "p50_us")
    if rtt_d and rtt_p:
        r = rtt_p / rtt_d
        rows.append(
            ("round-trip p50", f"{rtt_p:.0f} / {rtt_d:.0f} us = {r:.2f} x (<= 1.4)", r <= 1.4)
        )
    bulk_d, bulk_p = get("direct", "bulk", "MBps"), get("proxy", "bulk", "MBps")
    if bulk_d and bulk_p:
        r = bulk_p / bulk_d
        rows.append(("bulk", f"{bulk_p:.0f} / {bulk_d:.0f} MB/s = {r:.2f} x (>= 0.35)", r >= 0.35))
    conn_d, conn_p = get("direct", "conn_rtt", "per_s"), get("proxy", "conn_rtt", "per_s")
    if conn_d and conn_p:
        r = conn_p / conn_d
        rows.append(
            (
                "connection rate",
                f"{conn_p:.0f} / {conn_d:.0f} per s = {r:.2f} x (>= 0.50)",
                r >= 0.5,
            )
        )
    api = get("api_calls", "median_ms_add_plus_delete")
    if api is not None:
        rows.append(("toxic add+remove", f"{api:.2f} ms (<= 0.8)", api <= 0.8))
    added, want = get("latency_toxic", "added_ms"), get("latency_toxic", "latency_ms")
    if added is not None and want is not None:
        rows.append(
            (
                "latency toxic",
                f"adds {added:.1f} ms for {want:.0f} ms (+-1)",
                abs(added - want) <= 1,
            )
        )
    return rows


def main(argv: list[str]) -> int:
    strict = "--strict" in argv
    argv = [arg for arg in argv if arg != "--strict"]
    script = _shared_script()
    if script is None:
        print(
            "proxy_bench: shared/bench/proxy_bench.py not found; set PROXY_BENCH_SCRIPT",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp, ProxyServerProcess() as server:
        out = Path(tmp) / "bench.json"
        cmd = [
            sys.executable,
            str(script),
            "--api",
            server.api_url,
            "--json",
            str(out),
            "--label",
            "resilience.proxy",
            *argv,
        ]
        env = dict(os.environ, PROXY_BENCH_UVLOOP=os.environ.get("PROXY_BENCH_UVLOOP", "0"))
        done = subprocess.run(cmd, env=env, check=False)
        if done.returncode != 0 or not out.exists():
            return 2
        res = json.loads(out.read_text())
    rows = _ratios(res)
    print("\nresilience.proxy vs targets:")
    for name, text, ok in rows:
        print(f"  {'ok  ' if ok else 'MISS'} {name:<17} {text}")
    missed = [name for name, _, ok in rows if not ok]
    if missed:
        print(f"  missed: {', '.join(missed)} (see docs/proxy.md for why)")
    return 1 if strict and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
