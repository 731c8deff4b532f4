"""PostgreSQL v3 frontend framing (what a client sends) and the messages we write.

Start-up packets have no type byte: ``int32 length`` then ``int32 code``
(protocol 3.x, or the SSLRequest / GSSENCRequest / CancelRequest codes).
After start-up every message is ``type byte, int32 length (itself included),
body``. A TLS ClientHello (first byte 0x16) or a GSS token after an encryption
request does not parse as either, which is how a toxic knows to stop looking.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import ProtocolMismatch

__all__ = [
    "CANCEL_REQUEST",
    "FRONTEND_TYPES",
    "GSSENC_REQUEST",
    "MAX_MESSAGE_BYTES",
    "SSL_REQUEST",
    "Message",
    "StartupPacket",
    "bind_statement",
    "error_response",
    "parse_statement",
    "query",
    "query_text",
    "raise_error_sql",
    "read_message",
    "read_startup",
]

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
_PROTOCOL_3 = 3 << 16
MAX_STARTUP_BYTES = 10_000  # the server's own limit on a start-up packet
MAX_MESSAGE_BYTES = 1 << 30  # the server's limit on a message
FRONTEND_TYPES = frozenset(b"BCdcfDEHFPpQSX")
_INT32 = struct.Struct("!i")


@dataclass(frozen=True, slots=True)
class StartupPacket:
    """One start-up packet: ``kind`` is ``ssl``, ``gssenc``, ``cancel`` or ``startup``."""

    kind: str
    end: int  # offset just past the packet in the buffer it was read from


@dataclass(frozen=True, slots=True)
class Message:
    """One typed frontend message; ``body`` excludes the type byte and length."""

    type: str
    body: bytes
    end: int


def read_startup(buf: bytes | bytearray, pos: int = 0) -> StartupPacket | None:
    """The start-up packet at ``buf[pos:]``; None until it is complete.

    Raises :class:`ProtocolMismatch` when the bytes cannot be one.
    """
    if len(buf) - pos < 8:
        if len(buf) - pos >= 4 and not 8 <= _INT32.unpack_from(buf, pos)[0] <= MAX_STARTUP_BYTES:
            raise ProtocolMismatch("not a PostgreSQL start-up packet")
        return None
    length = _INT32.unpack_from(buf, pos)[0]
    if not 8 <= length <= MAX_STARTUP_BYTES:
        raise ProtocolMismatch("not a PostgreSQL start-up packet")
    code = _INT32.unpack_from(buf, pos + 4)[0]
    if code == SSL_REQUEST:
        kind = "ssl"
    elif code == GSSENC_REQUEST:
        kind = "gssenc"
    elif code == CANCEL_REQUEST:
        kind = "cancel"
    elif code >> 16 == _PROTOCOL_3 >> 16:
        kind = "startup"
    else:
        raise ProtocolMismatch(f"unknown start-up code {code}")
    if len(buf) - pos < length:
        return None
    return StartupPacket(kind, pos + length)


def read_message(buf: bytes | bytearray, pos: int = 0) -> Message | None:
    """The typed message at ``buf[pos:]``; None until it is complete.

    Raises :class:`ProtocolMismatch` on an unknown type byte or impossible length.
    """
    if len(buf) - pos < 1:
        return None
    if buf[pos] not in FRONTEND_TYPES:
        raise ProtocolMismatch(f"unknown message type {bytes(buf[pos : pos + 1])!r}")
    if len(buf) - pos < 5:
        return None
    length = _INT32.unpack_from(buf, pos + 1)[0]
    if not 4 <= length <= MAX_MESSAGE_BYTES:
        raise ProtocolMismatch(f"impossible message length {length}")
    end = pos + 1 + length
    if len(buf) < end:
        return None
    return Message(chr(buf[pos]), bytes(buf[pos + 5 : end]), end)


def _cstrings(body: bytes, count: int) -> list[str]:
    parts = body.split(b"\0", count)
    if len(parts) <= count:
        raise ProtocolMismatch("truncated string in a message")
    return [part.decode("utf-8", "replace") for part in parts[:count]]


def query_text(message: Message) -> str:
    """The SQL of a simple Query (``Q``)."""
    return _cstrings(message.body, 1)[0]


def parse_statement(message: Message) -> tuple[str, str]:
    """(statement name, SQL) of a Parse (``P``); the unnamed statement is ``""``."""
    name, text = _cstrings(message.body, 2)
    return name, text


def bind_statement(message: Message) -> str:
    """The statement name a Bind (``B``) refers to."""
    return _cstrings(message.body, 2)[1]


def _frame(type_byte: bytes, body: bytes) -> bytes:
    return type_byte + _INT32.pack(len(body) + 4) + body


def query(text: str) -> bytes:
    """A simple Query message."""
    return _frame(b"Q", text.encode() + b"\0")


def error_response(severity: str, sqlstate: str, message: str) -> bytes:
    """An ErrorResponse (``E``) with severity, SQLSTATE and message."""
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in ((b"S", severity), (b"V", severity), (b"C", sqlstate), (b"M", message))
    )
    return _frame(b"E", fields + b"\0")


def _e_literal(text: str) -> str:
    """text as an ``E'...'`` literal (backslash escapes, whatever the server settings)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("$", "\\x24")
    return f"E'{escaped}'"


def raise_error_sql(sqlstate: str, message: str) -> str:
    """A statement that makes the server itself raise sqlstate with message.

    The server then answers in order, with ReadyForQuery and the transaction
    state a real error of that kind leaves (a transaction block is aborted).
    """
    return (
        "DO $resilience$BEGIN RAISE EXCEPTION USING ERRCODE = "
        f"{_e_literal(sqlstate)}, MESSAGE = {_e_literal(message)}; END$resilience$"
    )
