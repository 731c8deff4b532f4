"""A virtual-time asyncio event loop.

:class:`VirtualEventLoop` is asyncio's selector loop with two changes:

* ``time()`` is a virtual clock that starts at ``start_s`` (default 0.0);
* when no callback is ready it does not block: its selector jumps the clock
  straight to the next scheduled timer.

So unmodified asyncio code (``asyncio.sleep``, ``asyncio.wait_for``,
``asyncio.timeout``, futures, tasks, locks, queues) runs on it and a simulated
hour passes in as much real time as its callbacks cost. Nothing performs real
I/O: sockets, subprocesses and executors are not supported (their callbacks
would never fire), and a run in which every task waits on something that no
timer will ever resolve ends with :class:`SimulationDeadlock` instead of
hanging.

Ordering is deterministic: callbacks that are ready run first-in first-out,
and timers due at the same virtual instant fire in the order they were
scheduled (``(when, sequence)``), not in heap order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import selectors

# asyncio's bookkeeping of the running task (C-accelerated, private but stable
# since 3.7): start_task runs a task's first step from inside another's.
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextvars import Context, copy_context
from typing import Any, TypeVar, TypeVarTuple

__all__ = ["SimulationDeadlock", "VirtualEventLoop", "run_virtual"]

_current_task = asyncio.current_task

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


class SimulationDeadlock(RuntimeError):
    """Every task waits and no timer is scheduled: virtual time cannot move."""


class _Handle(asyncio.Handle):
    """A ``Handle`` without the debug bookkeeping (created once per callback)."""

    __slots__ = ()

    def __init__(
        self,
        callback: Callable[..., object],
        args: Sequence[Any],
        loop: asyncio.AbstractEventLoop,
        context: Context | None,
    ) -> None:
        self._context = copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None


class _TimerHandle(asyncio.TimerHandle):
    """A ``TimerHandle`` without the debug bookkeeping."""

    __slots__ = ()

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: Sequence[Any],
        loop: asyncio.AbstractEventLoop,
        context: Context | None,
    ) -> None:
        self._context = copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._when = when
        self._scheduled = False


class _VirtualSelector(selectors.BaseSelector):
    """A selector with no I/O: ``select(timeout)`` advances virtual time."""

    def __init__(self) -> None:
        self._keys: dict[int, selectors.SelectorKey] = {}
        self.loop: VirtualEventLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return self._keys.pop(fd)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        assert loop is not None
        if timeout is None:
            raise SimulationDeadlock(
                "simulation deadlock: every task is waiting and no timer is scheduled "
                f"(virtual time {loop.time():.6f} s)"
            )
        if timeout > 0:
            loop._jump(timeout)
        return []

    def close(self) -> None:
        self._keys.clear()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._keys


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time (seconds, starting at ``start_s``)."""

    def __init__(self, *, start_s: float = 0.0) -> None:
        selector = _VirtualSelector()
        self._now = float(start_s)
        self._timer_seq = itertools.count()
        super().__init__(selector)
        selector.loop = self
        # Timers due within this much of "now" fire now; virtual time is exact.
        self._clock_resolution = 1e-9
        self._eager_step: Any = None  # set by start_task while the task is being made

    def time(self) -> float:
        """The virtual monotonic time in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` from inside a callback.

        Models CPU time spent synchronously (a blocking ``sleep``); timers that
        fall due meanwhile fire on the next iteration.
        """
        if seconds < 0:
            raise ValueError(f"cannot move virtual time backwards (advance by {seconds})")
        self._now += seconds

    def tick(self, seconds: float) -> float:
        """Advance by ``seconds`` (≥ 0, unchecked) and return the new time: a costed clock read."""
        self._now += seconds
        return self._now

    def try_advance_to(self, when: float) -> bool:
        """Let the caller run now what it would otherwise schedule at ``when``.

        True when nothing else would run first — no ready callback, no live
        timer due at or before ``when`` (within the clock resolution), the loop
        not stopping — after moving virtual time to ``when`` (never backwards).
        The caller then runs its callback inline; the order of events is the
        one ``call_at(when, callback)`` would give, without a timer (the
        simulator's dispatcher issues most arrivals this way). False: nothing
        changed, schedule the callback as usual.
        """
        me: Any = self  # asyncio's private state is untyped
        if me._ready or me._stopping:
            return False
        scheduled: list[tuple[float, int, Any]] = me._scheduled
        while scheduled and scheduled[0][2]._cancelled:  # as _run_once would drop them
            me._timer_cancelled_count -= 1
            heapq.heappop(scheduled)[2]._scheduled = False
        if scheduled and scheduled[0][0] <= when + self._clock_resolution:
            return False
        if when > self._now:
            self._now = when
        return True

    def start_task(self, coro: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        """A task whose first step runs now, inside this call (an *eager* task).

        What Python 3.12's ``eager_start`` does, on every supported version: a
        real :class:`asyncio.Task` (``current_task()``, ``asyncio.timeout``,
        cancellation all work), but the step its constructor would schedule
        runs immediately, so a coroutine that never waits finishes before this
        returns and costs no loop iteration. The simulator starts every
        operation this way.
        """
        self._eager_step = True
        try:
            task = asyncio.Task(coro, loop=self)
        finally:
            step, self._eager_step = self._eager_step, None
        if step is True:  # pragma: no cover - the Task constructor always schedules its step
            raise RuntimeError("asyncio.Task did not schedule its first step")
        callback, context = step
        # Started from inside another task's step: step out of it for the new
        # task's first step (asyncio allows one current task per loop), as
        # 3.12's eager tasks do.
        outer = _current_task(self)
        if outer is None:
            context.run(callback)
            return task
        _leave_task(self, outer)
        try:
            context.run(callback)
        finally:
            _enter_task(self, outer)
        return task

    def _jump(self, timeout: float) -> None:
        target = self._now + timeout
        scheduled = self._scheduled  # type: ignore[attr-defined]
        if scheduled:
            head = scheduled[0]._when
            # Land exactly on the timer so float rounding never leaves it pending.
            if abs(head - target) < 1e-6:
                target = max(target, head)
        self._now = target

    def call_at(
        self,
        when: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        me: Any = self  # asyncio's private state is untyped
        if me._closed:
            raise RuntimeError("Event loop is closed")
        timer: Any = _TimerHandle(when, callback, args, self, context)
        # The heap holds (when, sequence, handle): simultaneous timers fire FIFO,
        # and tuple comparison stays in C.
        heapq.heappush(me._scheduled, (when, next(self._timer_seq), timer))
        timer._scheduled = True
        return timer  # type: ignore[no-any-return]

    def call_soon(
        self,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.Handle:
        me: Any = self
        if me._closed:
            raise RuntimeError("Event loop is closed")
        if self._eager_step is True and context is not None:
            # The first step of start_task's task (Task.__step, which never
            # raises): start_task runs it; the Task ignores the handle.
            self._eager_step = (callback, context)
            return None  # type: ignore[return-value]
        handle = _Handle(callback, args, self, context)
        me._ready.append(handle)
        return handle

    def _run_once(self) -> None:
        """Run iterations until ``stop()``: jump to the next timer when idle.

        Replaces ``BaseEventLoop._run_once`` (which ``run_forever`` calls in a
        loop, stopping when ``_stopping`` is set) with a lean version that
        keeps iterating itself: no selector poll (there is no I/O), no debug
        timing. The per-iteration cost is most of the simulator's overhead.
        """
        me: Any = self  # asyncio's private state is untyped
        scheduled: list[tuple[float, int, Any]] = me._scheduled
        ready = me._ready
        heappop = heapq.heappop
        resolution = self._clock_resolution
        while True:
            count = len(scheduled)
            if count > 256 and me._timer_cancelled_count * 2 > count:
                # Mostly cancelled timers (finished wait_for calls): rebuild the heap.
                live = []
                for entry in scheduled:
                    if entry[2]._cancelled:
                        entry[2]._scheduled = False
                    else:
                        live.append(entry)
                heapq.heapify(live)
                scheduled[:] = live
                me._timer_cancelled_count = 0
            else:
                while scheduled and scheduled[0][2]._cancelled:
                    me._timer_cancelled_count -= 1
                    heappop(scheduled)[2]._scheduled = False
            if not ready:
                if me._stopping:
                    return
                if not scheduled:
                    raise SimulationDeadlock(
                        "simulation deadlock: every task is waiting and no timer is "
                        f"scheduled (virtual time {self._now:.6f} s)"
                    )
                when = scheduled[0][0]
                if when > self._now:
                    self._now = when
            due = self._now + resolution
            while scheduled and scheduled[0][0] <= due:
                handle = heappop(scheduled)[2]
                handle._scheduled = False
                ready.append(handle)
            for _ in range(len(ready)):
                handle = ready.popleft()
                if handle._cancelled:
                    continue
                try:  # Handle._run, inlined: one frame less per callback
                    handle._context.run(handle._callback, *handle._args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._report_callback_error(handle, exc)
            if me._stopping:
                return

    def _report_callback_error(self, handle: asyncio.Handle, exc: BaseException) -> None:
        """What ``Handle._run`` does when a callback raises: tell the exception handler."""
        me: Any = handle
        self.call_exception_handler(
            {
                "message": f"Exception in callback {me._callback!r}",
                "exception": exc,
                "handle": handle,
            }
        )

    def run_in_executor(
        self, executor: Any, func: Callable[[*_Ts], _T], *args: *_Ts
    ) -> asyncio.Future[_T]:
        raise NotImplementedError("a virtual-time loop cannot run work in real threads")


def run_virtual(main: Coroutine[Any, Any, _T], *, start_s: float = 0.0) -> _T:
    """Run ``main`` to completion on a fresh :class:`VirtualEventLoop`.

    Like :func:`asyncio.run`: remaining tasks are cancelled and the loop is
    closed afterwards.
    """
    with asyncio.Runner(loop_factory=lambda: VirtualEventLoop(start_s=start_s)) as runner:
        return runner.run(main)
