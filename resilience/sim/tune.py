"""Threshold tuning: search the settings space in simulation, with gates as constraints.

:func:`tune` drives an optuna study over the :mod:`~resilience.sim.space`:

* ``search="optuna"``: multi-objective TPE (default) or NSGA-II, the
  scenarios' gates as constraints (``Trial.set_constraint``: feasible when no gate
  misses); ``"random"``: optuna's random sampler; ``"grid"`` / ``"lhs"``: the
  combinations of :func:`~resilience.sim.space.combinations`, enqueued. All
  seeded from ``seed``. TPE starts from ``STARTUP_TRIALS`` random trials and
  considers the ranges' endpoints (``consider_endpoints``). A
  list of numbers is searched by index (ordinal, :attr:`Param.ordinal`), so
  TPE models its order instead of unrelated categories.
* A configuration the sampler proposes again is not simulated again: the
  trial gets the earlier one's values, constraints or state (``reused``);
  the simulation is deterministic, so a re-run would only repeat it.
* Each trial simulates every scenario (a configuration must hold in all);
  an objective's value is the worst over the scenarios.
* Early stopping: when a scenario's ``before``/``during`` gates are decided in
  its first part (:func:`~resilience.sim.trial.prefix_plan`), that part runs
  first and a trial failing one of them there is pruned. Optuna's pruners do
  not apply to multi-objective studies; this one is exact (the prefix is the
  same run, cut short), so nothing good is pruned.
* Noise: the feasible front (and the fronts behind it, up to
  ``candidates_to_repeat`` configurations) is re-run with ``repeats - 1`` other seeds; each
  figure gets its spread, and the final front is taken on the pessimistic
  value (the worst over seeds and scenarios) among configurations that hold
  in every run.

Trials run on any :class:`concurrent.futures.Executor` (a local process pool by
default; a Dask cluster's, see :mod:`resilience.sim.cluster`), several at once.
Outcomes are told to the study in the order the trials were asked, and the
k-th trial is asked right after the (k − width)-th is told, so the sampler
sees the same history whichever run finishes first: same seed, same study,
with any number of workers (a slow trial can leave a worker idle for that).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from resilience.sim.objectives import Objective
from resilience.sim.space import Param, combinations
from resilience.sim.trial import TrialJob, TrialRun, jobs_for, prefix_plan, run_trial

__all__ = ["Candidate", "Spread", "TuneResult", "pareto_front", "tune"]

Search = Literal["grid", "random", "lhs", "optuna"]

STARTUP_TRIALS = 10
"""Random trials before TPE models the space (optuna's ``n_startup_trials``)."""
CANDIDATES_TO_REPEAT = 8
"""Feasible configurations (front first) re-run with other seeds by default."""


@dataclass(frozen=True, slots=True)
class Spread:
    """One figure over several runs: mean, lowest and highest."""

    mean: float
    low: float
    high: float
    n: int

    @staticmethod
    def of(values: Sequence[float]) -> Spread:
        return Spread(math.fsum(values) / len(values), min(values), max(values), len(values))


@dataclass
class Candidate:
    """One configuration (an optuna trial) and every run it got."""

    number: int
    params: dict[str, Any]
    runs: list[TrialRun] = field(default_factory=list)
    state: str = "running"
    """running, complete, pruned or failed."""
    pruned_by: list[str] = field(default_factory=list)

    def full_runs(self, scenario: str | None = None) -> list[TrialRun]:
        return [
            r
            for r in self.runs
            if r.until_s is None and (scenario is None or r.scenario == scenario)
        ]

    @property
    def passed(self) -> bool:
        """Every full run completed with every gate holding."""
        runs = self.full_runs()
        return self.state == "complete" and bool(runs) and all(r.passed for r in runs)

    def spread(self, index: int, scenario: str | None = None) -> Spread | None:
        """Objective ``index`` over the full runs (of one scenario, or all)."""
        values = [r.values[index] for r in self.full_runs(scenario) if len(r.values) > index]
        numbers = [float(v) for v in values if v is not None]
        return Spread.of(numbers) if numbers else None

    def pessimistic(self, objectives: Sequence[Objective]) -> list[float] | None:
        """Each objective's worst value over every full run; ``None`` if one has no data."""
        out = []
        for i, objective in enumerate(objectives):
            spread = self.spread(i)
            if spread is None:
                return None
            out.append(spread.low if objective.maximize else spread.high)
        return out


@dataclass
class TuneResult:
    """The study's candidates, the final front and what was done to find them."""

    scenarios: list[str]
    params: list[Param]
    objectives: list[Objective]
    search: str
    sampler: str
    seed: int
    candidates: list[Candidate]
    front: list[Candidate]
    """Undominated on the pessimistic values, among candidates holding in every run."""
    repeats: int
    workers: int
    wall_s: float
    cpu_s: float
    study: Any = field(default=None, repr=False)
    prefixes: dict[str, float] = field(default_factory=dict)
    """Scenario → seconds of its early-stopping prefix (absent: none)."""
    reused: int = 0
    """Proposals of a configuration already tried, answered from its earlier result."""
    real: bool = False
    """Whether the trials were real runs (a team's own service) rather than simulations."""

    @property
    def pruned(self) -> list[Candidate]:
        return [c for c in self.candidates if c.state == "pruned"]

    @property
    def feasible(self) -> list[Candidate]:
        return [c for c in self.candidates if c.passed]

    def ranked(self) -> list[Candidate]:
        """The front, best first by the objectives in command-line order (pessimistic)."""

        def key(c: Candidate) -> tuple[float, ...]:
            values = c.pessimistic(self.objectives) or []
            return tuple(o.signed(v) for o, v in zip(self.objectives, values, strict=False))

        return sorted(self.front, key=key)

    def nearest_misses(self) -> list[Candidate]:
        """Configurations that ran and missed a gate, nearest first (the largest sum of
        their gates' misses over the runs, smallest first): what to look at when
        nothing holds."""

        def miss(c: Candidate) -> float:
            return max((sum(v for *_, v in r.gates) for r in c.runs), default=math.inf)

        return sorted((c for c in self.candidates if c.runs and not c.passed), key=miss)

    def best(self, k: int) -> list[Candidate]:
        """The ``k`` best feasible configurations: the front (:meth:`ranked`), then the
        fronts behind it (non-dominated sorting of the rest), each best-first."""
        front = self.ranked()
        rest = [c for c in _layers(self.feasible, self.objectives) if c not in front]
        return [*front, *rest][: max(0, k)]


def pareto_front(
    candidates: Sequence[Candidate], objectives: Sequence[Objective]
) -> list[Candidate]:
    """Candidates no other beats on every objective (pessimistic values), in input order."""
    points = []
    for c in candidates:
        values = c.pessimistic(objectives)
        if values is not None:
            points.append((c, tuple(o.signed(v) for o, v in zip(objectives, values, strict=True))))
    return [
        c
        for c, v in points
        if not any(all(a <= b for a, b in zip(w, v, strict=True)) and w != v for _, w in points)
    ]


def _tidy(value: Any) -> Any:
    """A sampled float to 4 significant digits: the value simulated is the value pasted."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def _layers(candidates: Sequence[Candidate], objectives: Sequence[Objective]) -> list[Candidate]:
    """Candidates front by front (non-dominated sorting), each front best-first."""
    left, out = list(candidates), []
    while left:
        front = pareto_front(left, objectives)
        if not front:
            break
        out += sorted(
            front,
            key=lambda c: tuple(
                o.signed(v)
                for o, v in zip(objectives, c.pessimistic(objectives) or [], strict=False)
            ),
        )
        left = [c for c in left if c not in front]
    return out


def _sampler(search: Search, sampler: str, seed: int) -> Any:
    """Constraints reach TPE and NSGA-II through ``Trial.set_constraint`` (optuna ≥ 5)."""
    import optuna

    if search == "optuna":
        if sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
        if sampler != "tpe":
            raise ValueError(f"unknown sampler {sampler!r} (use tpe or nsga2)")
        import inspect
        import warnings

        options: dict[str, Any] = {}
        if "consider_endpoints" in inspect.signature(optuna.samplers.TPESampler).parameters:
            # The edges of a range get a kernel as wide as inner values: good settings often
            # sit there (the smallest threshold, the shortest reset timeout); without it one
            # seed of the benchmark stayed at 0.935 of the grid's hypervolume. Deprecated in
            # optuna 4.9 (a FutureWarning), to go in 6.0: then TPE's default applies.
            options["consider_endpoints"] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, n_startup_trials=STARTUP_TRIALS, **options
            )
    return optuna.samplers.RandomSampler(seed=seed)


def tune(
    scenarios: Sequence[Any],
    params: Sequence[Param],
    objectives: Sequence[Objective],
    *,
    search: Search = "optuna",
    trials: int = 30,
    seed: int = 0,
    sampler: str = "tpe",
    repeats: int = 1,
    candidates_to_repeat: int = CANDIDATES_TO_REPEAT,
    prune: bool = True,
    executor: Executor | None = None,
    width: int = 1,
    models: Any = None,
    progress: Callable[[str], None] | None = None,
    real: bool = False,
) -> TuneResult:
    """Search ``params`` for configurations that hold in every scenario; see the module doc.

    ``executor`` runs :func:`~resilience.sim.trial.run_trial` jobs (``None``:
    in this process); ``width`` trials are in flight at once. ``trials`` bounds
    the study (a grid runs every combination). ``repeats`` ≥ 2 re-runs up to
    ``candidates_to_repeat`` feasible candidates (front first) with other seeds.
    ``real``: every trial is a real run (a team's own service, which the
    simulator cannot run); no prefix pruning then, as a real prefix would be a
    second run rather than the first part of the same one.
    """
    import optuna
    from optuna.trial import TrialState

    if not objectives:
        raise ValueError("name at least one objective")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started, cpu = time.perf_counter(), 0.0
    specs = tuple((o.text, o.maximize) for o in objectives)
    plans = {s.name: prefix_plan(s) for s in scenarios} if prune and not real else {}
    prefixes = {name: p.until_s for name, p in plans.items() if p is not None}
    study = optuna.create_study(
        directions=[o.direction for o in objectives],
        sampler=_sampler(search, sampler, seed),
    )
    if search in ("grid", "lhs"):
        combos = combinations(params, sample=search, samples=trials, seed=seed)
        by_name = {p.name: p for p in params}
        for combo in combos:
            study.enqueue_trial(
                {k: by_name[k].to_search(v) for k, v in combo.items()}, skip_if_exists=False
            )
        trials = len(combos)
    distributions = {p.name: p.distribution() for p in params}
    say = progress or (lambda _message: None)

    def submit(job: TrialJob) -> Future[TrialRun]:
        if executor is None:
            done: Future[TrialRun] = Future()
            done.set_result(run_trial(job))
            return done
        return executor.submit(run_trial, job)

    candidates: dict[int, Candidate] = {}
    handles: dict[int, Any] = {}
    waiting: dict[Future[TrialRun], int] = {}
    asked = 0
    first: dict[tuple[tuple[str, str], ...], Candidate] = {}
    """Each configuration's first candidate (the one that runs)."""
    told: dict[int, tuple[Any, list[float] | None, list[tuple[str, float]]]] = {}
    """Candidate → (state, values, constraints) told to the study, for proposals again."""
    followers: dict[int, list[Any]] = {}
    """Candidate still running → optuna trials that proposed it again."""
    reused = 0
    asked_order: deque[Any] = deque()
    """Trials asked and not yet told, in the order they were asked."""
    known: dict[int, tuple[Any, list[float] | None, list[tuple[str, float]]]] = {}
    """Trial number → its outcome, told to the study when every earlier trial has been."""

    def ask() -> None:
        nonlocal asked
        trial = study.ask(distributions)
        asked_order.append(trial)
        asked += 1
        start(trial)

    def flush() -> None:
        """Tell outcomes in the order asked, asking the next trial after each: what the
        sampler has seen at the k-th ask does not depend on which run finished first."""
        while asked_order and asked_order[0].number in known:
            trial = asked_order.popleft()
            replay(trial, *known.pop(trial.number))
            if asked < trials:
                ask()

    def tell(c: Candidate, state: Any, values: list[float] | None = None) -> None:
        """Tell the study about ``c``'s trial and every later proposal of it."""
        constraints = [
            (f"{r.scenario}: {gate}", miss) for r in c.full_runs() for gate, _, _, miss in r.gates
        ]
        told[c.number] = (state, values, constraints)
        for trial in [handles.pop(c.number), *followers.pop(c.number, [])]:
            known[trial.number] = told[c.number]

    def replay(
        trial: Any, state: Any, values: list[float] | None, constraints: list[tuple[str, float]]
    ) -> None:
        if state == TrialState.COMPLETE:
            for name, miss in constraints:
                trial.set_constraint(name, miss)
            study.tell(trial, values)
        else:
            study.tell(trial, state=state)

    def start_full(c: Candidate) -> None:
        for job in jobs_for(scenarios, c.params, specs, models=models, real=real):
            waiting[submit(job)] = c.number

    def start(trial: Any) -> None:
        nonlocal reused
        values = {p.name: _tidy(p.from_search(trial.params[p.name])) for p in params}
        key = tuple(sorted((k, repr(v)) for k, v in values.items()))
        earlier = first.get(key)
        if earlier is not None:  # proposed again: the same simulation would give the same
            reused += 1
            if earlier.number in told:
                known[trial.number] = told[earlier.number]
            else:
                followers.setdefault(earlier.number, []).append(trial)
            return
        c = Candidate(trial.number, values)
        first[key] = c
        candidates[c.number], handles[c.number] = c, trial
        staged = [(s, plans[s.name]) for s in scenarios if plans.get(s.name) is not None]
        if not staged:
            start_full(c)
            return
        c.state = "prefix"
        for s, plan in staged:
            assert plan is not None
            job = TrialJob(s, dict(c.params), specs, until_s=plan.until_s, models=models)
            waiting[submit(job)] = c.number

    def finish(c: Candidate) -> None:
        runs = c.full_runs()
        values = c.pessimistic(objectives)
        if any(r.status != "completed" for r in runs) or values is None:
            c.state = "failed"
            tell(c, TrialState.FAIL)
            return
        c.state = "complete"
        tell(c, TrialState.COMPLETE, values)

    def collect(future: Future[TrialRun]) -> None:
        nonlocal cpu
        c = candidates[waiting.pop(future)]
        try:
            run = future.result()
        except Exception as exc:  # a worker lost (a cluster's KilledWorker …): the trial fails
            run = TrialRun("?", dict(c.params), -1, None, "crashed", f"{type(exc).__name__}: {exc}")
        cpu += run.cpu_s
        c.runs.append(run)
        if c.state == "prefix" and not any(f for f, n in waiting.items() if n == c.number):
            failed = [g for r in c.runs if r.until_s is not None for g in r.failed_gates]
            bad = [r for r in c.runs if r.until_s is not None and r.status != "completed"]
            if failed or bad:
                c.state, c.pruned_by = "pruned", failed or [f"{bad[0].status}: {bad[0].error}"]
                tell(c, TrialState.PRUNED)
            else:
                c.state = "running"
                start_full(c)
        elif c.state == "running" and not any(n == c.number for n in waiting.values()):
            finish(c)
        else:
            return
        done = sum(1 for x in candidates.values() if x.state not in ("running", "prefix"))
        pruned = sum(1 for x in candidates.values() if x.state == "pruned")
        again = f", {reused} proposed again" if reused else ""
        say(f"{done + reused}/{trials} trials ({pruned} pruned{again})")

    try:
        while asked < min(trials, max(1, width)):
            ask()
        flush()
        while asked_order:
            if not waiting:  # cannot happen: an untold trial runs or follows one that does
                raise RuntimeError(f"trial {asked_order[0].number} has no run and no result")
            ready, _ = wait(list(waiting), return_when=FIRST_COMPLETED)
            for future in ready:
                collect(future)
            flush()
        feasible = [c for c in candidates.values() if c.passed]
        front = pareto_front(feasible, objectives)
        if repeats > 1 and front:
            chosen = _layers(feasible, objectives)[:candidates_to_repeat]
            say(f"re-running {len(chosen)} candidate(s) with {repeats - 1} other seed(s)")
            extra: dict[Future[TrialRun], Candidate] = {}
            for c in chosen:
                for k in range(1, repeats):
                    for job in jobs_for(
                        scenarios, c.params, specs, seed_offset=k, models=models, real=real
                    ):
                        extra[submit(job)] = c
            for future, c in extra.items():
                try:
                    run = future.result()
                except Exception as exc:  # as above: this candidate no longer holds
                    error = f"{type(exc).__name__}: {exc}"
                    run = TrialRun("?", dict(c.params), -1, None, "crashed", error)
                cpu += run.cpu_s
                c.runs.append(run)
            front = pareto_front([c for c in chosen if c.passed], objectives)
    finally:
        for future in waiting:
            future.cancel()
    return TuneResult(
        scenarios=[s.name for s in scenarios],
        params=list(params),
        objectives=list(objectives),
        search=search,
        sampler=sampler if search == "optuna" else search,
        seed=seed,
        candidates=sorted(candidates.values(), key=lambda c: c.number),
        front=front,
        repeats=repeats,
        workers=width,
        wall_s=time.perf_counter() - started,
        cpu_s=cpu,
        study=study,
        prefixes=prefixes,
        reused=reused,
        real=real,
    )
