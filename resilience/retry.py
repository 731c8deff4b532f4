"""Retry with exponential backoff, jitter, a total deadline and a shared budget.

::

    from resilience.retry import LOOKUP_RETRY, Retry

    row = LOOKUP_RETRY.call(fetch_row, slug)            # explicit, sync
    row = await LOOKUP_RETRY.acall(fetch_row_async, slug)

    @Retry(max_attempts=3, deadline_s=1.0)              # decorator, sync or async
    async def fetch(...): ...

Contract
--------
- Attempt ``n`` (1-based) that fails is followed by a sleep of
  ``min(max_delay_s, initial_delay_s * multiplier ** (n - 1))`` shaped by
  ``jitter`` and clamped to ``[0, max_delay_s]``; a larger ``Retry-After``
  (:attr:`UpstreamHTTPError.retry_after_s`) replaces it; one larger than
  ``max_retry_after_s`` (when set) ends the retries at once: the next call
  would come before the server asked, or the caller waits too long.
- At most ``max_attempts`` calls. With ``deadline_s``, a retry whose sleep would
  end past ``start + deadline_s`` is not made: the error is raised at once.
  The deadline does not interrupt an attempt by itself: a caller that bounds
  each attempt with a timeout caps it with :meth:`Retry.attempt_timeout_s`
  (what is left of the deadline), which makes ``deadline_s`` a real bound on
  the whole call, sleeps and attempts included.
- Exceptions are classified (:func:`resilience.classify.classify`). An attempt
  is retried when the classified error is retryable, or the original is an
  instance of ``retry_on``, or ``retry_if(original)`` is true. Invalid input and
  an open circuit are never retried. Only :class:`Exception` is caught, so
  cancellation and ``KeyboardInterrupt`` pass straight through.
- Giving up raises the last classified error (original as ``__cause__``) with
  ``context["attempts"]``. When retrying on a result (``retry_on_result``) runs
  out, the last result is returned.
- With a :class:`RetryBudget`, every call deposits and every retry withdraws; an
  empty budget means "give up now", which stops a retry storm.
- All time goes through ``clock``; the success-on-first-attempt path reads the
  clock only when ``deadline_s`` is set.

Why this file is over 500 lines: the first-attempt path is written out four
times (``call``, ``acall`` and the sync/async decorator wrappers) instead of
sharing a helper, because one Python frame less per call is most of the cost
this module is benchmarked on (≤ 0.25 x tenacity/stamina/backoff).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import random
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar, cast, overload

from resilience.classify import classify
from resilience.clock import SYSTEM_CLOCK, Clock
from resilience.errors import CircuitOpenError, InvalidInput, ResilienceError, UpstreamHTTPError

__all__ = [
    "HTTP_API_RETRY",
    "LOOKUP_RETRY",
    "STORAGE_RETRY",
    "Jitter",
    "Retry",
    "RetryAttempt",
    "RetryBudget",
]

P = ParamSpec("P")
R = TypeVar("R")

Jitter = Literal["none", "full", "equal", "decorrelated", "proportional"]
_JITTERS: frozenset[str] = frozenset({"none", "full", "equal", "decorrelated", "proportional"})
_NEVER_RETRY = (InvalidInput, CircuitOpenError)
_DEFAULT_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class RetryAttempt:
    """What ``on_retry`` hooks receive before each sleep."""

    name: str
    """The :class:`Retry`'s name (e.g. ``"lookup"``)."""
    attempt: int
    """The attempt that just failed, 1-based."""
    delay_s: float
    """The sleep before the next attempt."""
    elapsed_s: float
    """Seconds since the call started (since the first failure when no deadline is set)."""
    error: ResilienceError | None
    """The classified error, or ``None`` when the result was rejected."""
    result: object = None
    """The rejected result when retrying on a result."""


class RetryBudget:
    """A token bucket shared by many :class:`Retry` objects to cap retry traffic.

    Each call deposits ``ratio`` tokens, time adds ``min_retries_per_s`` tokens
    per second, and each retry costs one token; the balance never exceeds
    ``capacity`` (default: ten seconds of ``min_retries_per_s``, at least 10).
    So, in an outage, retries stay below ``ratio`` x calls plus
    ``min_retries_per_s`` per second instead of multiplying the load. Starts
    with ``min(capacity, min_retries_per_s)`` tokens. Thread-safe; depositing
    takes no lock.
    """

    __slots__ = (
        "_calls",
        "_clock",
        "_last_count",
        "_last_refill_s",
        "_lock",
        "_tokens",
        "capacity",
        "denied",
        "deposit",
        "min_retries_per_s",
        "ratio",
        "withdrawn",
    )

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_retries_per_s: float = 10.0,
        capacity: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if ratio < 0 or min_retries_per_s < 0:
            raise ValueError("ratio and min_retries_per_s must not be negative")
        self.ratio = ratio
        self.min_retries_per_s = min_retries_per_s
        self.capacity = capacity if capacity is not None else max(10.0, 10.0 * min_retries_per_s)
        if self.capacity < 1:
            raise ValueError(f"capacity must be at least one token, got {self.capacity}")
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = min(self.capacity, min_retries_per_s)
        self._last_refill_s = clock.monotonic()
        self._calls = itertools.count()
        self._last_count = -1
        self.withdrawn = 0
        """Retries the budget allowed."""
        self.denied = 0
        """Retries the budget refused."""
        self.deposit: Callable[[], object] = self._calls.__next__
        """Record one call (lock-free: an atomic C-level counter)."""

    def _sync(self) -> None:
        # Caller holds the lock. Each _sync consumes one counter value itself.
        count = next(self._calls)
        calls = count - self._last_count - 1
        self._last_count = count
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._last_refill_s)
        self._last_refill_s = now
        self._tokens = min(
            self.capacity,
            self._tokens + calls * self.ratio + elapsed * self.min_retries_per_s,
        )

    def try_withdraw(self) -> bool:
        """Take one retry token; ``False`` (and nothing taken) when the budget is empty."""
        with self._lock:
            self._sync()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self.withdrawn += 1
                return True
            self.denied += 1
            return False

    @property
    def available(self) -> float:
        """Tokens available now."""
        with self._lock:
            self._sync()
            return self._tokens

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio}, min_retries_per_s={self.min_retries_per_s}, "
            f"capacity={self.capacity})"
        )


class Retry:
    """A retry policy; call :meth:`call`/:meth:`acall` or use it as a decorator.

    Keyword-only configuration (defaults are the documented lookup settings:
    one attempt plus three retries after 0.1, 0.2, 0.4 s, cap 2 s):

    - ``max_attempts`` (4): total attempts, first one included.
    - ``initial_delay_s`` (0.1), ``multiplier`` (2.0), ``max_delay_s`` (2.0).
    - ``jitter`` ("none"): ``"full"`` uniform in ``[0, d]``; ``"equal"`` in
      ``[d/2, d]``; ``"decorrelated"`` uniform in ``[initial, 3 x previous]``;
      ``"proportional"`` in ``d x [1 - jitter_ratio, 1 + jitter_ratio]``.
    - ``deadline_s`` (None): total time budget of one call, sleeps included.
    - ``retry_on``: extra exception classes to retry; ``retry_if``: extra
      predicate on the original exception; ``retry_on_result``: predicate on
      the return value (true = retry).
    - ``on_retry``: hook called with a :class:`RetryAttempt` before each sleep.
    - ``budget``: a shared :class:`RetryBudget`; ``clock``; ``rng`` for jitter.
    - ``max_retry_after_s`` (None): a ``Retry-After`` longer than this gives up
      at once instead of waiting (None: always wait as asked).

    Instances are immutable in use and safe to share between threads and tasks;
    derive variants with :meth:`replace`.
    """

    __slots__ = (
        "budget",
        "clock",
        "deadline_s",
        "initial_delay_s",
        "jitter",
        "jitter_ratio",
        "max_attempts",
        "max_delay_s",
        "max_retry_after_s",
        "multiplier",
        "name",
        "on_retry",
        "retry_if",
        "retry_on",
        "retry_on_result",
        "rng",
    )

    def __init__(
        self,
        *,
        name: str = "retry",
        max_attempts: int = 4,
        initial_delay_s: float = 0.1,
        multiplier: float = 2.0,
        max_delay_s: float = 2.0,
        jitter: Jitter = "none",
        jitter_ratio: float = 0.1,
        deadline_s: float | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (),
        retry_if: Callable[[BaseException], bool] | None = None,
        retry_on_result: Callable[[Any], bool] | None = None,
        on_retry: Callable[[RetryAttempt], object] | None = None,
        budget: RetryBudget | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        max_retry_after_s: float | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if initial_delay_s < 0 or max_delay_s < 0:
            raise ValueError("initial_delay_s and max_delay_s must not be negative")
        if multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {multiplier}")
        if jitter not in _JITTERS:
            raise ValueError(f"jitter must be one of {sorted(_JITTERS)}, got {jitter!r}")
        if not 0 <= jitter_ratio <= 1:
            raise ValueError(f"jitter_ratio must be within [0, 1], got {jitter_ratio}")
        if deadline_s is not None and deadline_s <= 0:
            raise ValueError(f"deadline_s must be positive, got {deadline_s}")
        self.name = name
        self.max_attempts = max_attempts
        self.initial_delay_s = initial_delay_s
        self.multiplier = multiplier
        self.max_delay_s = max_delay_s
        self.jitter: Jitter = jitter
        self.jitter_ratio = jitter_ratio
        self.deadline_s = deadline_s
        self.retry_on: tuple[type[BaseException], ...] = (
            retry_on if isinstance(retry_on, tuple) else (retry_on,)
        )
        self.retry_if = retry_if
        self.retry_on_result = retry_on_result
        self.on_retry = on_retry
        self.budget = budget
        self.clock = clock
        self.rng = rng if rng is not None else _DEFAULT_RNG
        self.max_retry_after_s = max_retry_after_s

    def replace(self, **changes: Any) -> Retry:
        """A copy with some settings changed, e.g. ``LOOKUP_RETRY.replace(clock=clock)``."""
        config = {name: getattr(self, name) for name in self.__slots__}
        config.update(changes)
        return Retry(**config)

    def __repr__(self) -> str:
        return (
            f"Retry(name={self.name!r}, max_attempts={self.max_attempts}, "
            f"initial_delay_s={self.initial_delay_s}, multiplier={self.multiplier}, "
            f"max_delay_s={self.max_delay_s}, jitter={self.jitter!r}, "
            f"deadline_s={self.deadline_s})"
        )

    # -- explicit forms ----------------------------------------------------------------

    def attempt_timeout_s(self, started_s: float, timeout_s: float) -> float:
        """``timeout_s`` capped by what is left of ``deadline_s`` (never below 0).

        ``started_s`` is ``clock.monotonic()`` read just before the call began;
        without a deadline ``timeout_s`` is returned unchanged. An attempt bounded
        by this ends by ``started_s + deadline_s``, and no retry is made past it,
        so the whole call does.
        """
        if self.deadline_s is None:
            return timeout_s
        left = started_s + self.deadline_s - self.clock.monotonic()
        return max(0.0, min(timeout_s, left))

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` under this policy."""
        if self.budget is not None:
            self.budget.deposit()
        start = self.clock.monotonic() if self.deadline_s is not None else None
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            failure: Exception = exc
        else:
            check = self.retry_on_result
            if check is None or not check(result):
                return result
            return self._retry_sync(fn, args, kwargs, None, result, start)
        return self._retry_sync(fn, args, kwargs, failure, None, start)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` under this policy (sleeps with ``clock.sleep_async``)."""
        if self.budget is not None:
            self.budget.deposit()
        start = self.clock.monotonic() if self.deadline_s is not None else None
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            failure: Exception = exc
        else:
            check = self.retry_on_result
            if check is None or not check(result):
                return result
            return await self._retry_async(fn, args, kwargs, None, result, start)
        return await self._retry_async(fn, args, kwargs, failure, None, start)

    # -- decorator form ----------------------------------------------------------------

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (a sync or an ``async def`` function) with this policy."""
        if inspect.iscoroutinefunction(fn):
            return self._wrap_async(fn)
        return self._wrap_sync(fn)

    def _wrap_sync(self, fn: Callable[P, R]) -> Callable[P, R]:
        retry_sync = self._retry_sync
        if self.budget is None and self.deadline_s is None and self.retry_on_result is None:

            @functools.wraps(fn)
            def plain(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:
                    failure: Exception = exc
                return retry_sync(fn, args, kwargs, failure, None, None)

            return plain

        budget, clock, deadline_s = self.budget, self.clock, self.deadline_s
        check = self.retry_on_result

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            # self.call inlined: one Python frame less per call
            if budget is not None:
                budget.deposit()
            start = clock.monotonic() if deadline_s is not None else None
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                failure: Exception = exc
            else:
                if check is None or not check(result):
                    return result
                return retry_sync(fn, args, kwargs, None, result, start)
            return retry_sync(fn, args, kwargs, failure, None, start)

        return wrapper

    def _wrap_async(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        retry_async = self._retry_async
        if self.budget is None and self.deadline_s is None and self.retry_on_result is None:

            @functools.wraps(fn)
            async def plain(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    return await fn(*args, **kwargs)
                except Exception as exc:
                    failure: Exception = exc
                return await retry_async(fn, args, kwargs, failure, None, None)

            return plain

        budget, clock, deadline_s = self.budget, self.clock, self.deadline_s
        check = self.retry_on_result

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            # self.acall inlined: one coroutine less per call
            if budget is not None:
                budget.deposit()
            start = clock.monotonic() if deadline_s is not None else None
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                failure: Exception = exc
            else:
                if check is None or not check(result):
                    return result
                return await retry_async(fn, args, kwargs, None, result, start)
            return await retry_async(fn, args, kwargs, failure, None, start)

        return wrapper

    # -- slow path ---------------------------------------------------------------------

    def _retry_sync(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        failure: Exception | None,
        result: R | None,
        start: float | None,
    ) -> R:
        state = _Attempts(self, start)
        while True:
            delay = state.next_delay(failure, result)
            if delay is None:  # retrying on a result ran out: hand back the last one
                return cast(R, result)
            self.clock.sleep(delay)
            state.attempt += 1
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                failure = exc
                continue
            check = self.retry_on_result
            if check is None or not check(result):
                return result
            failure = None

    async def _retry_async(
        self,
        fn: Callable[..., Awaitable[R]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        failure: Exception | None,
        result: R | None,
        start: float | None,
    ) -> R:
        state = _Attempts(self, start)
        while True:
            delay = state.next_delay(failure, result)
            if delay is None:  # retrying on a result ran out: hand back the last one
                return cast(R, result)
            await self.clock.sleep_async(delay)
            state.attempt += 1
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                failure = exc
                continue
            check = self.retry_on_result
            if check is None or not check(result):
                return result
            failure = None


class _Attempts:
    """The per-call retry state, created only once the first attempt has failed."""

    __slots__ = ("attempt", "base_s", "policy", "previous_s", "start")

    def __init__(self, policy: Retry, start: float | None) -> None:
        self.policy = policy
        self.start = start if start is not None else policy.clock.monotonic()
        self.attempt = 1
        self.base_s = policy.initial_delay_s
        self.previous_s = policy.initial_delay_s

    def next_delay(self, failure: Exception | None, result: Any) -> float | None:
        """The sleep before the next attempt; raise or return ``None`` to give up.

        Raises the classified error when ``failure`` is not retried; returns
        ``None`` when a rejected result is not retried (the caller returns it).
        """
        policy = self.policy
        error: ResilienceError | None = None
        if failure is not None:
            error = classify(failure, clock=policy.clock)
            if not self._should_retry(failure, error):
                raise self._give_up(error, failure)
        delay = self._backoff()
        if isinstance(error, UpstreamHTTPError) and error.retry_after_s is not None:
            cap = policy.max_retry_after_s
            if cap is not None and error.retry_after_s > cap and failure is not None:
                error.context["retry_after_over_cap_s"] = cap
                raise self._give_up(error, failure)
            delay = max(delay, error.retry_after_s)
        now = policy.clock.monotonic()
        out_of_attempts = self.attempt >= policy.max_attempts
        past_deadline = policy.deadline_s is not None and (
            now + delay > self.start + policy.deadline_s
        )
        if (
            out_of_attempts
            or past_deadline
            or (policy.budget is not None and not policy.budget.try_withdraw())
        ):
            if error is not None and failure is not None:
                raise self._give_up(error, failure)
            return None
        if policy.on_retry is not None:
            policy.on_retry(
                RetryAttempt(
                    name=policy.name,
                    attempt=self.attempt,
                    delay_s=delay,
                    elapsed_s=now - self.start,
                    error=error,
                    result=result if error is None else None,
                )
            )
        self.previous_s = delay
        return delay

    def _should_retry(self, failure: Exception, error: ResilienceError) -> bool:
        if isinstance(failure, _NEVER_RETRY) or isinstance(error, _NEVER_RETRY):
            return False
        policy = self.policy
        if error.retryable:
            return True
        if policy.retry_on and isinstance(failure, policy.retry_on):
            return True
        return policy.retry_if is not None and bool(policy.retry_if(failure))

    def _give_up(self, error: ResilienceError, failure: Exception) -> ResilienceError:
        error.context["attempts"] = self.attempt
        if error is not failure:
            error.__cause__ = failure
        return error

    def _backoff(self) -> float:
        policy = self.policy
        cap = policy.max_delay_s
        base = min(cap, self.base_s)
        self.base_s = min(cap, self.base_s * policy.multiplier)
        jitter = policy.jitter
        if jitter == "none":
            delay = base
        elif jitter == "full":
            delay = policy.rng.uniform(0.0, base)
        elif jitter == "equal":
            delay = base / 2 + policy.rng.uniform(0.0, base / 2)
        elif jitter == "decorrelated":
            low = policy.initial_delay_s
            delay = policy.rng.uniform(low, max(low, self.previous_s * 3))
        else:  # proportional
            spread = policy.jitter_ratio
            delay = base * (1.0 + policy.rng.uniform(-spread, spread))
        return min(cap, max(0.0, delay))


LOOKUP_RETRY = Retry(name="lookup")
"""Lookups: 1 + 3 retries after 0.1, 0.2, 0.4 s (x2, cap 2 s), no jitter."""

HTTP_API_RETRY = Retry(
    name="http_api",
    max_attempts=4,
    initial_delay_s=1.0,
    multiplier=2.0,
    max_delay_s=4.4,
    jitter="proportional",
    jitter_ratio=0.1,
)
"""External HTTP APIs: delays 1, 2, 4 s each ±10 % (TARGETS.md lists three delays,
so this is three retries after the first attempt); Retry-After wins when larger."""

STORAGE_RETRY = Retry(name="storage", initial_delay_s=0.5, multiplier=2.0, max_delay_s=2.0)
"""Storage writes: 1 + 3 retries after 0.5, 1, 2 s."""
