"""toxiproxy-server's command line: ``-host -port -config -seed -version``,
``-proxy-metrics -runtime-metrics``, each also as a ``--long`` form and with
``-flag=value`` (Go's ``flag`` package accepts all of these).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .api import TOXIPROXY_VERSION

__all__ = ["build_parser", "main"]


def _go_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "t", "true"):
        return True
    if value in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (0-65535)")
    return int(text)


def _seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r} (an integer)") from None


def build_parser(prog: str = "python -m resilience.proxy") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Toxiproxy-compatible TCP fault proxy (speaks the Toxiproxy 2.12 HTTP API).",
        allow_abbrev=False,
    )
    parser.add_argument("-host", "--host", default="127.0.0.1", help="API host (127.0.0.1)")
    parser.add_argument("-port", "--port", type=_port, default=8474, help="API port (8474)")
    parser.add_argument("-config", "--config", default=None, help="JSON file of proxies")
    parser.add_argument(
        "-seed", "--seed", type=_seed, default=None, help="seed for every random decision"
    )
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="exit when this process is gone (used by ProxyServerProcess)",
    )
    for flag, text in (
        ("version", "print the version and exit"),
        ("proxy-metrics", "serve proxy byte counters on /metrics"),
        ("runtime-metrics", "serve process metrics on /metrics"),
    ):
        parser.add_argument(
            f"-{flag}",
            f"--{flag}",
            dest=flag.replace("-", "_"),
            type=_go_bool,
            nargs="?",
            const=True,
            default=False,
            help=text,
        )
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m resilience.proxy") -> int:
    """Parse toxiproxy-server flags and run the server until SIGINT/SIGTERM."""
    args = build_parser(prog).parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.version:
        print(f"toxiproxy-server version {TOXIPROXY_VERSION}")
        return 0
    from .logs import setup_logging
    from .server import ToxiproxyServer, run

    setup_logging()
    server = ToxiproxyServer(
        host=args.host,
        port=args.port,
        config=args.config,
        seed=args.seed,
        proxy_metrics=args.proxy_metrics,
        runtime_metrics=args.runtime_metrics,
    )
    return run(server, parent_pid=args.parent_pid)
