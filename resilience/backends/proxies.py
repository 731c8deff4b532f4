"""The Toxiproxy side of an environment: the API server process and the two proxies.

Any Toxiproxy-API server works: the real ``toxiproxy-server`` when found, else
the project's own (``python -m resilience.proxy``); both take ``-host`` and
``-port``. The proxies are always named ``postgres`` and ``redis``.
"""

from __future__ import annotations

import signal
import urllib.error
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from resilience.backends.errors import StartupFailed
from resilience.backends.process import ManagedProcess
from resilience.backends.readiness import free_port, http_json
from resilience.backends.watchdog import Watchdog

__all__ = ["PROXY_NAMES", "LocalProxyServer", "ensure_proxy", "proxy_api_up"]

PROXY_NAMES = ("postgres", "redis")


def proxy_api_up(api_url: str) -> bool:
    """True once ``GET /version`` answers."""
    http_json("GET", f"{api_url}/version", timeout_s=0.5)
    return True


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"
    return host, int(port)


def ensure_proxy(api_url: str, name: str, *, upstream: str, listen: str) -> tuple[str, int]:
    """Create proxy ``name`` (or re-point an existing one); returns its listen host and port."""
    body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
    try:
        created = http_json("POST", f"{api_url}/proxies", body)
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise StartupFailed(
                f"the proxy API at {api_url} refused to create proxy {name!r}: "
                f"HTTP {exc.code} {exc.read().decode(errors='replace')}"
            ) from exc
        created = http_json("POST", f"{api_url}/proxies/{name}", body)
    info = cast(Mapping[str, Any], created)
    return _split_listen(str(info["listen"]))


class LocalProxyServer:
    """A Toxiproxy-API server child process on a free 127.0.0.1 port."""

    def __init__(self, command: list[str], *, directory: Path, port: int | None = None) -> None:
        self.command = command
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.process: ManagedProcess | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, watchdog: Watchdog | None = None) -> ManagedProcess:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self.process = ManagedProcess(
            "toxiproxy",
            [*self.command, "-host", "127.0.0.1", "-port", str(self.port)],
            log_path=self.directory / "toxiproxy.log",
            cwd=self.directory,
            stop_signal=signal.SIGTERM,
            watchdog=watchdog,
        )
        return self.process

    def probe(self) -> bool:
        return proxy_api_up(self.api_url)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
