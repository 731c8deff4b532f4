"""Request limits of the HTTP API: body size (413) and the shape of a job's ``answers`` (422).

:class:`BodySizeLimit` is a pure ASGI middleware: a ``Content-Length`` above
the limit is answered 413 before a byte of the body is read; a body without
one (chunked) is read up to the limit and answered 413 as soon as it goes
past, so nothing too large reaches the application, let alone storage.

:func:`answers_problem` checks a decoded ``answers`` object without recursion
(so a 900-deep nesting is a clear 422, not a ``RecursionError``): its depth
and its size as compact JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "DEFAULT_ANSWERS_MAX_BYTES",
    "DEFAULT_ANSWERS_MAX_DEPTH",
    "DEFAULT_MAX_BODY_BYTES",
    "BodySizeLimit",
    "answers_problem",
]

DEFAULT_MAX_BODY_BYTES = 1_048_576
"""1 MiB: the default ``http.max_body_bytes``."""
DEFAULT_ANSWERS_MAX_DEPTH = 32
"""Nesting levels of ``answers`` (the object itself is level 1)."""
DEFAULT_ANSWERS_MAX_BYTES = 65_536
"""``answers`` as compact JSON, in bytes."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodySizeLimit:
    """Answer 413 to any HTTP request whose body is larger than ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_body_bytes:
                await self._too_large(send, declared)
                return
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read it here, bounded, then replay it.
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                await self._too_large(send, None)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _too_large(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "larger than that"
        body = json.dumps(
            {
                "error": "payload_too_large",
                "message": (
                    f"request body is {size}; the limit is {self.max_body_bytes} bytes "
                    "(setting http.max_body_bytes)"
                ),
                "retryable": False,
                "correlation_id": None,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def answers_problem(
    answers: object,
    *,
    max_depth: int = DEFAULT_ANSWERS_MAX_DEPTH,
    max_bytes: int = DEFAULT_ANSWERS_MAX_BYTES,
) -> str | None:
    """Why ``answers`` is refused (nesting deeper than ``max_depth``, compact JSON
    larger than ``max_bytes``), or ``None`` when it is fine. Iterative: any depth is safe."""
    stack: list[tuple[object, int]] = [(answers, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                return f"answers are nested deeper than {max_depth} levels"
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    size = len(json.dumps(answers, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        return f"answers are {size} bytes as JSON; the limit is {max_bytes} bytes"
    return None
