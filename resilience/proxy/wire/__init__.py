"""Framing of the application protocols our protocol toxics understand.

Pure functions over byte buffers (no sockets, no state): where the next
message ends, what it says, and the bytes of the messages a toxic writes.
``pg``: the PostgreSQL v3 frontend protocol; ``resp``: Redis RESP2/RESP3
commands.
"""

from __future__ import annotations

__all__ = ["ProtocolMismatch"]


class ProtocolMismatch(ValueError):
    """The bytes are not this protocol (a toxic then passes the stream through untouched)."""
