"""A tiny HTTP service for the HTTP-target tests, started as a command by the harness.

``python tiny_app.py PORT``. Routes: ``/health``; ``/items/<key>`` reads
Redis (``REDIS_URL``) and answers 200 with ``{"key", "source"}``, or 200
with ``X-Fallback: 1`` (source ``fallback``) when Redis fails; ``/missing``
answers 404; ``/metrics`` Prometheus text (``BAD_METRICS=1``: not
Prometheus). ``EXIT_AFTER_S`` makes it exit with code 3 after that long;
``EXIT_AT_START=1`` exits at once with a message; ``DELAY_MS`` delays each
``/items/`` answer by that long (a setting for ``resilience tune`` to find).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

DELAY_S = float(os.environ.get("DELAY_MS", "0")) / 1000
COUNTS: dict[str, int] = {}
LOCK = threading.Lock()
CLIENT = redis.Redis.from_url(
    os.environ.get("REDIS_URL", "redis://127.0.0.1:1"),
    socket_timeout=0.3,
    socket_connect_timeout=0.3,
)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        with LOCK:
            COUNTS[str(status)] = COUNTS.get(str(status), 0) + 1
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, b"ok")
        elif self.path.startswith("/items/"):
            key = self.path.split("/", 2)[2]
            time.sleep(DELAY_S)
            try:
                CLIENT.incr(f"hits:{key}")
                self._send(200, json.dumps({"key": key, "source": "redis"}).encode())
            except redis.RedisError:
                body = json.dumps({"key": key, "source": "fallback"}).encode()
                self._send(200, body, {"X-Fallback": "1"})
        elif self.path == "/missing":
            self._send(404, b"no")
        elif self.path == "/metrics":
            if os.environ.get("BAD_METRICS"):
                self.send_response(200)
                self.send_header("Content-Length", "15")
                self.end_headers()
                self.wfile.write(b"<html>hi</html>")
                return
            with LOCK:
                lines = ["# TYPE tiny_requests_total counter"]
                lines += [f'tiny_requests_total{{status="{k}"}} {v}' for k, v in COUNTS.items()]
            self._send(200, ("\n".join(lines) + "\n").encode())
        else:
            self._send(500, b"boom")


def main() -> None:
    if os.environ.get("EXIT_AT_START"):
        print("tiny_app: refusing to start (EXIT_AT_START)", flush=True)
        sys.exit(4)
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    exit_after = os.environ.get("EXIT_AFTER_S")
    if exit_after:

        def bye() -> None:
            print("tiny_app: exiting on purpose", flush=True)
            os._exit(3)

        threading.Timer(float(exit_after), bye).start()
    print(f"tiny_app: listening on {sys.argv[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
