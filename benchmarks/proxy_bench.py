#!/usr/bin/env python3
"""Benchmark our Toxiproxy-compatible server against direct loopback.

Starts ``python -m resilience.proxy`` (uvloop when installed) on a free port,
runs the shared loopback benchmark (``shared/bench/proxy_bench.py``, found
next to the repository or at ``$PROXY_BENCH_SCRIPT``) against it, and prints
its figures followed by the ratios against the targets of the proxy issue:

  round-trip p50 <= 1.4 x direct    bulk >= 0.35 x direct
  connection rate >= 0.50 x direct  toxic add+remove <= 0.8 ms
  100 ms latency toxic within +-1 ms

With ``--baseline`` it then measures, in the same minutes, a bare uvloop
forwarder (a minimal asyncio proxy with no features, built into this file) the
same way, so figures taken on a busy shared machine can be read against the
best an asyncio forwarder does under the same conditions.

Usage: python benchmarks/proxy_bench.py [--strict] [--baseline] [shared-script args]
Exit status: 2 on set-up errors, else 0 (with --strict: 1 when a target is missed).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
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


class _Pipe(asyncio.Protocol):
    """Bare forwarder endpoint: every read is written to the peer, nothing else."""

    def __init__(self, upstream_port: int, peer: _Pipe | None = None) -> None:
        self.upstream_port, self.peer = upstream_port, peer
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []
        self.dial: asyncio.Task[object] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.peer is None:  # accepted client: dial the upstream
            other = _Pipe(self.upstream_port, self)
            self.peer = other
            loop = asyncio.get_running_loop()
            dial = loop.create_connection(lambda: other, "127.0.0.1", self.upstream_port)
            self.dial = loop.create_task(dial)
        else:  # upstream connected: flush what the client sent meanwhile
            for data in self.peer.early:
                transport.write(data)  # type: ignore[attr-defined]
            self.peer.early = []

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool:
        self.connection_lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def _baseline_server(api_port: int) -> None:
    """Speaks just the API calls the shared benchmark makes (no toxics)."""
    loop = asyncio.get_running_loop()
    servers: dict[str, asyncio.AbstractServer] = {}

    async def api(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode().split(" ")
        if len(request_line) != 3:  # a readiness probe: connect and close
            writer.close()
            return
        method, path = request_line[0], request_line[1]
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = await reader.readexactly(length)
        status, out = 200, b'{"version": "bare-forwarder"}'
        if method == "POST" and path == "/proxies":
            spec = json.loads(body)
            upstream = int(spec["upstream"].rsplit(":", 1)[1])
            server = await loop.create_server(lambda: _Pipe(upstream), "127.0.0.1", 0)
            servers[spec["name"]] = server
            port = server.sockets[0].getsockname()[1]
            status, out = 201, json.dumps({"listen": f"127.0.0.1:{port}"}).encode()
        elif method == "DELETE":
            server = servers.pop(path.rsplit("/", 1)[1], None)
            if server is not None:
                server.close()
            status, out = 204, b""
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(out)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + out)
        await writer.drain()
        writer.close()

    await asyncio.start_server(api, "127.0.0.1", api_port)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


def _run_shared(script: Path, api_url: str, out: Path, label: str, argv: list[str]) -> bool:
    cmd = [sys.executable, str(script), "--api", api_url, "--json", str(out), "--label", label]
    env = dict(os.environ, PROXY_BENCH_UVLOOP=os.environ.get("PROXY_BENCH_UVLOOP", "0"))
    done = subprocess.run([*cmd, *argv], env=env, check=False)
    return done.returncode == 0 and out.exists()


def _baseline(script: Path, tmp: Path, argv: list[str]) -> dict | None:  # type: ignore[type-arg]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, __file__, "--_baseline-server", str(port)], stdin=subprocess.PIPE
    )
    try:
        out = tmp / "baseline.json"
        only = ["--only", "rtt,bulk,conn"]
        if _wait_port(port) and _run_shared(
            script, f"http://127.0.0.1:{port}", out, "bare-forwarder", [*argv, *only]
        ):
            return json.loads(out.read_text())  # type: ignore[no-any-return]
        return None
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()


def _wait_port(port: int, timeout_s: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def main(argv: list[str]) -> int:
    if argv[:1] == ["--_baseline-server"]:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(_baseline_server(int(argv[1])))
        return 0
    strict = "--strict" in argv
    baseline = "--baseline" in argv
    argv = [arg for arg in argv if arg not in ("--strict", "--baseline")]
    script = _shared_script()
    if script is None:
        print(
            "proxy_bench: shared/bench/proxy_bench.py not found; set PROXY_BENCH_SCRIPT",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        with ProxyServerProcess() as server:
            if not _run_shared(
                script, server.api_url, tmp / "bench.json", "resilience.proxy", argv
            ):
                return 2
        res = json.loads((tmp / "bench.json").read_text())
        base = _baseline(script, tmp, argv) if baseline else None
    rows = _ratios(res)
    print("\nresilience.proxy vs targets:")
    for name, text, ok in rows:
        print(f"  {'ok  ' if ok else 'MISS'} {name:<17} {text}")
    if base is not None:
        print("\nbare uvloop forwarder, same conditions (ratios to its own direct run):")
        for name, text, _ok in _ratios(base):
            print(f"       {name:<17} {text}")
    missed = [name for name, _, ok in rows if not ok]
    if missed:
        print(f"  missed: {', '.join(missed)} (see docs/proxy.md for why)")
    return 1 if strict and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
