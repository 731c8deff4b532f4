"""Models of the protocol error toxics (``postgres_error``, ``redis_error``).

The real toxics replace a hit query or command by one the server answers with
the error (docs/toxics.md), so in the model the round trip happens as usual
and the client then raises what its driver raises for that error: asyncpg's
exception for the SQLSTATE (a FATAL one also ends the connection), redis-py's
for the error line. Each hit is drawn from the proxy's generator with the
toxic's ``rate``, on queries whose SQL starts with ``prefix`` (Redis: on the
named ``commands``, else all but the connection's own). Start-up errors
(53300, ...) are not modelled: the model refuses them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROTOCOL_TYPES", "ProtocolToxic", "postgres_error", "redis_error"]

PROTOCOL_TYPES = frozenset({"postgres_error", "redis_error"})
_DEFAULTS: dict[str, dict[str, Any]] = {
    "postgres_error": {"sqlstate": "40001", "message": "", "rate": 1.0, "prefix": ""},
    "redis_error": {"error": "LOADING", "rate": 1.0, "commands": ""},
}
_STARTUP = frozenset({"53300", "57P03", "28000", "28P01", "3D000"})


@dataclass
class ProtocolToxic:
    """A protocol toxic on a modelled proxy (attributes merged over the defaults)."""

    name: str
    type: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, name: str, type: str, attributes: Mapping[str, Any] | None) -> ProtocolToxic:
        merged = {**_DEFAULTS[type], **dict(attributes or {})}
        if type == "postgres_error" and str(merged["sqlstate"]) in _STARTUP:
            raise ValueError(f"the simulator has no model of start-up error {merged['sqlstate']}")
        return cls(name, type, merged)

    def hits(self, text: str, rng: random.Random) -> bool:
        """Whether this query (SQL) or command (name) is answered with the error."""
        attrs = self.attributes
        if self.type == "postgres_error":
            prefix = str(attrs["prefix"]).lower()
            if prefix and not text.lstrip().lower().startswith(prefix):
                return False
        else:
            from resilience.proxy.toxics.redis_error import CONNECTION_COMMANDS, command_names

            names = command_names(str(attrs["commands"]))
            name = text.upper()
            if (names and name not in names) or (not names and name in CONNECTION_COMMANDS):
                return False
        return rng.random() < float(attrs["rate"])


def postgres_error(toxic: ProtocolToxic, sql: str) -> tuple[BaseException, bool]:
    """(what asyncpg raises, whether the connection ends) for a hit query."""
    import asyncpg

    from resilience.proxy.toxics.postgres_error import DEFAULT_MESSAGES, is_fatal

    code = str(toxic.attributes["sqlstate"])
    words = sql.split(maxsplit=1)
    template = str(toxic.attributes["message"]) or DEFAULT_MESSAGES.get(code, f"error {code}")
    message = template.replace("{command}", words[0].upper() if words else "statement")
    fatal = is_fatal(code)
    fields = {"C": code, "M": message, "S": "FATAL" if fatal else "ERROR"}
    error: BaseException = asyncpg.PostgresError.new(fields)
    return error, fatal


def redis_error(toxic: ProtocolToxic) -> BaseException:
    """What redis-py raises for the toxic's error reply."""
    from redis._parsers.base import BaseParser

    from resilience.proxy.toxics.redis_error import error_line

    line = error_line(str(toxic.attributes["error"]))
    error: BaseException = BaseParser.parse_error(line)  # type: ignore[no-untyped-call]
    return error
