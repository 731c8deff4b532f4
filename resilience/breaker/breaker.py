"""The circuit breaker: closed → open → half-open → closed.

Contract
--------
*Closed*: calls pass. The breaker opens when

- ``failure_threshold`` calls fail in a row (``None`` disables this rule), or,
  with a ``window`` (:class:`~resilience.breaker.window.CountWindow` or
  :class:`~resilience.breaker.window.TimeWindow`),
- a failing call brings the window to ``window_failure_threshold`` failures, or
- a failing or slow call brings the failure rate (failures / calls, a fraction)
  to ``failure_rate_threshold`` or the slow-call rate (calls lasting at least
  ``slow_call_duration_s``) to ``slow_call_rate_threshold``, once the window
  holds at least ``minimum_calls`` calls.

*Open*: calls are refused with :class:`~resilience.errors.CircuitOpenError`,
whose ``retry_after_s`` says when the next trial is allowed, until
``reset_timeout_s`` seconds have passed since opening.

*Half-open*: at most ``half_open_max_calls`` trial calls run at once (others
are refused with ``retry_after_s == 0``); ``success_threshold`` successful
trials close the breaker, one failed trial opens it again.

What counts as a failure: an exception for which ``is_failure(exc)`` is true
(by default every :class:`Exception` except :class:`~resilience.errors.InvalidInput`
and :class:`~resilience.errors.NotFound`), or a result for which
``is_failure_result(result)`` is true (the result is still returned). Other
exceptions, and ``BaseException``s such as task cancellation, are *ignored*:
they neither count as success nor as failure.

Concurrency: the state read on the way in is a single attribute read; outcomes
are recorded under a short :class:`threading.Lock` that is never held while
the protected call runs, nor while calling listeners or the store. The same
breaker serves threads and asyncio tasks. Each permit carries the breaker's
generation (bumped on every transition); an outcome reported with a permit
from an earlier generation is ignored, so a slow call started before an
opening cannot close or re-open the breaker later.

All time comes from ``clock.monotonic()``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from time import monotonic as _monotonic
from typing import Any, NewType, ParamSpec, TypeVar, overload

from resilience.breaker.state import BreakerListener, BreakerRecord, BreakerState, Transition
from resilience.breaker.store import BreakerStore, InMemoryBreakerStore
from resilience.breaker.window import (
    FAILED,
    SLOW,
    CountWindow,
    OutcomeCounter,
    TimeWindow,
    _CountCounter,
)
from resilience.clock import SYSTEM_CLOCK, Clock, SystemClock
from resilience.errors import CircuitOpenError, InvalidInput, NotFound

__all__ = ["CircuitBreaker", "Permit", "default_is_failure"]

_log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

Permit = NewType("Permit", int)
"""Ticket returned by :meth:`CircuitBreaker.before_call`; hand it back with the outcome."""

_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_HALF_OPEN = BreakerState.HALF_OPEN
_REFUSED = Permit(-1)


def default_is_failure(exc: Exception) -> bool:
    """Everything counts except the caller's own mistakes (invalid input, not found)."""
    return not isinstance(exc, InvalidInput | NotFound)


class CircuitBreaker:
    """A circuit breaker. See the module docstring for the full contract.

    Durations are float seconds; rates are fractions in ``(0, 1]``.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int | None = 5,
        reset_timeout_s: float = 60.0,
        window: CountWindow | TimeWindow | None = None,
        failure_rate_threshold: float | None = None,
        window_failure_threshold: int | None = None,
        slow_call_duration_s: float | None = None,
        slow_call_rate_threshold: float | None = None,
        minimum_calls: int = 10,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        is_failure: Callable[[Exception], bool] = default_is_failure,
        is_failure_result: Callable[[Any], bool] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        store: BreakerStore | None = None,
        listeners: Iterable[BreakerListener] = (),
        transition_log_size: int = 100,
    ) -> None:
        _check(failure_threshold is None or failure_threshold >= 1, "failure_threshold >= 1")
        _check(reset_timeout_s >= 0, "reset_timeout_s >= 0")
        _check(minimum_calls >= 1, "minimum_calls >= 1")
        _check(half_open_max_calls >= 1, "half_open_max_calls >= 1")
        _check(success_threshold >= 1, "success_threshold >= 1")
        _check(transition_log_size >= 1, "transition_log_size >= 1")
        for label, rate in (
            ("failure_rate_threshold", failure_rate_threshold),
            ("slow_call_rate_threshold", slow_call_rate_threshold),
        ):
            _check(rate is None or 0 < rate <= 1, f"{label} in (0, 1]")
        _check(
            window_failure_threshold is None or window_failure_threshold >= 1,
            "window_failure_threshold >= 1",
        )
        window_rules = (failure_rate_threshold, window_failure_threshold, slow_call_rate_threshold)
        has_window_rule = any(rule is not None for rule in window_rules)
        _check(
            window is None or has_window_rule,
            "a window needs failure_rate_threshold, window_failure_threshold "
            "or slow_call_rate_threshold",
        )
        _check(
            window is not None or not has_window_rule, "rate and window thresholds need a window"
        )
        _check(
            slow_call_rate_threshold is None or slow_call_duration_s is not None,
            "slow_call_rate_threshold needs slow_call_duration_s",
        )
        _check(
            failure_threshold is not None or has_window_rule,
            "at least one opening rule (failure_threshold or a window threshold)",
        )

        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.window = window
        self.failure_rate_threshold = failure_rate_threshold
        self.window_failure_threshold = window_failure_threshold
        self.slow_call_duration_s = slow_call_duration_s
        self.slow_call_rate_threshold = slow_call_rate_threshold
        self.minimum_calls = minimum_calls
        self.half_open_max_calls = half_open_max_calls
        self.success_threshold = success_threshold
        self.is_failure = is_failure
        self.is_failure_result = is_failure_result
        self.clock = clock
        self.store: BreakerStore = store if store is not None else InMemoryBreakerStore()
        self._listeners: list[BreakerListener] = list(listeners)

        self._now = clock.monotonic
        # refusals read the system clock through time.monotonic directly (no Python
        # frame); freezegun patches this module's `_monotonic` global as well
        self._system_clock = type(clock) is SystemClock  # not subclasses: they may override
        self._timed = slow_call_duration_s is not None
        self._counter: OutcomeCounter | None = window.create() if window is not None else None
        # a count window takes plain successes as a bare increment (see _CountCounter)
        self._lazy_counter = self._counter if isinstance(self._counter, _CountCounter) else None
        self._lock = threading.Lock()
        self._writer = uuid.uuid4().hex
        self._log: deque[Transition] = deque(maxlen=transition_log_size)

        # state (read without the lock on the hot path; written under it)
        self._state = _CLOSED
        self._generation = Permit(0)
        self._version = 0
        self._opens = 0
        self._opened_at = 0.0
        self._consecutive_failures = 0
        self._trials_in_flight = 0
        self._trial_successes = 0

        self.store.watch(name, self._adopt)
        stored = self.store.load(name)
        if stored is not None:
            self._adopt(stored)

    # -- inspection ----------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker past its reset timeout becomes half-open."""
        if self._state is _OPEN and self._now() >= self._opened_at + self.reset_timeout_s:
            published = None
            with self._lock:
                if self._state is _OPEN and self._now() >= self._opened_at + self.reset_timeout_s:
                    published = self._transition_locked(_HALF_OPEN, "reset timeout elapsed")
            self._publish(published)
        return self._state

    @property
    def opens(self) -> int:
        """How many times the breaker has opened (as known to its store)."""
        return self._opens

    @property
    def transitions(self) -> list[Transition]:
        """The most recent transitions, oldest first (at most ``transition_log_size``)."""
        with self._lock:
            return list(self._log)

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def window_totals(self) -> tuple[int, int, int]:
        """``(calls, failures, slow_calls)`` in the sliding window (zeros without one)."""
        if self._counter is None:
            return (0, 0, 0)
        with self._lock:
            return self._counter.totals(self._now())

    def add_listener(self, listener: BreakerListener) -> None:
        self._listeners.append(listener)

    # -- manual control -------------------------------------------------------

    def reset(self) -> None:
        """Close the breaker and forget all counts."""
        with self._lock:
            published = self._transition_locked(_CLOSED, "manual reset", force=True)
        self._publish(published)

    def force_open(self, reason: str = "forced open") -> None:
        """Open the breaker now; the usual reset timeout then applies."""
        with self._lock:
            published = self._transition_locked(_OPEN, reason, force=True)
        self._publish(published)

    # -- low-level protocol ----------------------------------------------------

    def before_call(self) -> Permit:
        """Admit one call or raise :class:`~resilience.errors.CircuitOpenError`.

        Every admitted call must be reported once with :meth:`on_success` or
        :meth:`on_failure` (a half-open trial slot stays taken until then).
        """
        generation = self._generation
        if self._state is _CLOSED:
            return generation
        return self._admit_slow()

    def on_success(self, permit: Permit, duration_s: float = 0.0) -> None:
        """Report that an admitted call succeeded after ``duration_s`` seconds."""
        slow = self._timed and duration_s >= self.slow_call_duration_s  # type: ignore[operator]
        self._record(permit, SLOW if slow else 0)

    def on_failure(self, permit: Permit, exc: BaseException, duration_s: float = 0.0) -> None:
        """Report that an admitted call raised ``exc``; non-failures are ignored."""
        if isinstance(exc, Exception) and self.is_failure(exc):
            slow = self._timed and duration_s >= self.slow_call_duration_s  # type: ignore[operator]
            self._record(permit, FAILED | SLOW if slow else FAILED)
        else:
            self.on_ignored(permit)

    def on_ignored(self, permit: Permit) -> None:
        """Release an admitted call whose outcome should not count either way."""
        if self._state is _HALF_OPEN:
            with self._lock:
                if permit == self._generation and self._state is _HALF_OPEN:
                    self._trials_in_flight -= 1

    # -- call forms -------------------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` through the breaker."""
        permit = self._generation
        state = self._state
        if state is not _CLOSED:
            if state is _OPEN:  # inlined lock-free refusal (see _admit_slow): saves a frame
                t = _monotonic() if self._system_clock else self._now()
                opens_at = self._opened_at + self.reset_timeout_s
                if t < opens_at:
                    raise CircuitOpenError(self.name, retry_after_s=opens_at - t, retry_at=opens_at)
            permit = self._admit_slow()
        if self._timed:
            now = self._now
            start = now()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self.on_failure(permit, exc, now() - start)
                raise
            flags = self._slow_flag(now() - start)
        else:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self.on_failure(permit, exc)
                raise
            flags = 0
        if self.is_failure_result is not None and self.is_failure_result(result):
            flags |= FAILED
        if not flags:
            # inlined hot path of _record (a plain success while closed): saves a frame
            with self._lock:
                if permit == self._generation and self._state is _CLOSED:
                    self._consecutive_failures = 0
                    lazy = self._lazy_counter
                    if lazy is not None:
                        lazy.pending += 1
                    elif self._counter is not None:
                        self._counter.record(0, self._now())
                    return result
        self._record(permit, flags)
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` through the breaker."""
        permit = self._generation
        if self._state is not _CLOSED:
            permit = self._admit_slow()
        now = self._now
        start = now() if self._timed else 0.0
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self.on_failure(permit, exc, now() - start if self._timed else 0.0)
            raise
        flags = self._slow_flag(now() - start) if self._timed else 0
        if self.is_failure_result is not None and self.is_failure_result(result):
            flags |= FAILED
        self._record(permit, flags)
        return result

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a function or coroutine function so every call goes through the breaker."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(fn, *args, **kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call(fn, *args, **kwargs)

        return wrapper

    # -- internals ----------------------------------------------------------------

    def _slow_flag(self, duration_s: float) -> int:
        if self._timed and duration_s >= self.slow_call_duration_s:  # type: ignore[operator]
            return SLOW
        return 0

    def _admit_slow(self) -> Permit:
        """Admission when not closed: maybe move to half-open, take a trial slot, or refuse."""
        if self._state is _OPEN:
            # lock-free refusal while the timeout runs (the common case of an open
            # breaker); a transition racing with these reads can at worst refuse a
            # call that would have been admitted an instant later
            now = _monotonic() if self._system_clock else self._now()
            opens_at = self._opened_at + self.reset_timeout_s
            if now < opens_at:
                raise CircuitOpenError(self.name, retry_after_s=opens_at - now, retry_at=opens_at)
        published = None
        retry_after_s = 0.0
        retry_at: float | None = None
        with self._lock:
            now = self._now()
            state = self._state
            if state is _OPEN:
                retry_at = self._opened_at + self.reset_timeout_s
                if now >= retry_at:
                    published = self._transition_locked(_HALF_OPEN, "reset timeout elapsed")
                    state = _HALF_OPEN
                else:
                    retry_after_s = retry_at - now
            if state is _HALF_OPEN:
                if self._trials_in_flight < self.half_open_max_calls:
                    self._trials_in_flight += 1
                    permit = self._generation
                else:
                    permit = _REFUSED
                    retry_at = now
            elif state is _CLOSED:
                permit = self._generation
            else:
                permit = _REFUSED
        self._publish(published)
        if permit < 0:
            raise CircuitOpenError(self.name, retry_after_s=retry_after_s, retry_at=retry_at)
        return permit

    def _record(self, permit: Permit, flags: int) -> None:
        with self._lock:
            if permit != self._generation:
                return  # admitted before the latest transition: stale outcome
            if not flags and self._state is _CLOSED:  # the hot path: a plain success
                self._consecutive_failures = 0
                counter = self._counter
                if counter is not None:
                    counter.record(0, self._now() if counter.needs_time else 0.0)
                return
            published = self._record_locked(flags)
        if published is not None:
            self._publish(published)

    def _record_locked(self, flags: int) -> tuple[Transition, BreakerRecord] | None:
        published = None
        state = self._state
        if state is _CLOSED:
            counter = self._counter
            if flags & FAILED:
                self._consecutive_failures += 1
                if (
                    self.failure_threshold is not None
                    and self._consecutive_failures >= self.failure_threshold
                ):
                    published = self._transition_locked(
                        _OPEN, f"{self._consecutive_failures} consecutive failures"
                    )
                    counter = None
            else:
                self._consecutive_failures = 0
            if counter is not None:
                now = self._now() if counter.needs_time else 0.0
                counter.record(flags, now)
                if flags:
                    reason = self._window_verdict(counter, now)
                    if reason is not None:
                        published = self._transition_locked(_OPEN, reason)
        elif state is _HALF_OPEN:
            self._trials_in_flight -= 1
            if flags & FAILED:
                published = self._transition_locked(_OPEN, "trial call failed")
            else:
                self._trial_successes += 1
                if self._trial_successes >= self.success_threshold:
                    published = self._transition_locked(
                        _CLOSED, f"{self._trial_successes} trial calls succeeded"
                    )
        return published

    def _window_verdict(self, counter: OutcomeCounter, now: float) -> str | None:
        calls, failures, slow = counter.totals(now)
        if self.window_failure_threshold is not None and failures >= self.window_failure_threshold:
            return f"{failures} failures in the window"
        if calls < self.minimum_calls:
            return None
        if (
            self.failure_rate_threshold is not None
            and failures >= calls * self.failure_rate_threshold
        ):
            return f"failure rate {failures}/{calls} >= {self.failure_rate_threshold:g}"
        if (
            self.slow_call_rate_threshold is not None
            and slow >= calls * self.slow_call_rate_threshold
        ):
            return f"slow-call rate {slow}/{calls} >= {self.slow_call_rate_threshold:g}"
        return None

    def _transition_locked(
        self, to: BreakerState, reason: str, *, force: bool = False
    ) -> tuple[Transition, BreakerRecord] | None:
        """Change state (caller holds the lock); return what to publish outside it."""
        from_state = self._state
        if from_state is to and not force:
            return None
        now = self._now()
        wall = self.clock.wall()
        if to is _OPEN:
            self._opens += 1
            self._opened_at = now
        self._enter_locked(to)
        self._version += 1
        transition = Transition(from_state, to, now, wall, reason)
        self._log.append(transition)
        record = BreakerRecord(
            state=to,
            version=self._version,
            writer=self._writer,
            opened_at_wall=wall - (now - self._opened_at) if self._opens else None,
            opens=self._opens,
            reason=reason,
        )
        return transition, record

    def _enter_locked(self, to: BreakerState) -> None:
        self._state = to
        self._generation = Permit(self._generation + 1)
        self._consecutive_failures = 0
        self._trials_in_flight = 0
        self._trial_successes = 0
        if self._counter is not None:
            self._counter.clear()

    def _publish(self, published: tuple[Transition, BreakerRecord] | None) -> None:
        """Write a transition to the store and tell the listeners (no lock held)."""
        if published is None:
            return
        transition, record = published
        try:
            stored = self.store.apply(self.name, record)
        except Exception:  # a failing shared store must not break local protection
            _log.exception("breaker %r: store rejected transition %s", self.name, transition)
        else:
            if stored is not record:
                self._adopt(stored)
        self._notify(transition)

    def _notify(self, transition: Transition) -> None:
        for listener in list(self._listeners):
            try:
                listener.on_transition(self, transition)
            except Exception:
                _log.exception("breaker %r: listener %r failed", self.name, listener)

    def _adopt(self, record: BreakerRecord) -> None:
        """Take over a record written elsewhere if it is newer than ours (store callback)."""
        transition = None
        with self._lock:
            if record.version < self._version or (
                record.version == self._version and record.writer == self._writer
            ):
                return  # ours, or older than what we know
            from_state = self._state
            now = self._now()
            wall = self.clock.wall()
            if record.opened_at_wall is not None:
                self._opened_at = now - max(0.0, wall - record.opened_at_wall)
            self._opens = record.opens
            self._version = record.version
            if from_state is not record.state:
                self._enter_locked(record.state)
                transition = Transition(
                    from_state, record.state, now, wall, f"shared: {record.reason}"
                )
                self._log.append(transition)
        if transition is not None:
            self._notify(transition)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._state.value}, opens={self._opens})"


def _check(ok: bool, rule: str) -> None:
    if not ok:
        raise ValueError(f"invalid circuit breaker configuration: need {rule}")
