"""``redis_error`` (extension): answers a share of Redis commands with an error reply.

Attributes: ``error`` (string: ``LOADING``, ``BUSY``, ``READONLY``, ``OOM``,
``MASTERDOWN`` for Redis's own messages, another upper-case word for
``<WORD> error injected by the resilience proxy``, or a whole error line such
as ``ERR custom text``; default ``LOADING``), ``rate`` (share of commands,
0–1, default 1), ``commands`` (string: command names separated by commas or
blanks, case-insensitive; default every command except the connection and
transaction ones). Upstream stream only; RESP2 and RESP3 alike.

A hit command is replaced by ``EVAL "return redis.error_reply(ARGV[1])" 0
<error>``: the *server* answers the error, so pipelined commands get their
replies in order and nothing of the replaced command runs. Never replaced:
commands inside ``MULTI``…``EXEC`` (a real server would queue or abort them
differently), inline commands, and, unless named in ``commands``, the
connection's own commands (HELLO, AUTH, SELECT, CLIENT, PING, subscriptions,
MULTI/EXEC, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from resilience.proxy.wire import ProtocolMismatch, resp

from .base import LinkContext, ToxicSpec
from .protocol import ProtocolStage, ProtocolState, parse_share

__all__ = ["DEFAULT_ERRORS", "SPEC", "RedisErrorStage", "error_line"]

DEFAULT_ERRORS: dict[str, str] = {
    "LOADING": "LOADING Redis is loading the dataset in memory",
    "BUSY": (
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    ),
    "READONLY": "READONLY You can't write against a read only replica.",
    "OOM": "OOM command not allowed when used memory > 'maxmemory'.",
    "MASTERDOWN": (
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
    ),
}
CONNECTION_COMMANDS = frozenset(
    {
        "AUTH", "CLIENT", "DISCARD", "ECHO", "EXEC", "HELLO", "MULTI", "PING", "PSUBSCRIBE",
        "PUNSUBSCRIBE", "QUIT", "RESET", "SELECT", "SSUBSCRIBE", "SUBSCRIBE", "SUNSUBSCRIBE",
        "UNSUBSCRIBE", "UNWATCH", "WATCH",
    }
)  # fmt: skip
_SCRIPT = b"return redis.error_reply(ARGV[1])"
_WORD = re.compile(r"[A-Z][A-Z0-9_]*")


def error_line(error: str) -> str:
    """The error reply's text (without ``-`` and CRLF) for the ``error`` attribute."""
    if error in DEFAULT_ERRORS:
        return DEFAULT_ERRORS[error]
    if _WORD.fullmatch(error):
        return f"{error} error injected by the resilience proxy"
    return error


def command_names(text: str) -> frozenset[str]:
    """The upper-case names in a ``commands`` attribute."""
    return frozenset(name.upper() for name in re.split(r"[\s,]+", text) if name)


class RedisState(ProtocolState):
    """Per connection: inside MULTI (commands are queued, never replaced)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_multi = False


class RedisErrorStage(ProtocolStage):
    __slots__ = ("commands", "rate", "replacement")

    state: RedisState

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, Any], state: Any = None) -> None:
        super().__init__(ctx, attrs, state)
        self.state.phase = "messages"  # RESP has no start-up phase
        self.rate = float(attrs["rate"])
        self.commands = command_names(str(attrs["commands"]))
        line = error_line(str(attrs["error"])).encode()
        self.replacement = resp.encode_command(b"EVAL", _SCRIPT, b"0", line)

    @classmethod
    def new_state(cls) -> Any:
        return RedisState()

    def _hits(self, name: str) -> bool:
        if self.commands:
            wanted = name in self.commands
        else:
            wanted = name != "" and name not in CONNECTION_COMMANDS
        return wanted and self.ctx.rng.random() < self.rate

    def process(self) -> None:
        state = self.state
        while not self.stopped:
            try:
                command = resp.read_command(self.buf)
            except ProtocolMismatch:
                state.phase = "opaque"
                return
            if command is None:
                return
            name = command.name
            if state.in_multi:
                state.in_multi = name not in ("EXEC", "DISCARD", "RESET")
                self.forward(command.end)
            elif command.args is not None and self._hits(name):
                self.replace(command.end, self.replacement)
            else:
                state.in_multi = name == "MULTI"
                self.forward(command.end)


def _check(attrs: Mapping[str, Any]) -> str | None:
    error = attrs["error"]
    if not error.strip() or any(c in error for c in "\r\n\0"):
        return "redis_error error must be a non-empty line (LOADING, BUSY, READONLY, OOM, ...)"
    return parse_share(attrs["rate"])


SPEC = ToxicSpec(
    "redis_error",
    ("error", "rate", "commands"),
    RedisErrorStage,
    "answers a share of Redis commands with an error reply (LOADING, READONLY, ...)",
    check=_check,
    kinds={"error": "string", "rate": "float32", "commands": "string"},
    defaults={"error": "LOADING", "rate": 1.0, "commands": ""},
    only_stream="upstream",
)
