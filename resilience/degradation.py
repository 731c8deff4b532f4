"""Graceful degradation: a degraded-state tracker and a fallback wrapper.

:class:`Degradation` remembers whether a feature currently runs on its
fallback, why, since when and for how long in total; it leaves the degraded
state after ``recovery_successes`` consecutive successes (recovery detection)
and tells listeners about every transition with a frozen
:class:`DegradationEvent`.

:func:`with_fallback` wraps a sync or async function so that errors whose
recovery is FALLBACK (not found, open circuit) or that are still retryable
when they reach it (the retries upstream ran out) return a fallback value
instead of raising; the reason is recorded on an optional
:class:`Degradation`. Other errors (invalid input, bugs) are raised,
classified, with the original as ``__cause__``.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar, overload

from resilience.classify import classify
from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.errors import Recovery, ResilienceError

__all__ = ["Degradation", "DegradationEvent", "should_fall_back", "with_fallback"]

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F")


@dataclass(frozen=True, slots=True)
class DegradationEvent:
    """One transition of a :class:`Degradation`."""

    name: str
    kind: Literal["entered", "exited"]
    reason: str
    """Why it degraded (``entered``) or why it recovered (``exited``)."""
    at_s: float
    """The clock's monotonic time of the transition."""
    wall_s: float
    """The clock's wall time of the transition (Unix seconds)."""
    duration_s: float | None = None
    """For ``exited``: how long the degraded episode lasted."""


class Degradation:
    """Tracks whether ``name`` runs degraded, and detects recovery.

    - :meth:`enter` (or :meth:`record_failure`) marks it degraded with a reason
      (repeated calls while degraded only update the reason and failure count).
    - :meth:`record_success` while degraded counts towards recovery; after
      ``recovery_successes`` consecutive successes (default 1) it exits.
    - :meth:`exit` leaves at once.

    Listeners get a :class:`DegradationEvent` per transition, called outside
    the lock; ``events`` keeps the last ``history`` of them. Thread-safe.
    """

    def __init__(
        self,
        name: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        recovery_successes: int = 1,
        history: int = 100,
    ) -> None:
        if recovery_successes < 1:
            raise ValueError(f"recovery_successes must be at least 1, got {recovery_successes}")
        self.name = name
        self.recovery_successes = recovery_successes
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Callable[[DegradationEvent], object]] = []
        self.events: deque[DegradationEvent] = deque(maxlen=history)
        self._since: float | None = None
        self._reason: str | None = None
        self._successes = 0
        self._closed_degraded_s = 0.0
        self.episodes = 0
        """How many times it entered the degraded state."""
        self.fallbacks = 0
        """How many failures were recorded (each one a fallback served)."""

    def add_listener(self, listener: Callable[[DegradationEvent], object]) -> None:
        """Call ``listener(event)`` on every transition."""
        with self._lock:
            self._listeners.append(listener)

    @property
    def degraded(self) -> bool:
        return self._since is not None

    @property
    def reason(self) -> str | None:
        """The latest reason while degraded, else ``None``."""
        return self._reason

    @property
    def degraded_for_s(self) -> float:
        """Length of the current episode; 0.0 when not degraded."""
        since = self._since
        return 0.0 if since is None else self._clock.monotonic() - since

    @property
    def total_degraded_s(self) -> float:
        """All degraded time so far, the current episode included."""
        with self._lock:
            current = 0.0 if self._since is None else self._clock.monotonic() - self._since
            return self._closed_degraded_s + current

    def enter(self, reason: str) -> None:
        """Mark degraded because of ``reason``."""
        event = None
        with self._lock:
            self._reason = reason
            self._successes = 0
            if self._since is None:
                self._since = self._clock.monotonic()
                self.episodes += 1
                event = DegradationEvent(
                    self.name, "entered", reason, self._since, self._clock.wall()
                )
        if event is not None:
            self._emit(event)

    def record_failure(self, reason: str) -> None:
        """A fallback was served because of ``reason``: enter (or stay in) the degraded state."""
        with self._lock:
            self.fallbacks += 1
        self.enter(reason)

    def record_success(self) -> None:
        """A real (non-fallback) success; may end the degraded state."""
        if self._since is None:  # fast path, no lock: nothing to recover from
            return
        event = None
        with self._lock:
            if self._since is None:
                return
            self._successes += 1
            if self._successes >= self.recovery_successes:
                event = self._exit_locked(f"{self._successes} consecutive successes")
        if event is not None:
            self._emit(event)

    def exit(self, reason: str = "manual") -> None:
        """Leave the degraded state now (no-op when not degraded)."""
        with self._lock:
            event = self._exit_locked(reason) if self._since is not None else None
        if event is not None:
            self._emit(event)

    def _exit_locked(self, reason: str) -> DegradationEvent:
        assert self._since is not None
        now = self._clock.monotonic()
        duration = now - self._since
        self._closed_degraded_s += duration
        self._since = None
        self._reason = None
        self._successes = 0
        return DegradationEvent(self.name, "exited", reason, now, self._clock.wall(), duration)

    def _emit(self, event: DegradationEvent) -> None:
        self.events.append(event)
        for listener in list(self._listeners):
            listener(event)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready view of the current state and totals."""
        return {
            "name": self.name,
            "degraded": self.degraded,
            "reason": self._reason,
            "degraded_for_s": self.degraded_for_s,
            "total_degraded_s": self.total_degraded_s,
            "episodes": self.episodes,
            "fallbacks": self.fallbacks,
        }

    def __repr__(self) -> str:
        return f"Degradation({self.name!r}, degraded={self.degraded}, reason={self._reason!r})"


def should_fall_back(error: ResilienceError) -> bool:
    """True when ``error`` warrants a fallback: recovery FALLBACK, or still retryable."""
    return error.recovery is Recovery.FALLBACK or error.retryable


@overload
def with_fallback(
    fn: Callable[P, Coroutine[Any, Any, R]],
    fallback: F,
    *,
    degradation: Degradation | None = ...,
    on_fallback: Callable[[ResilienceError], object] | None = ...,
    clock: Clock = ...,
) -> Callable[P, Coroutine[Any, Any, R | F]]: ...


@overload
def with_fallback(
    fn: Callable[P, R],
    fallback: F,
    *,
    degradation: Degradation | None = ...,
    on_fallback: Callable[[ResilienceError], object] | None = ...,
    clock: Clock = ...,
) -> Callable[P, R | F]: ...


def with_fallback(
    fn: Callable[P, Any],
    fallback: Any,
    *,
    degradation: Degradation | None = None,
    on_fallback: Callable[[ResilienceError], object] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Callable[P, Any]:
    """Wrap ``fn`` (sync or ``async def``) to return ``fallback`` instead of failing.

    On an exception, the error is classified; if :func:`should_fall_back`
    holds, ``on_fallback(error)`` is called, ``degradation.record_failure``
    records ``"<ErrorType>: <message>"`` and ``fallback`` is returned.
    Otherwise the classified error is raised. A normal return calls
    ``degradation.record_success()``. ``clock`` is only used by the classifier.
    """

    def handle(exc: Exception) -> Any:
        error = classify(exc, clock=clock)
        if not should_fall_back(error):
            if error is exc:
                raise error
            raise error from exc
        if on_fallback is not None:
            on_fallback(error)
        if degradation is not None:
            degradation.record_failure(f"{type(error).__name__}: {error.message}")
        return fallback

    if inspect.iscoroutinefunction(fn):
        async_fn: Callable[P, Awaitable[Any]] = fn

        @functools.wraps(fn)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                result = await async_fn(*args, **kwargs)
            except Exception as exc:
                failure: Exception = exc
            else:
                if degradation is not None:
                    degradation.record_success()
                return result
            return handle(failure)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            failure: Exception = exc
        else:
            if degradation is not None:
                degradation.record_success()
            return result
        return handle(failure)

    return wrapper
