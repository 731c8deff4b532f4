"""JSON-lines logging on stdout, as toxiproxy-server logs (zerolog style).

``LOG_LEVEL`` picks the level (panic, fatal, error, warn, info, debug, trace);
the default is ``info`` (the real server defaults to debug, which logs every
API request; we log those at debug).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

__all__ = ["setup_logging"]

_LEVELS = {
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "level": record.levelname.lower().replace("warning", "warn"),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value if isinstance(value, int | float | bool) else str(value)
        entry["message"] = record.getMessage()
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level_name: str | None = None) -> None:
    """Send the proxy's logs to stdout as JSON lines at ``LOG_LEVEL``."""
    name = (level_name or os.environ.get("LOG_LEVEL") or "info").lower()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger("resilience.proxy")
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(name, logging.INFO))
    root.propagate = False
