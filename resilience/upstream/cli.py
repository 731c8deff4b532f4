"""``python -m resilience.upstream`` / ``resilience upstream``: run the stub.

Flags: ``--host`` (default 127.0.0.1), ``--port`` (default 0: a free one,
printed on the first stdout line as ``listening on http://HOST:PORT``),
``--seed`` (default 0). SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Sequence

import uvicorn

from .app import create_app

__all__ = ["main"]


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Booking API stub for chaos runs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--seed", type=int, default=0, help="availability and ids follow it")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "resilience upstream") -> int:
    """Run until SIGTERM/SIGINT; exit 2 on bad flags or a port that cannot be bound."""
    args = _parser(prog).parse_args(argv)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"{prog}: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        sock.close()
        return 2
    host, port = sock.getsockname()[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    config = uvicorn.Config(
        create_app(args.seed),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    asyncio.run(server.serve(sockets=[sock]))
    return 0
