"""Decomposition for coupled instances: bound, restrict, improve, always keeping a plan.

:func:`decompose` runs, within one deadline:

1. the greedy heuristic: a feasible plan from the first second;
2. the transport LP (:mod:`solvers.bounds`): a bound, capacity prices ``lambda[z,t]``
   (its capacity duals) and the (zone, slot)s worth considering;
3. a Lagrangian bound (:func:`dp_lagrangian`): capacity priced at ``lambda``, the full
   model splits into one single-job problem per job; ``sum_j LB_j(c + lambda) - sum
   lambda C`` is a lower bound on the MILP for any ``lambda >= 0`` whatever lower bound
   ``LB_j`` each sub-problem proves (here its exact optimum, by the DP), improved by
   subgradient steps.  The sub-problems' plans ("priced plans") seed an insertion;
4. LP-guided restriction: the full MILP on the marked keys only (absent keys are
   x = 0, so every plan it finds is feasible for the full model), warm-started;
5. large-neighbourhood search: free a few jobs that compete for capacity, fix the
   rest (their GPUs leave the capacity), re-solve the freed jobs' restricted MILP,
   keep the result when it is cheaper; until the deadline.

Plans are compared on the model objective (GPU-hours run, checkpoint moves charged
where the model makes them: :func:`~solvers.schedule.objective`), the quantity the
bounds bound.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from greenepoch.solvers import bounds, dp, fastbuild
from greenepoch.solvers.backends import run_highs
from greenepoch.solvers.heuristics import greedy
from greenepoch.solvers.problem import PlanningProblem
from greenepoch.solvers.schedule import Schedule, objective, trim_excess

NEIGHBOURS = 2  # slots either side of a marked slot kept in the restriction
CHEAP_ZONES = 3  # per job, the zones cheapest on average over its window are kept
LNS_JOBS = 3  # jobs freed per LNS move after the first sweep (one job at a time)
FULL_KEYS_JOBS = 3  # sub-problems of at most this many jobs keep all their keys
LNS_SECONDS = 3.0  # time box of one LNS move
JOINT_SECONDS = 1.0  # ... of one joint re-plan of all-DP jobs (all their keys) ...
JOINT_MAX_KEYS = 8_000  # ... tried only when the freed jobs have at most this many keys
MIP_GAP = 1e-3  # sub-MILPs
SUBGRADIENT_STEP = 0.1  # first Polyak step factor of the Lagrangian steps ...
SUBGRADIENT_DECAY = 0.95  # ... and its decay per step
TRANSPORT_MIN_SECONDS = 15.0  # shorter limits skip the transport LP on problems of more
TRANSPORT_QUICK_SIZE = 200_000  # than this many (job, zone, slot)s: its build alone takes ~1 s


@dataclass
class Progress:
    """The incumbent and bound as they evolve; ``events`` are (seconds, label, objective,
    bound) for reporting.  ``report``, if set, gets a one-line note at most every
    ``REPORT_EVERY`` seconds."""

    schedule: Schedule | None
    objective: float | None
    bound: float | None
    events: list[tuple[float, str, float | None, float | None]]
    began: float
    report: Callable[[str], None] | None = None
    reported: float = -1e9

    def note(self, label: str) -> None:
        now = time.perf_counter() - self.began
        self.events.append((now, label, self.objective, self.bound))
        if self.report is not None and now - self.reported >= REPORT_EVERY:
            self.reported = now
            self.report(progress_line(now, self.objective, self.bound, label))

    def offer_bound(self, value: float | None) -> None:
        if value is not None and (self.bound is None or value > self.bound):
            self.bound = value


REPORT_EVERY = 1.0  # seconds between progress notes


def progress_line(seconds: float, objective: float | None, bound: float | None,
                  label: str) -> str:
    """``  12.3 s  plan 5,472.7  bound 5,359.1  gap 2.08 %  (label)``."""
    plan = "-" if objective is None else f"{objective:,.1f}"
    low = "-" if bound is None else f"{bound:,.1f}"
    gap = ""
    if objective is not None and bound is not None and objective > 0:
        gap = f"  gap {100 * max(0.0, objective - bound) / objective:.2f} %"
    return f"{seconds:6.1f} s  plan {plan}  bound {low}{gap}  ({label})"


def _marks_from(fm: fastbuild.FastModel, values: np.ndarray, shape: tuple[int, ...],
                jobs: np.ndarray | None = None) -> np.ndarray:
    """[job, zone, slot] bool: keys whose x (or n) is positive in ``values``."""
    marks = np.zeros(shape, bool)
    pos = values[: fm.n_x] > 1e-6
    J = fm.J if jobs is None else jobs[fm.J]
    marks[J[pos], fm.Z[pos], fm.T[pos]] = True
    return marks


def _widen(marks: np.ndarray, problem: PlanningProblem) -> np.ndarray:
    """Add NEIGHBOURS slots either side and, per job, its CHEAP_ZONES cheapest zones'
    marked slots (so a run may move to a nearby clean zone)."""
    out = marks.copy()
    for d in range(1, NEIGHBOURS + 1):
        out[:, :, d:] |= marks[:, :, :-d]
        out[:, :, :-d] |= marks[:, :, d:]
    any_zone: np.ndarray = np.asarray(marks.any(axis=1))
    for j, job in enumerate(problem.jobs):
        window = slice(job.first, job.last + 1)
        mean = [(float(problem.cost_per_gpu_h(job, z)[window].mean()), z) for z in job.zones]
        for _, z in sorted(mean)[:CHEAP_ZONES]:
            out[j, z] |= any_zone[j]
    return out


def _sub_problem(problem: PlanningProblem, S: list[int], incumbent: Schedule
                 ) -> tuple[PlanningProblem, Schedule]:
    """Jobs ``S`` alone, with the capacity the other jobs leave, and their incumbent."""
    others = np.ones(len(problem.jobs), bool)
    others[S] = False
    used = incumbent.gpus[others].sum(axis=0)
    sub = dataclasses.replace(problem, jobs=tuple(problem.jobs[j] for j in S),
                              capacity=problem.capacity - used)
    return sub, Schedule(incumbent.gpus[S].copy(), incumbent.run[S].copy())


#: Matrix nonzeros HiGHS gets through per second before it first checks its clock
#: (presolve, the root LP): a one-job MILP of 87,672 elastic slots (2.4 M nonzeros)
#: given 4.1 s and 2.4 s took 5.6 s and 4.9 s here, so a larger model than this allows
#: for the time left is not started (benchmarks/bench_limits.py).
MILP_NNZ_PER_SECOND = 2.5e5


def solve_restricted(problem: PlanningProblem, incumbent: Schedule, keep: np.ndarray | None,
                     time_limit: float) -> Schedule | None:
    """The MILP restricted to ``keep`` [job, zone, slot], warm-started from ``incumbent``
    (whose keys must be kept).  The best plan found, or None.  ``time_limit`` covers
    the model build too (1.3 s of a 10 s limit on 87,672 elastic slots)."""
    deadline = time.perf_counter() + time_limit
    fm = fastbuild.build(problem, keep=None if keep is None else list(keep))
    start = fastbuild.start_values(fm, incumbent)
    lp = fm.to_highs_lp()
    left = deadline - time.perf_counter()
    if left <= 0 or len(lp.a_matrix_.value_) > left * MILP_NNZ_PER_SECOND:
        return None  # HiGHS would not be back in time: its presolve cannot be interrupted
    solution, values, _ = run_highs(lp, time_limit=left, mip_gap=MIP_GAP,
                                    start=start, name="highs-restricted")
    if not solution.status.has_solution or values is None:
        return None
    return fastbuild.schedule_from(fm, values)


def _neighbourhood(problem: PlanningProblem, rng: np.random.Generator, gaps: np.ndarray
                   ) -> list[int]:
    """A seed job (weighted by its cost above its priced plan) and the jobs whose
    windows overlap it most."""
    n = len(problem.jobs)
    k = min(LNS_JOBS, n)
    weights = np.maximum(gaps, 0) + 1e-9
    seed = int(rng.choice(n, p=weights / weights.sum()))
    first = np.array([job.first for job in problem.jobs])
    last = np.array([job.last for job in problem.jobs])
    overlap = np.minimum(last, last[seed]) - np.maximum(first, first[seed])
    overlap = overlap + rng.uniform(0, max(1.0, float(overlap.max()) * 0.5), n)
    overlap[seed] = np.inf
    return sorted(np.argsort(-overlap)[:k].tolist())


def reoptimise_job(problem: PlanningProblem, schedule: Schedule, j: int,
                   time_limit: float, prices: np.ndarray | None = None) -> Schedule | None:
    """Job ``j``'s best plan with every other job fixed (exact DP when it applies, else
    its MILP), or None.  ``prices`` [z,t] per GPU are added to its costs."""
    job = problem.jobs[j]
    others = np.ones(len(problem.jobs), bool)
    others[j] = False
    left = problem.capacity - schedule.gpus[others].sum(axis=0)
    if dp.applies(job):
        found = dp.best_plan(problem, job, dp.job_slot_cost(problem, job, left, prices),
                             max_seconds=time_limit)
        if found is None:
            return None
        out = Schedule(schedule.gpus.copy(), schedule.run.copy())
        out.gpus[j] = 0
        out.run[j] = 0.0
        slots = np.flatnonzero(found[1] >= 0)
        out.gpus[j, found[1][slots], slots] = job.gpus
        out.run[j, found[1][slots], slots] = job.gpus * problem.slot_h
        trim_excess(problem, out, j)
        return out
    sub, current = _sub_problem(problem, [j], schedule)
    better = solve_restricted(sub, current, None, time_limit)
    if better is None:
        return None
    out = Schedule(schedule.gpus.copy(), schedule.run.copy())
    out.gpus[j], out.run[j] = better.gpus[0], better.run[0]
    return out


def dp_lagrangian(problem: PlanningProblem, prices: np.ndarray, deadline: float
                  ) -> tuple[float | None, np.ndarray]:
    """Lagrangian bound with exact (DP) single-job sub-problems, and the priced plans'
    capacity use [z,t] (for a subgradient step).  None when a job needs the MILP or
    time ran out."""
    total = -float((prices * problem.capacity).sum())
    use = np.zeros_like(prices)
    for job in problem.jobs:
        if time.perf_counter() > deadline or not dp.applies(job):
            return None, use
        cost = dp.job_slot_cost(problem, job, problem.capacity, prices)
        found = dp.best_plan(problem, job, cost, max_seconds=deadline - time.perf_counter())
        if found is None:
            return None, use
        total += found[0]
        slots = np.flatnonzero(found[1] >= 0)
        use[found[1][slots], slots] += job.gpus
    return total, use


def decompose(problem: PlanningProblem, time_limit: float, seed: int = 0,
              bound_share: float = 0.5,
              report: Callable[[str], None] | None = None) -> Progress:
    """Greedy, bounds, job-wise DP descent and LNS within ``time_limit`` s (module doc).

    ``bound_share`` of the time goes to the transport LP and Lagrangian steps; callers
    that follow with the full MILP (whose root cuts bound better) pass less."""
    began = time.perf_counter()
    deadline = began + time_limit
    progress = Progress(None, None, None, [], began, report)
    incumbent, _note = greedy(problem)
    progress.offer_bound(bounds.separable_bound(problem))
    if incumbent is not None:
        progress.schedule = incumbent
        progress.objective = objective(problem, incumbent)
    progress.note("greedy")
    shape = (len(problem.jobs), len(problem.zones), problem.n_slots)
    marks = np.zeros(shape, bool)
    prices = np.zeros((len(problem.zones), problem.n_slots))
    # sequential insertion: each job's exact best plan in the capacity left so far
    n = len(problem.jobs)
    for order in (sorted(range(n), key=lambda j: -problem.jobs[j].gpus),
                  sorted(range(n), key=lambda j: problem.jobs[j].last)):
        if deadline - time.perf_counter() < 0.2 * time_limit:
            break
        built = _insert(problem, order, began + 0.5 * time_limit, None)
        _accept(problem, progress, built, "DP insertion")
    value = values = None
    # one job that may not split: the transport LP bounds no better than the separable
    # bound but for capacity below an elastic job's size (HiGHS took 245 s on its one
    # row at 87,672 slots, whatever its time limit)
    alone = n == 1 and not (problem.jobs[0].allow_split and len(problem.jobs[0].zones) > 1)
    if not alone and (time_limit >= TRANSPORT_MIN_SECONDS
                      or marks.size < TRANSPORT_QUICK_SIZE):
        value, fm, values = bounds.transport_bound(
            problem, max(0.1, min(0.35 * time_limit, deadline - time.perf_counter() - 0.1)))
    if value is not None and values is not None:
        progress.offer_bound(value)
        marks |= _marks_from(fm, values, shape)
        prices = _capacity_prices(fm, problem)
        progress.note("transport LP")
    # Lagrangian bound, improved by subgradient steps while time allows
    lag_deadline = began + bound_share * time_limit
    lam = prices.copy()
    best_lag = None
    step = SUBGRADIENT_STEP
    while time.perf_counter() < lag_deadline:
        lag, use = dp_lagrangian(problem, lam, lag_deadline)
        if lag is None:
            break
        if best_lag is None or lag > best_lag:
            best_lag, prices = lag, lam  # the best multipliers price the LNS below
        progress.offer_bound(lag)
        progress.note("lagrangian")
        built = _insert(problem, sorted(range(n), key=lambda j: -problem.jobs[j].gpus),
                        lag_deadline, lam)
        _accept(problem, progress, built, "priced insertion")
        sub = use - problem.capacity
        norm = float((np.maximum(sub, 0) ** 2).sum() + ((lam > 0) * np.minimum(sub, 0) ** 2).sum())
        if norm <= 0 or progress.objective is None:
            break
        t_step = step * (progress.objective - lag) / norm
        lam = np.maximum(0.0, lam + t_step * sub)
        step *= SUBGRADIENT_DECAY
    if progress.schedule is None:
        return progress
    # job-wise descent (exact per job) then LNS over small job sets
    rng = np.random.default_rng(seed)
    keep = _widen(marks | (progress.schedule.gpus > 0), problem)
    improved = True
    while improved and deadline - time.perf_counter() > 0.3:
        improved = False
        for j in rng.permutation(n).tolist():
            if deadline - time.perf_counter() < 0.3:
                break
            found = reoptimise_job(problem, progress.schedule, j,
                                   min(LNS_SECONDS, deadline - time.perf_counter() - 0.1))
            before = progress.objective
            _accept(problem, progress, found, "DP descent")
            improved |= progress.objective is not None and before is not None and \
                progress.objective < before - 1e-7
    all_dp = all(dp.applies(job) for job in problem.jobs)
    moves = 0
    while deadline - time.perf_counter() > 0.3 and n > 1:
        S = _neighbourhood(problem, rng, _job_gaps(problem, progress.schedule))
        moves += 1
        # all-DP jobs alternate cheap ruin-recreate (sequential DP insertion) with an
        # exact joint re-plan of the freed jobs (finds exchanges insertion cannot)
        joint = all_dp and moves % 2 == 0 and _keys(problem, S) <= JOINT_MAX_KEYS
        if all_dp and not joint:
            base = Schedule(progress.schedule.gpus.copy(), progress.schedule.run.copy())
            base.gpus[S] = 0
            base.run[S] = 0.0
            scaled = prices * rng.uniform(0.0, 1.0) if rng.uniform() < 0.5 else None
            rebuilt = _insert(problem, rng.permutation(S).tolist(), deadline, scaled, base)
            _accept(problem, progress, rebuilt, f"ruin-recreate {len(S)}")
            continue
        sub, current = _sub_problem(problem, S, progress.schedule)
        sub_keep = None if joint else keep[S] | (current.gpus > 0)
        box = min(JOINT_SECONDS if joint else LNS_SECONDS, deadline - time.perf_counter() - 0.1)
        if box <= 0.1:
            break
        better = solve_restricted(sub, current, sub_keep, box)
        if better is None:
            continue
        if objective(sub, better) < objective(sub, current) - 1e-7:
            merged = Schedule(progress.schedule.gpus.copy(), progress.schedule.run.copy())
            merged.gpus[S] = better.gpus
            merged.run[S] = better.run
            _accept(problem, progress, merged, f"lns {len(S)}")
    return progress


def _insert(problem: PlanningProblem, order: list[int], deadline: float,
            prices: np.ndarray | None, base: Schedule | None = None) -> Schedule | None:
    """Place jobs one by one (on top of ``base``, whose rows for ``order`` must be
    empty), each at its best plan in the capacity left, costs raised by ``prices``."""
    out = Schedule.empty(problem) if base is None else base
    for j in order:
        if time.perf_counter() > deadline:
            return None
        found = reoptimise_job(problem, out, j, max(0.1, deadline - time.perf_counter()),
                               prices)
        if found is None or not found.gpus[j].any():
            return None
        out = found
    return out


def _keys(problem: PlanningProblem, S: list[int]) -> int:
    """(zone, slot)s the jobs ``S`` may hold, summed (their sub-MILP's x columns)."""
    return sum(int(problem.allowed(problem.jobs[j], z).sum()) for j in S
               for z in problem.jobs[j].zones)


def _capacity_prices(fm: fastbuild.FastModel, problem: PlanningProblem) -> np.ndarray:
    """lambda[z,t] >= 0 from the capacity rows' duals of a solved LP."""
    if fm.capacity_prices is None:
        return np.zeros((len(problem.zones), problem.n_slots))
    return fm.capacity_prices


def _job_gaps(problem: PlanningProblem, schedule: Schedule) -> np.ndarray:
    """Per job: its cost now above its cheapest conceivable cost (separable bound)."""
    out = np.zeros(len(problem.jobs))
    for j in range(len(problem.jobs)):
        sub = dataclasses.replace(problem, jobs=(problem.jobs[j],))
        one = Schedule(schedule.gpus[j : j + 1], schedule.run[j : j + 1])
        out[j] = objective(sub, one) - bounds.separable_bound(sub)
    return out


def _accept(problem: PlanningProblem, progress: Progress, found: Schedule | None,
            label: str) -> None:
    if found is None:
        return
    value = objective(problem, found)
    if progress.objective is None or value < progress.objective - 1e-7:
        progress.schedule, progress.objective = found, value
        progress.note(label)


__all__ = ["Progress", "decompose", "dp_lagrangian"]
