"""``postgres_error`` (extension): answers a share of queries with a PostgreSQL error.

Attributes: ``sqlstate`` (string, default ``40001``), ``message`` (string,
default PostgreSQL's own text for that code), ``rate`` (share of queries,
0–1, default 1), ``prefix`` (string: only queries whose SQL starts with it,
case-insensitive, leading blanks ignored; default all). Upstream stream only.

How an error is made, by kind of SQLSTATE:

- Ordinary errors (40001, 40P01, 57014, 25006, ...): the query is replaced by
  ``DO … RAISE EXCEPTION USING ERRCODE …`` (:func:`~..wire.pg.raise_error_sql`),
  so the *server* answers ErrorResponse then ReadyForQuery, in order behind
  anything still in flight, and a transaction block is aborted exactly as a
  real error would abort it. In the extended protocol the whole batch up to
  Sync (Parse/Bind/Describe/Execute…) is held, and replaced by that one
  statement: nothing of the batch reaches the server, and the client gets the
  error then ReadyForQuery, as when its first message fails. A Flush before
  the Sync (the client waits for replies mid-batch) passes the batch.
- Connection-ending errors (class 08, 57P01, 57P02): the proxy writes a
  FATAL ErrorResponse to the client and closes the connection.
- Start-up errors (53300, 57P03, 28000, 28P01, 3D000): the StartupMessage
  (after any SSLRequest/GSSENCRequest, which pass) is answered with a FATAL
  ErrorResponse and the connection is closed; ``rate`` is then the share of
  connection attempts.

Queries are the simple Query and the extended batches that carry SQL (the
SQL of a Bind's statement comes from its earlier Parse on this connection).
TLS, a CancelRequest, COPY data and anything after a toxic was attached in
the middle of a message pass untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from resilience.proxy.wire import ProtocolMismatch, pg

from .base import LinkContext, ToxicSpec
from .protocol import ProtocolStage, ProtocolState, parse_share

__all__ = ["DEFAULT_MESSAGES", "SPEC", "PostgresErrorStage", "is_fatal", "is_startup"]

DEFAULT_MESSAGES: dict[str, str] = {
    "40001": "could not serialize access due to concurrent update",
    "40P01": "deadlock detected",
    "57014": "canceling statement due to statement timeout",
    "53300": "sorry, too many clients already",
    "57P01": "terminating connection due to administrator command",
    "57P02": "terminating connection due to crash of another server process",
    "57P03": "the database system is starting up",
    "25006": "cannot execute {command} in a read-only transaction",
    "08006": "connection failure",
    "28000": "no pg_hba.conf entry for this connection",
    "28P01": "password authentication failed",
    "3D000": "database does not exist",
}
_STARTUP_CODES = frozenset({"53300", "57P03", "28000", "28P01", "3D000"})
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")
_BATCH_TYPES = frozenset("PBDECS")


def is_startup(sqlstate: str) -> bool:
    """Errors a server gives at connection start-up (then it closes)."""
    return sqlstate in _STARTUP_CODES


def is_fatal(sqlstate: str) -> bool:
    """Errors that end the session (FATAL, then the server closes)."""
    return is_startup(sqlstate) or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02")


class PgState(ProtocolState):
    """Per connection: statement name → SQL (from the Parse messages seen)."""

    def __init__(self) -> None:
        super().__init__()
        self.statements: dict[str, str] = {}


class PostgresErrorStage(ProtocolStage):
    __slots__ = ("message", "prefix", "rate", "sqlstate")

    state: PgState

    def __init__(self, ctx: LinkContext, attrs: Mapping[str, Any], state: Any = None) -> None:
        super().__init__(ctx, attrs, state)
        self.sqlstate = str(attrs["sqlstate"])
        self.message = str(attrs["message"])
        self.rate = float(attrs["rate"])
        self.prefix = str(attrs["prefix"]).lower()

    @classmethod
    def new_state(cls) -> Any:
        return PgState()

    # -- decisions -----------------------------------------------------------
    def _text(self, sqlstate_command: str) -> str:
        template = self.message or DEFAULT_MESSAGES.get(self.sqlstate, "")
        if not template:
            template = f"error {self.sqlstate} injected by the resilience proxy"
        return template.replace("{command}", sqlstate_command or "statement")

    def _hits(self, sql: str | None) -> bool:
        if sql is None or is_startup(self.sqlstate):
            return False
        if self.prefix and not sql.lstrip().lower().startswith(self.prefix):
            return False
        return self.ctx.rng.random() < self.rate

    def _inject(self, nbytes: int, sql: str) -> None:
        """Answer the query in the first nbytes of buf with the error."""
        words = sql.split(maxsplit=1)
        text = self._text(words[0].upper() if words else "")
        if is_fatal(self.sqlstate):
            self.answer_and_close(pg.error_response("FATAL", self.sqlstate, text))
        else:
            self.replace(nbytes, pg.query(pg.raise_error_sql(self.sqlstate, text)))

    # -- parsing -------------------------------------------------------------
    def process(self) -> None:
        try:
            if self.state.phase == "startup":
                self._startup()
            if self.state.phase == "messages":
                self._messages()
        except ProtocolMismatch:
            self.state.phase = "opaque"

    def _startup(self) -> None:
        while self.state.phase == "startup" and not self.stopped:
            packet = pg.read_startup(self.buf)
            if packet is None:
                return
            if packet.kind == "startup":
                if is_startup(self.sqlstate) and self.ctx.rng.random() < self.rate:
                    self.answer_and_close(pg.error_response("FATAL", self.sqlstate, self._text("")))
                    return
                self.state.phase = "messages"
            elif packet.kind == "cancel":
                self.state.phase = "opaque"
            # ssl / gssenc: the server answers one byte; a start-up packet or TLS follows
            self.forward(packet.end)

    def _messages(self) -> None:
        pos = 0  # end of the batch held so far (not yet forwarded)
        first_sql: str | None = None
        state = self.state
        while not self.stopped and self.state.phase == "messages":
            message = pg.read_message(self.buf, pos)
            if message is None:
                return
            kind = message.type
            if kind == "P":
                name, sql = pg.parse_statement(message)
                state.statements[name] = sql
                first_sql = sql if first_sql is None else first_sql
            elif kind == "B" and first_sql is None:
                first_sql = state.statements.get(pg.bind_statement(message))
            if kind not in _BATCH_TYPES and kind != "H":
                # outside a batch (Query, COPY data, Terminate, ...): a held batch passes first
                self.forward(pos)
                pos, first_sql = 0, None
                if kind == "Q" and self._hits(sql := pg.query_text(message)):
                    self._inject(message.end, sql)
                else:
                    self.forward(message.end)
                continue
            if kind == "H":  # the client waits for what it sent so far: it passes
                self.forward(message.end)
                pos = 0  # first_sql stays: the batch's SQL, for its part after the Flush
                continue
            pos = message.end
            if kind == "S":
                if self._hits(first_sql):
                    self._inject(pos, first_sql or "")
                else:
                    self.forward(pos)
                pos, first_sql = 0, None


def _check(attrs: Mapping[str, Any]) -> str | None:
    sqlstate = attrs["sqlstate"]
    if not _SQLSTATE.fullmatch(sqlstate) or sqlstate[:2] in ("00", "01", "02"):
        return (
            f"postgres_error sqlstate must be an error SQLSTATE of 5 characters "
            f"0-9/A-Z such as 40001 (got {sqlstate!r})"
        )
    if "\0" in attrs["message"] or "\0" in attrs["prefix"]:
        return "postgres_error message and prefix must not contain NUL"
    return parse_share(attrs["rate"])


SPEC = ToxicSpec(
    "postgres_error",
    ("sqlstate", "message", "rate", "prefix"),
    PostgresErrorStage,
    "answers a share of PostgreSQL queries with an ErrorResponse (SQLSTATE)",
    check=_check,
    kinds={"sqlstate": "string", "message": "string", "rate": "float32", "prefix": "string"},
    defaults={"sqlstate": "40001", "message": "", "rate": 1.0, "prefix": ""},
    only_stream="upstream",
)
