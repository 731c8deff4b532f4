"""Stateful test: the circuit breaker behaves like a small reference model.

Hypothesis drives random sequences of admissions, outcomes (success, failure,
slow, ignored), clock advances, manual resets and forced openings against a
:class:`CircuitBreaker` and a plain-Python model of its contract, for random
configurations with no window, a count window or a time window, under a
:class:`ManualClock`. After every step the state, the number of openings and
the window totals must agree; every admission or refusal (with its
``retry_after_s``) must agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from resilience.breaker import BreakerState, CircuitBreaker, CountWindow, Permit, TimeWindow
from resilience.clock import ManualClock
from resilience.errors import CircuitOpenError, InvalidInput

FAILED, SLOW = 1, 2
SLOW_S = 1.0  # slow-call duration used by every generated config


@dataclass
class Config:
    failure_threshold: int | None
    reset_timeout_s: float
    window: CountWindow | TimeWindow | None
    failure_rate_threshold: float | None
    window_failure_threshold: int | None
    slow_call_rate_threshold: float | None
    minimum_calls: int
    half_open_max_calls: int
    success_threshold: int

    def kwargs(self) -> dict[str, Any]:
        return {
            "failure_threshold": self.failure_threshold,
            "reset_timeout_s": self.reset_timeout_s,
            "window": self.window,
            "failure_rate_threshold": self.failure_rate_threshold,
            "window_failure_threshold": self.window_failure_threshold,
            "slow_call_duration_s": SLOW_S,
            "slow_call_rate_threshold": self.slow_call_rate_threshold,
            "minimum_calls": self.minimum_calls,
            "half_open_max_calls": self.half_open_max_calls,
            "success_threshold": self.success_threshold,
        }


@st.composite
def configs(draw: st.DrawFn) -> Config:
    window = draw(
        st.one_of(
            st.none(),
            st.builds(CountWindow, size=st.integers(1, 5)),
            st.builds(
                TimeWindow, seconds=st.sampled_from([2.0, 5.0, 10.0]), buckets=st.integers(1, 5)
            ),
        )
    )
    if window is None:
        rate = wfail = slow_rate = None
        failure_threshold: int | None = draw(st.integers(1, 4))
    else:
        rate = draw(st.none() | st.sampled_from([0.25, 0.5, 1.0]))
        wfail = draw(st.none() | st.integers(1, 4))
        slow_rate = draw(st.none() | st.sampled_from([0.5, 1.0]))
        if rate is None and wfail is None and slow_rate is None:
            rate = 0.5
        failure_threshold = draw(st.none() | st.integers(1, 4))
    return Config(
        failure_threshold=failure_threshold,
        reset_timeout_s=draw(st.sampled_from([0.0, 1.0, 5.0, 30.0])),
        window=window,
        failure_rate_threshold=rate,
        window_failure_threshold=wfail,
        slow_call_rate_threshold=slow_rate,
        minimum_calls=draw(st.integers(1, 5)),
        half_open_max_calls=draw(st.integers(1, 3)),
        success_threshold=draw(st.integers(1, 3)),
    )


@dataclass
class Model:
    """The contract, written as plainly as possible."""

    cfg: Config
    state: str = "closed"
    generation: int = 0
    opens: int = 0
    opened_at: float = 0.0
    consecutive: int = 0
    outcomes: list[tuple[float, int]] = field(default_factory=list)
    in_flight: int = 0
    successes: int = 0

    def enter(self, state: str, now: float) -> None:
        if state == "open":
            self.opens += 1
            self.opened_at = now
        self.state = state
        self.generation += 1
        self.consecutive = self.in_flight = self.successes = 0
        self.outcomes = []

    def refresh(self, now: float) -> None:
        if self.state == "open" and now >= self.opened_at + self.cfg.reset_timeout_s:
            self.enter("half_open", now)

    def admit(self, now: float) -> int | float:
        """The permit (an int), or the refusal's retry_after_s (a float)."""
        if self.state == "open":
            retry_at = self.opened_at + self.cfg.reset_timeout_s
            if now < retry_at:
                return float(retry_at - now)
            self.enter("half_open", now)
        if self.state == "half_open":
            if self.in_flight >= self.cfg.half_open_max_calls:
                return 0.0
            self.in_flight += 1
        return self.generation

    def totals(self, now: float) -> tuple[int, int, int]:
        window = self.cfg.window
        if window is None:
            return (0, 0, 0)
        if isinstance(window, CountWindow):
            kept = self.outcomes[-window.size :]
        else:
            bucket_s = window.seconds / window.buckets
            epoch = math.floor(now / bucket_s)
            kept = [
                o for o in self.outcomes if math.floor(o[0] / bucket_s) > epoch - window.buckets
            ]
        return (
            len(kept),
            sum(1 for _, f in kept if f & FAILED),
            sum(1 for _, f in kept if f & SLOW),
        )

    def finish(self, permit: int, flags: int | None, now: float) -> None:
        """``flags`` None means an ignored outcome (e.g. invalid input)."""
        if permit != self.generation:
            return
        if flags is None:
            if self.state == "half_open":
                self.in_flight -= 1
            return
        cfg = self.cfg
        if self.state == "half_open":
            self.in_flight -= 1
            if flags & FAILED:
                self.enter("open", now)
            else:
                self.successes += 1
                if self.successes >= cfg.success_threshold:
                    self.enter("closed", now)
            return
        if self.state != "closed":
            return
        if flags & FAILED:
            self.consecutive += 1
            if cfg.failure_threshold is not None and self.consecutive >= cfg.failure_threshold:
                self.enter("open", now)
                return
        else:
            self.consecutive = 0
        if cfg.window is None:
            return
        self.outcomes.append((now, flags))
        if not flags:
            return
        calls, failures, slow = self.totals(now)
        by_count = (
            cfg.window_failure_threshold is not None and failures >= cfg.window_failure_threshold
        )
        by_rate = cfg.failure_rate_threshold is not None and (
            failures >= calls * cfg.failure_rate_threshold
        )
        by_slow = cfg.slow_call_rate_threshold is not None and (
            slow >= calls * cfg.slow_call_rate_threshold
        )
        if by_count or (calls >= cfg.minimum_calls and (by_rate or by_slow)):
            self.enter("open", now)


OUTCOMES = st.sampled_from(["ok", "fail", "slow_ok", "slow_fail", "ignored"])


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(100.0)
        self.permits: list[tuple[Permit, int]] = []  # (real permit, model permit)

    @initialize(cfg=configs())
    def build(self, cfg: Config) -> None:
        self.model = Model(cfg)
        self.breaker = CircuitBreaker("model", clock=self.clock, **cfg.kwargs())

    @rule()
    def admit(self) -> None:
        now = self.clock.monotonic()
        expected = self.model.admit(now)
        try:
            permit = self.breaker.before_call()
        except CircuitOpenError as exc:
            refusal: CircuitOpenError | None = exc
        else:
            refusal = None
        if refusal is not None:
            assert isinstance(expected, float), f"refused, model admitted ({expected})"
            assert refusal.retry_after_s == pytest.approx(expected)
        else:
            assert isinstance(expected, int), f"admitted, model refused ({expected})"
            self.permits.append((permit, expected))

    @precondition(lambda self: bool(self.permits))
    @rule(index=st.integers(0, 100), outcome=OUTCOMES)
    def finish(self, index: int, outcome: str) -> None:
        permit, model_permit = self.permits.pop(index % len(self.permits))
        duration = SLOW_S if outcome.startswith("slow") else 0.0
        flags = {"ok": 0, "fail": FAILED, "slow_ok": SLOW, "slow_fail": FAILED | SLOW}.get(outcome)
        self.model.finish(model_permit, flags, self.clock.monotonic())
        if outcome == "ignored":
            self.breaker.on_failure(permit, InvalidInput("bad"), duration)
        elif outcome.endswith("fail"):
            self.breaker.on_failure(permit, RuntimeError("boom"), duration)
        else:
            self.breaker.on_success(permit, duration)

    @rule(outcome=st.sampled_from(["ok", "ok", "ok", "fail", "slow_ok"]))
    def call(self, outcome: str) -> None:
        """Admit and finish at once: fills windows faster than admit + finish."""
        held = len(self.permits)
        self.admit()
        if len(self.permits) > held:
            self.finish(held, outcome)

    @rule(seconds=st.sampled_from([0.1, 0.5, 1.0, 2.5, 5.0, 31.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def reset(self) -> None:
        self.breaker.reset()
        self.model.enter("closed", self.clock.monotonic())

    @rule()
    def force_open(self) -> None:
        self.breaker.force_open()
        self.model.enter("open", self.clock.monotonic())

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "model"):
            return
        now = self.clock.monotonic()
        self.model.refresh(now)
        assert self.breaker.state == BreakerState(self.model.state)
        assert self.breaker.opens == self.model.opens
        assert self.breaker.window_totals() == self.model.totals(now)
        log = self.breaker.transitions
        if log:
            assert log[-1].to_state == self.breaker.state


BreakerMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBreakerAgainstModel = BreakerMachine.TestCase
