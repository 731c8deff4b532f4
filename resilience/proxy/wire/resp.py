"""Redis commands as clients send them (RESP2/RESP3 share the request format).

A command is an array of bulk strings: ``*<n>\\r\\n`` then ``n`` times
``$<len>\\r\\n<bytes>\\r\\n``. An *inline* command is one text line (what
``telnet`` sends); toxics pass those through.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ProtocolMismatch

__all__ = ["MAX_INLINE_BYTES", "Command", "encode_command", "read_command"]

MAX_INLINE_BYTES = 64 * 1024  # Redis's own limit on an inline command
_MAX_ARGS = 1024 * 1024
_MAX_BULK_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Command:
    """One command; ``args`` is None for an inline command."""

    args: list[bytes] | None
    end: int

    @property
    def name(self) -> str:
        """The command name, upper case ("" for an inline or empty command)."""
        if not self.args:
            return ""
        return self.args[0].decode("latin-1").upper()


def _line(buf: bytes | bytearray, pos: int) -> tuple[bytes, int] | None:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        if len(buf) - pos > MAX_INLINE_BYTES:
            raise ProtocolMismatch("no line end")
        return None
    return bytes(buf[pos:end]), end + 2


def _count(text: bytes, limit: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ProtocolMismatch(f"bad count {text[:20]!r}") from None
    if not -1 <= value <= limit:
        raise ProtocolMismatch(f"count out of range: {value}")
    return value


def read_command(buf: bytes | bytearray, pos: int = 0) -> Command | None:
    """The command at ``buf[pos:]``; None until it is complete.

    Raises :class:`ProtocolMismatch` when the bytes are not a RESP request.
    """
    if pos >= len(buf):
        return None
    if buf[pos] != ord("*"):
        end = buf.find(b"\n", pos)
        if end < 0:
            if len(buf) - pos > MAX_INLINE_BYTES:
                raise ProtocolMismatch("inline command too long")
            return None
        return Command(None, end + 1)
    header = _line(buf, pos + 1)
    if header is None:
        return None
    count, at = _count(header[0], _MAX_ARGS), header[1]
    args: list[bytes] = []
    for _ in range(max(count, 0)):
        if at >= len(buf):
            return None
        if buf[at] != ord("$"):
            raise ProtocolMismatch("a command argument is not a bulk string")
        size_line = _line(buf, at + 1)
        if size_line is None:
            return None
        size, at = _count(size_line[0], _MAX_BULK_BYTES), size_line[1]
        if size < 0:
            raise ProtocolMismatch("null bulk string in a command")
        if len(buf) < at + size + 2:
            return None
        if buf[at + size : at + size + 2] != b"\r\n":
            raise ProtocolMismatch("bulk string not followed by CRLF")
        args.append(bytes(buf[at : at + size]))
        at += size + 2
    return Command(args, at)


def encode_command(*args: bytes) -> bytes:
    """args as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)
