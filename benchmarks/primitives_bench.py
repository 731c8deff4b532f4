"""Per-call overhead of the resilience primitives next to their peers, in one process.

Run:  python benchmarks/primitives_bench.py [--markdown docs/primitives-benchmark.md]

Each case times every contender with timeit-style loops (auto-sized to about
``--target-s`` seconds per measurement), *interleaved* over ``--rounds``
rounds so that noise from other processes hits all contenders alike, and keeps
each contender's fastest round. Async contenders run the same loop inside one
coroutine on a fresh event loop. Floors (a bare call, a dict get, a dict set)
show the cost of the loop itself; they take no part in the ratios.

Ratios are ``ours / fastest peer`` in the same case; the targets come from the
foundation issue:

- cache hit ``get``          <= 0.50 x cachetools ``TTLCache[key]``
- evicting ``set``           <= 0.25 x cachetools ``TTLCache[key] = value``
- breaker success call       <= 1.00 x the fastest peer (ours thread-safe, sliding window)
- breaker rejection (open)   <= 1.00 x the fastest peer
- retry success, 1st attempt <= 0.25 x the fastest peer
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import platform
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiobreaker  # type: ignore[import-untyped]
import backoff
import cachetools
import circuitbreaker  # type: ignore[import-untyped]
import purgatory
import pybreaker
import stamina
import tenacity

from resilience.breaker import CircuitBreaker, CountWindow
from resilience.cache import LookupCache
from resilience.retry import Retry

Runner = Callable[[int], float]  # n -> seconds for n calls


@dataclass
class Contender:
    name: str
    kind: str  # "ours", "peer" or "floor"
    run: Runner
    number: int = 0
    best_ns: float = float("inf")


@dataclass
class Case:
    title: str
    target: float | None  # max ours / fastest peer
    contenders: list[Contender] = field(default_factory=list)

    def add(self, name: str, kind: str, run: Runner) -> None:
        self.contenders.append(Contender(name, kind, run))


def stmt_runner(stmt: str, setup: str = "pass", **env: Any) -> Runner:
    timer = timeit.Timer(stmt, setup, globals=env)
    return timer.timeit


def async_runner(make_call: Callable[[], Any]) -> Runner:
    """``make_call()`` returns a coroutine; the loop awaits it n times."""

    def run(n: int) -> float:
        async def loop() -> float:
            start = time.perf_counter()
            for _ in range(n):
                await make_call()
            return time.perf_counter() - start

        return asyncio.run(loop())

    return run


def calibrate(c: Contender, target_s: float) -> None:
    n = 100
    while True:
        elapsed = c.run(n)
        if elapsed >= target_s / 4 or n >= 5_000_000:
            c.number = max(100, int(n * target_s / max(elapsed, 1e-9)))
            return
        n *= 4


def measure(case: Case, rounds: int, target_s: float) -> None:
    for c in case.contenders:
        calibrate(c, target_s)
    for _ in range(rounds):
        for c in case.contenders:
            c.best_ns = min(c.best_ns, c.run(c.number) / c.number * 1e9)


# -- the cases -----------------------------------------------------------------------------


def f() -> int:
    return 1


async def af() -> int:
    return 1


def cache_hit() -> Case:
    case = Case("cache hit get", 0.50)
    keys = [f"svc-{i}" for i in range(100)]
    d = dict.fromkeys(keys, "v")
    tc: cachetools.TTLCache[str, str] = cachetools.TTLCache(maxsize=100, ttl=1800)
    ours: LookupCache[str, str] = LookupCache(max_size=100, ttl_s=1800.0)
    for k in keys:
        tc[k] = "v"
        ours.set(k, "v")
    key = keys[50]
    case.add("dict.get (floor)", "floor", stmt_runner("d.get(key)", d=d, key=key))
    case.add("cachetools TTLCache[key]", "peer", stmt_runner("tc[key]", tc=tc, key=key))
    case.add("resilience LookupCache.get", "ours", stmt_runner("c.get(key)", c=ours, key=key))
    return case


def cache_evicting_set() -> Case:
    case = Case("evicting set (full cache)", 0.25)
    keys = [f"new-{i}" for i in range(200_000)]

    def loop_over(stmt: str, target: Any) -> Runner:
        # each call stores a key the full 100-entry cache does not hold, so it evicts
        def run(n: int) -> float:
            ks = (keys * (n // len(keys) + 1))[:n]
            t = timeit.Timer(f"for k in ks: {stmt}", globals={"ks": ks, "c": target})
            return t.timeit(1)

        return run

    d: dict[str, int] = {}
    tc: cachetools.TTLCache[str, int] = cachetools.TTLCache(maxsize=100, ttl=1800)
    ours: LookupCache[str, int] = LookupCache(max_size=100, ttl_s=1800.0)
    for i in range(100):
        tc[f"seed-{i}"] = i
        ours.set(f"seed-{i}", i)
    case.add("dict[key] = v (floor)", "floor", loop_over("c[k] = 1", d))
    case.add("cachetools TTLCache[key] = v", "peer", loop_over("c[k] = 1", tc))
    case.add("resilience LookupCache.set", "ours", loop_over("c.set(k, 1)", ours))
    return case


def breaker_success() -> Case:
    case = Case("breaker success call", 1.00)
    pb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    cb = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=60)
    cbf = cb(f)
    pf = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
    pgf = pf(circuit="bench-ok")(f)
    ours = CircuitBreaker("bench-ok", window=CountWindow(100), failure_rate_threshold=0.5)
    case.add("bare call f() (floor)", "floor", stmt_runner("f()", f=f))
    case.add("pybreaker .call(f)", "peer", stmt_runner("pb.call(f)", pb=pb, f=f))
    case.add("circuitbreaker @decorated", "peer", stmt_runner("g()", g=cbf))
    case.add("purgatory @decorated", "peer", stmt_runner("g()", g=pgf))
    case.add(
        "resilience .call(f) [lock + CountWindow(100)]",
        "ours",
        stmt_runner("b.call(f)", b=ours, f=f),
    )
    return case


def _boom() -> None:
    raise RuntimeError("down")


def breaker_rejection() -> Case:
    case = Case("breaker rejection (open)", 1.00)
    pb = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=6000)
    cb = circuitbreaker.CircuitBreaker(failure_threshold=1, recovery_timeout=6000)
    pf = purgatory.SyncCircuitBreakerFactory(default_threshold=1, default_ttl=6000)
    ours = CircuitBreaker(
        "bench-open", failure_threshold=1, window=CountWindow(100), failure_rate_threshold=0.5
    )
    for trip in (lambda: pb.call(_boom), cb(_boom), pf(circuit="bench-open")(_boom)):
        with contextlib.suppress(Exception):
            trip()
    ours.force_open()
    guarded = "try:\n    {call}\nexcept Exception:\n    pass"
    case.add(
        "raise + catch (floor)", "floor", stmt_runner(guarded.format(call="boom()"), boom=_boom)
    )
    case.add(
        "pybreaker .call(f)", "peer", stmt_runner(guarded.format(call="pb.call(f)"), pb=pb, f=f)
    )
    case.add("circuitbreaker @decorated", "peer", stmt_runner(guarded.format(call="g()"), g=cb(f)))
    case.add(
        "purgatory @decorated",
        "peer",
        stmt_runner(guarded.format(call="g()"), g=pf(circuit="bench-open")(f)),
    )
    case.add(
        "resilience .call(f)", "ours", stmt_runner(guarded.format(call="b.call(f)"), b=ours, f=f)
    )
    return case


def retry_first_success() -> Case:
    case = Case("retry success, 1st attempt", 0.25)
    ten = tenacity.retry(
        stop=tenacity.stop_after_attempt(4),
        wait=tenacity.wait_exponential(multiplier=0.1, max=2),
        reraise=True,
    )(f)
    sta = stamina.retry(on=Exception, attempts=4, wait_initial=0.1, wait_max=2.0)(f)
    bac = backoff.on_exception(backoff.expo, Exception, max_tries=4)(f)
    ours = Retry()
    case.add("bare call f() (floor)", "floor", stmt_runner("f()", f=f))
    case.add("tenacity @retry", "peer", stmt_runner("g()", g=ten))
    case.add("stamina @retry", "peer", stmt_runner("g()", g=sta))
    case.add("backoff @on_exception", "peer", stmt_runner("g()", g=bac))
    case.add("resilience Retry().call(f)", "ours", stmt_runner("r.call(f)", r=ours, f=f))
    return case


def async_breaker_success() -> Case:
    case = Case("async breaker success call", 1.00)
    ab = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=dt.timedelta(seconds=60))
    pf = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
    pga = pf(circuit="bench-async")(af)
    ours = CircuitBreaker("bench-async", window=CountWindow(100), failure_rate_threshold=0.5)
    case.add("await af() (floor)", "floor", async_runner(af))
    case.add("aiobreaker .call_async(af)", "peer", async_runner(lambda: ab.call_async(af)))
    case.add("purgatory async @decorated", "peer", async_runner(pga))
    case.add("resilience .acall(af)", "ours", async_runner(lambda: ours.acall(af)))
    return case


def async_retry_first_success() -> Case:
    case = Case("async retry success, 1st attempt", 0.25)
    ten = tenacity.retry(stop=tenacity.stop_after_attempt(4), reraise=True)(af)
    sta = stamina.retry(on=Exception, attempts=4)(af)
    bac = backoff.on_exception(backoff.expo, Exception, max_tries=4)(af)
    ours = Retry()
    case.add("await af() (floor)", "floor", async_runner(af))
    case.add("tenacity @retry", "peer", async_runner(ten))
    case.add("stamina @retry", "peer", async_runner(sta))
    case.add("backoff @on_exception", "peer", async_runner(bac))
    case.add("resilience Retry().acall(af)", "ours", async_runner(lambda: ours.acall(af)))
    return case


CASES = [
    cache_hit,
    cache_evicting_set,
    breaker_success,
    breaker_rejection,
    retry_first_success,
    async_breaker_success,
    async_retry_first_success,
]


# -- report ----------------------------------------------------------------------------


def verdicts(case: Case) -> tuple[float | None, str]:
    peers = [c.best_ns for c in case.contenders if c.kind == "peer"]
    ours = [c.best_ns for c in case.contenders if c.kind == "ours"]
    if not peers or not ours:
        return None, "-"
    ratio = ours[0] / min(peers)
    if case.target is None:
        return ratio, "-"
    return ratio, "PASS" if ratio <= case.target else "MISS"


def table(cases: list[Case]) -> str:
    lines = [
        "| case | implementation | ns/call | × fastest peer | target | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    for case in cases:
        fastest = min((c.best_ns for c in case.contenders if c.kind == "peer"), default=None)
        verdict = verdicts(case)[1]
        for c in case.contenders:
            rel = f"{c.best_ns / fastest:.2f}" if fastest else "-"
            target = f"≤ {case.target:.2f}" if c.kind == "ours" and case.target else ""
            mark = verdict if c.kind == "ours" else ""
            name = f"**{c.name}**" if c.kind == "ours" else c.name
            lines.append(
                f"| {case.title} | {name} | {c.best_ns:,.0f} | {rel} | {target} | {mark} |"
            )
    return "\n".join(lines)


NOTES = """\
## Reading the table

- Every number is the best of many short, interleaved measurements in one
  process, so that load from other processes hits all contenders alike. On a
  busy shared machine single numbers still move by 5-10 % between runs;
  ratios move less.
- **Cache hit** sits right at its target (0.48-0.50 over repeated runs). A hit
  is a closure doing one `OrderedDict.get`, one `time.monotonic()`, one
  comparison, one `move_to_end` (exact LRU) and one counter increment, with
  no lock; about 150 ns of it is the CPython floor of those five operations
  plus the call. cachetools does the same work through three Python-level
  calls (`__getitem__`, its timer, `Cache.__getitem__`).
- **Evicting set**: cachetools keeps a linked list of expiry order besides the
  LRU order; we keep the expiry inside the entry tuple and sweep lazily.
- **Breaker success**: ours is thread-safe (a lock around the outcome) and
  keeps a 100-call sliding window; `circuitbreaker` (the fastest peer) has
  neither. Successes in a count window are recorded as a bare increment and
  folded into the ring when the next failure or read needs them.
- **Breaker rejection**: the open state is checked without the lock, and
  `CircuitOpenError` formats its message and builds its correlation id only
  when someone reads them.
- **Retry** (`resilience.retry.Retry`): a first-attempt success is one
  `try` around the call; the retry machinery is built only after a failure.
- Async rows await a trivial coroutine in a loop on a fresh event loop; the
  targets of the sync rows are applied to them as well.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds (best kept)")
    parser.add_argument("--target-s", type=float, default=0.003, help="seconds per measurement")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)

    cases = [make() for make in CASES]
    for case in cases:
        measure(case, args.rounds, args.target_s)
        print(f"measured: {case.title}", file=sys.stderr)
    text = table(cases)
    header = (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
        f"best of {args.rounds} interleaved rounds, ~{args.target_s:g} s each."
    )
    print(header)
    print(text)
    summary = [f"{case.title}: {verdicts(case)[1]}" for case in cases if case.target]
    print("\n" + "; ".join(summary))
    if args.markdown:
        args.markdown.write_text(
            "# Primitives benchmark\n\n"
            "Generated by `python benchmarks/primitives_bench.py --markdown "
            f"{args.markdown}`.\n\n{header}\n\n{text}\n\n{NOTES}"
        )
    return 0 if all(verdicts(c)[1] != "MISS" for c in cases) else 1


if __name__ == "__main__":
    raise SystemExit(main())
