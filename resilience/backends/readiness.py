"""Waiting for real readiness: a query answered, PING answered, the proxy API up.

Probes are plain callables that raise (or return ``False``) until the server
answers. :func:`wait_until` polls them tightly, stops early when the server
process died, and on timeout raises :class:`StartupFailed` with the log tail.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable

from resilience.backends.errors import StartupFailed
from resilience.backends.process import ManagedProcess

__all__ = ["free_port", "http_json", "redis_ping", "tcp_open", "wait_until"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tcp_open(host: str, port: int, *, timeout_s: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def redis_ping(host: str, port: int, *, timeout_s: float = 0.5) -> bool:
    """Whether a Redis-protocol server on ``host:port`` answers PING with PONG."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def http_json(
    method: str, url: str, body: object | None = None, *, timeout_s: float = 2.0
) -> object:
    """A tiny JSON-over-HTTP call (the Toxiproxy API) without importing an HTTP client."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        raw = response.read()
    return json.loads(raw) if raw.strip() else None


def wait_until(
    what: str,
    probe: Callable[[], bool],
    *,
    timeout_s: float,
    process: ManagedProcess | None = None,
    interval_s: float = 0.01,
    cancel: threading.Event | None = None,
) -> float:
    """Poll ``probe`` until it returns true; returns the seconds waited.

    Raises :class:`StartupFailed` (with ``process``'s log tail) when the
    process exits first, ``timeout_s`` passes or ``cancel`` is set (the
    caller gave up, e.g. on Ctrl-C, and should not wait for this thread).
    """
    start = time.monotonic()
    deadline = start + timeout_s
    last_error = ""
    while True:
        try:
            if probe():
                return time.monotonic() - start
        except Exception as exc:  # a probe's failure means "not yet"
            last_error = f"{type(exc).__name__}: {exc}"
        if process is not None and not process.alive():
            raise StartupFailed(
                f"{what} exited with code {process.popen.returncode} before it was ready",
                log_tail=process.log_tail(),
            )
        if cancel is not None and cancel.is_set():
            raise StartupFailed(f"waiting for {what} was cancelled")
        if time.monotonic() >= deadline:
            detail = f" (last probe error: {last_error})" if last_error else ""
            raise StartupFailed(
                f"{what} was not ready after {timeout_s:.1f} s{detail}",
                log_tail=process.log_tail() if process else "",
            )
        time.sleep(interval_s)
