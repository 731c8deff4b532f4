#!/usr/bin/env python3
"""HTTP round trip through our proxy with an HTTP toxic, against its peers.

Starts ``python -m resilience.proxy`` and a minimal keep-alive HTTP upstream
(a child process answering every request with a fixed 200), then measures,
in interleaved rounds on one keep-alive connection each, sequential
``GET`` round trips:

  direct               client → upstream
  proxy, no toxic      client → proxy → upstream
  http_error rate 0    a toxic that cannot act: dropped from the chain (fast path)
  framing, no match    http_error rate 1 on paths ["/nothing"]: every request and
                       response is framed (httptools), none is acted on
  http_error rate 1    the proxy answers every request itself (upstream idle)

and prints p50 / p95 round trip and requests/s, with ratios against
"proxy, no toxic" measured in the same run (goal of issue 17: rate 0 ≤ 1.3×).
The order of the peers is reversed every other round, so drift on a shared
machine weighs on all of them alike.

Usage: python benchmarks/http_toxic_bench.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resilience.proxy import ProxyServerProcess, ToxiproxyClient  # noqa: E402

_UPSTREAM = r"""
import asyncio, sys
BODY = b'{"ok": true, "slots": [1, 2, 3]}'
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
RESPONSE = HEAD % len(BODY) + BODY
async def serve(reader, writer):
    buf = b""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            buf += data
            while b"\r\n\r\n" in buf:
                _, buf = buf.split(b"\r\n\r\n", 1)
                writer.write(RESPONSE)
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""

REQUEST = b"GET /availability?date=2026-12-05 HTTP/1.1\r\nHost: bench\r\n\r\n"


def _round_trips(port: int, n: int) -> list[float]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out: list[float] = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            sock.sendall(REQUEST)
            buf = b""
            while True:
                buf += sock.recv(65536)
                head, sep, body = buf.partition(b"\r\n\r\n")
                if sep:
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    if len(body) >= length:
                        break
            out.append(time.perf_counter() - started)
    finally:
        sock.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="round trips per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    command = [sys.executable, "-c", _UPSTREAM]
    upstream = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert upstream.stdout is not None
        up_port = int(upstream.stdout.readline())
        with ProxyServerProcess(seed=1) as server, ToxiproxyClient(server.api_url) as api:
            upstream_addr = f"127.0.0.1:{up_port}"
            plain = api.create_proxy("plain", listen="127.0.0.1:0", upstream=upstream_addr)
            rate0 = api.create_proxy("rate0", listen="127.0.0.1:0", upstream=upstream_addr)
            framing = api.create_proxy("framing", listen="127.0.0.1:0", upstream=upstream_addr)
            rate1 = api.create_proxy("rate1", listen="127.0.0.1:0", upstream=upstream_addr)
            api.add_toxic("rate0", "http_error", stream="upstream", attributes={"rate": 0})
            api.add_toxic(
                "framing", "http_error", stream="upstream", attributes={"paths": ["/nothing"]}
            )
            api.add_toxic("rate1", "http_error", stream="upstream", attributes={"rate": 1})
            peers = {
                "direct": up_port,
                "proxy, no toxic": plain.listen_port,
                "http_error rate 0": rate0.listen_port,
                "framing, no match": framing.listen_port,
                "http_error rate 1": rate1.listen_port,
            }
            samples: dict[str, list[float]] = {name: [] for name in peers}
            for port in peers.values():  # warm-up
                _round_trips(port, 200)
            for round_no in range(args.rounds):
                order = list(peers.items())
                if round_no % 2:
                    order.reverse()
                for name, port in order:
                    samples[name] += _round_trips(port, args.requests)
    finally:
        upstream.kill()
        upstream.wait()
    base = statistics.median(samples["proxy, no toxic"])
    print(f"{'peer':<20} {'p50 µs':>8} {'p95 µs':>8} {'req/s':>8} {'p50 vs no toxic':>16}")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, values in samples.items():
        values.sort()
        p50 = statistics.median(values)
        p95 = values[int(len(values) * 0.95)]
        rps = len(values) / sum(values)
        print(f"{name:<20} {p50 * 1e6:8.0f} {p95 * 1e6:8.0f} {rps:8.0f} {p50 / base:15.2f}x")
    print()
    rate0 = medians["http_error rate 0"] / base
    print(f"http_error rate 0 vs no toxic: {rate0:.2f}x (goal <= 1.3x)")
    print(f"no toxic vs direct:            {base / medians['direct']:.2f}x")
    print(f"framing, no match vs no toxic: {medians['framing, no match'] / base:.2f}x")
    print(f"http_error rate 1 vs no toxic: {medians['http_error rate 1'] / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
