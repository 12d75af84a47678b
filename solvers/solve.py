"""Solve a planning problem: pre-checks, MILP on the chosen backend, fallback, extraction."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from greenepoch.data.errors import InfeasibleError, NoSolutionError, RequestError
from greenepoch.data.timeparse import hours
from greenepoch.solvers.backends import Solution, SolveStatus, get_backend
from greenepoch.solvers.explain import explain, explain_job
from greenepoch.solvers.formulation import Model, build
from greenepoch.solvers.heuristics import greedy
from greenepoch.solvers.problem import PlanningProblem, SolveSettings
from greenepoch.solvers.schedule import Schedule, job_objective, objective, stretches, trim_excess


@dataclass(frozen=True)
class Outcome:
    """A schedule and how it was found.  ``method`` is ``milp`` (the MILP, PuLP or the
    vectorised build), ``exact-dp`` (one job, solved exactly by :mod:`solvers.dp`),
    ``lns+milp`` (decomposition, then the full MILP warm-started from it), ``lns``
    (decomposition only, for the largest instances) or ``heuristic`` (the greedy
    fallback when nothing else found a plan in time)."""

    schedule: Schedule
    solution: Solution
    method: str
    build_seconds: float


def set_start(model: Model, schedule: Schedule) -> None:
    """The PuLP model's variables' initial values for ``schedule`` (a MIP start), read
    off the vectorised build's start vector (same variables, keyed alike)."""
    from greenepoch.solvers import fastbuild

    fm = fastbuild.build(model.problem)
    v = fastbuild.start_values(fm, schedule)
    if v is None:
        return
    u_of = {int(x): i for i, x in enumerate(fm.u_x)}
    l_of = {(int(j), int(t)): i for i, (j, t) in enumerate(zip(fm.lJ, fm.lT, strict=True))}
    def value(col: object) -> float:
        return float(v[int(col)])  # type: ignore[call-overload]

    for k, var in model.x.items():
        col = int(fm.index[k])
        if col < 0:
            continue
        var.setInitialValue(value(col))
        model.s[k].setInitialValue(value(fm.s_col(np.array(col))))
        if k in model.n:
            model.n[k].setInitialValue(value(fm.n_col[col]))
        if k in model.u and col in u_of:
            model.u[k].setInitialValue(value(fm.u_col(np.array(u_of[col]))))
    r_of = {int(x): i for i, x in enumerate(fm.r_x)}
    w_of = {int(r): i for i, r in enumerate(fm.w_r)}
    for k, var in model.r.items():
        col = int(fm.index[k])
        if col in r_of:
            var.setInitialValue(value(fm.r_col(np.array(r_of[col]))))
            if k in model.w and r_of[col] in w_of:
                model.w[k].setInitialValue(value(fm.w_col(np.array(w_of[r_of[col]]))))
    for k, var in model.a.items():
        i = int(fm.a_index[k]) if fm.a_index is not None else -1
        if i >= 0:
            var.setInitialValue(value(fm.a_col(np.array(i))))
            model.m[k].setInitialValue(value(fm.m_col(np.array(i))))
    for jt, var in model.later.items():
        if jt in l_of:
            var.setInitialValue(value(fm.l_col(np.array(l_of[jt]))))


def extract(model: Model) -> Schedule:
    """Read the solved variables back into arrays."""
    out = Schedule.empty(model.problem)
    for k, x in model.x.items():
        if (x.varValue or 0.0) > 0.5:
            job = model.problem.jobs[k[0]]
            held = job.gpus_step * round(model.n[k].varValue or 0) if not job.rigid \
                else job.gpus
            out.gpus[k] = held
            out.run[k] = out.gpus[k] * model.problem.slot_h
    for j in range(len(model.problem.jobs)):
        trim_excess(model.problem, out, j)
    return out


def solve_problem(problem: PlanningProblem, settings: SolveSettings,
                  progress: Callable[[str], None] | None = None,
                  baselines: Mapping[str, Schedule | None] | None = None) -> Outcome:
    """Plan with the MILP; fall back to greedy (labelled) if it finds nothing in time.

    With HiGHS, problems of more than ``FAST_MIN_KEYS`` x variables skip PuLP (see
    :func:`solve_fast`); ``settings.time_limit`` bounds the whole solve.  ``progress``
    gets one-line notes: what is solved, then the incumbent and bound as they improve.

    ``baselines`` (name -> schedule, e.g. every job run now at home) that satisfy the
    request (:func:`baseline_violations`) are plans too: the best is handed to the
    vectorised MILP as its start, and the plan returned is never dearer than any of
    them (a cheaper baseline is returned instead, and said so in the message); then a
    job whose own baseline row makes the plan cheaper, every limit kept, runs so.
    """
    feasible = {name: (s, objective(problem, s)) for name, s in (baselines or {}).items()
                if s is not None and not any(baseline_violations(problem, s).values())}
    start = min(feasible.items(), key=lambda kv: kv[1][1]) if feasible else None
    outcome = _solve(problem, settings, progress, None if start is None else start[1][0])
    if start is not None:
        outcome = _whole_baseline(outcome, *start)
    return _per_job_baselines(problem, outcome, baselines or {})


def _whole_baseline(outcome: Outcome, name: str, base: tuple[Schedule, float]) -> Outcome:
    """``outcome``, or the feasible baseline ``name`` when it is cheaper."""
    schedule, value = base
    current = outcome.solution.objective
    if current is not None and value >= current - 1e-9 * max(1.0, abs(current)):
        return outcome
    from greenepoch.solvers.backends import _gap

    sol = outcome.solution
    # a solver's proof within mip_gap covers the cheaper baseline too
    status = sol.status if sol.status.has_solution else SolveStatus.FEASIBLE
    kept = dataclasses.replace(
        sol, status=status, objective=value, gap=_gap(value, sol.bound),
        message=f"{sol.message}; the {name} baseline ({value:,.6g}) was cheaper than the "
                f"solver's plan ({'none' if current is None else f'{current:,.6g}'}) and is "
                "returned")
    return Outcome(schedule, kept, f"{outcome.method}+baseline", outcome.build_seconds)


def _per_job_baselines(problem: PlanningProblem, outcome: Outcome,
                       baselines: Mapping[str, Schedule | None]) -> Outcome:
    """Each job's own baseline where the whole plan is cheaper with it and every limit
    still holds with the other jobs as planned (a time-limited plan can leave one job
    dearer than running it now in its best zone)."""
    current = outcome.solution.objective
    if current is None:
        return outcome
    schedule, swapped = outcome.schedule, []
    for j, job in enumerate(problem.jobs):
        for name, base in baselines.items():
            if base is None:
                continue
            own = job_objective(problem, schedule, j)
            if job_objective(problem, base, j) >= own - 1e-9 * max(1.0, abs(own)):
                continue  # the objective is a sum over jobs: only a cheaper row can help
            trial = Schedule(schedule.gpus.copy(), schedule.run.copy())
            trial.gpus[j], trial.run[j] = base.gpus[j], base.run[j]
            # only job j changed: any broken limit, capacity included, involves it
            if not any(baseline_violations(problem, trial, [j]).values()):
                schedule = trial
                swapped.append(f"'{job.name}' {name}")
    if not swapped:
        return outcome
    value = objective(problem, schedule)
    from greenepoch.solvers.backends import _gap

    sol = outcome.solution
    status = sol.status if sol.status.has_solution else SolveStatus.FEASIBLE
    kept = dataclasses.replace(
        sol, status=status, objective=value, gap=_gap(value, sol.bound),
        message=f"{sol.message}; job(s) run as their baseline, cheaper than the solver's "
                f"plan ({current:,.6g} -> {value:,.6g}): {', '.join(swapped)}")
    return Outcome(schedule, kept, f"{outcome.method}+baseline", outcome.build_seconds)


def baseline_violations(problem: PlanningProblem, schedule: Schedule,
                        jobs: list[int] | None = None) -> dict[int, list[str]]:
    """Per job (of ``jobs``, default all), how ``schedule`` breaks the request (empty
    lists: it satisfies it): the window, the hard threshold, capacity shared with the
    other jobs, interruptions (size changes that are restarts included), sizes off
    the job's step, minimum run length, checkpoint moves and their transfer time,
    work not done (with saves and resizes)."""
    out: dict[int, list[str]] = {}
    used = schedule.gpus.sum(axis=0)
    over = used > problem.capacity
    for j in range(len(problem.jobs)) if jobs is None else jobs:
        job = problem.jobs[j]
        notes: list[str] = []
        held = schedule.held(j)
        slots = np.flatnonzero(held.any(axis=0))
        if len(slots) and slots[-1] > job.last:
            notes.append(f"finishes {slots[-1] - job.last} slot(s) after the deadline")
        if len(slots) and slots[0] < job.first:
            notes.append("starts before the release")
        if problem.threshold is not None and problem.threshold_mode == "hard":
            above = int((held & (problem.intensity > problem.threshold)).sum())
            if above:
                notes.append(f"runs {above} slot(s) above the hard threshold "
                             f"{problem.threshold:g} gCO2eq/kWh")
        crowded = int((held & over).sum())
        if crowded:
            notes.append(f"exceeds the zone capacity with the other jobs in {crowded} slot(s)")
        starts = schedule.segments(job, j)
        if job.max_starts is not None and starts > job.max_starts:
            notes.append(f"{starts - 1} interruptions, more than max_interruptions "
                         f"{job.max_starts - 1}")
        if (schedule.gpus[j] % job.gpus_step).any():
            notes.append(f"holds GPUs off its step of {job.gpus_step}")
        moves = len(schedule.moves(j, job.home))
        if job.max_moves is not None and moves > job.max_moves:
            notes.append(f"{moves} checkpoint moves, more than max_migrations {job.max_moves}")
        short = [b - a + 1 for z in job.zones for a, b in stretches(held[z])
                 if b - a + 1 < job.min_run_slots]
        if short:
            notes.append(f"{len(short)} run(s) shorter than min_run")
        for _z, t in schedule.moves(j, job.home):
            ran = np.flatnonzero(np.asarray(held.any(axis=0))[:t])
            free_from = ran[-1] + 1 if len(ran) else job.first
            if t - free_from < job.transfer_slots:
                notes.append("resumes in another zone before its checkpoint transfer ends")
                break
        done = schedule.work_done(problem, j)
        if done < job.work - 1e-4 * max(1.0, job.work):
            notes.append(f"does {done:,.2f} of {job.work:,.2f} GPU-hours within the horizon")
        out[j] = notes
    return out


def _solve(problem: PlanningProblem, settings: SolveSettings,
           progress: Callable[[str], None] | None, start: Schedule | None) -> Outcome:
    keys = check_size(problem)
    for job in problem.jobs:
        reason = explain_job(problem, job)
        if reason:
            raise InfeasibleError("infeasible: " + reason)
    if progress is not None:
        progress(f"solving {len(problem.jobs)} job(s) x {len(problem.zones)} zone(s) x "
                 f"{problem.n_slots} slots ({keys:,} job-zone-slot choices) with "
                 f"{settings.solver}, time limit {_seconds(settings)}")
    if settings.solver == "highs" and keys > FAST_MIN_KEYS:
        return solve_fast(problem, settings, progress, start)
    began = time.perf_counter()
    start = _cheaper_start(problem, start)
    model = build(problem)
    build_seconds = time.perf_counter() - began
    backend = get_backend(settings.solver)
    if start is not None:
        set_start(model, start)
    solution = backend.solve(
        model.lp, time_limit=hours(settings.time_limit) * 3600, mip_gap=settings.mip_gap,
        on_progress=None if progress is None else _milp_reporter(progress, began, None,
                                                                 f"{backend.name} MILP"),
        warm_start=start is not None)
    if solution.status.has_solution:
        schedule = extract(model)
        return Outcome(schedule, rescored(solution, objective(problem, schedule)),
                       "milp", build_seconds)
    if solution.status is SolveStatus.INFEASIBLE:
        raise InfeasibleError(explain(problem))
    fallback, note = greedy(problem)
    if fallback is None:  # nothing proved: a plan may exist
        stopped = ("stopped with an error" if solution.status is SolveStatus.ERROR
                   else f"found no plan within the time limit of {_seconds(settings)}")
        raise NoSolutionError(
            f"the {backend.name} solver {stopped} ({solution.message}) and the greedy "
            f"fallback failed ({note}); "
            "this does not prove that none exists: raise policy.time_limit or relax the "
            "request")
    value = objective(problem, fallback)
    labelled = Solution(backend.name, solution.status, value, solution.bound,
                        None if solution.bound is None else
                        max(0.0, (value - solution.bound) / max(abs(value), 1e-9)),
                        solution.seconds,
                        f"{solution.message}; plan from greedy heuristic fallback")
    return Outcome(fallback, labelled, "heuristic", build_seconds)


def _cheaper_start(problem: PlanningProblem, start: Schedule | None) -> Schedule | None:
    """The cheaper of ``start`` and the greedy plan (when it keeps every limit): the
    root bound often proves a good start within the gap at once.  On the demo a run-now
    start of 233.5 left HiGHS 2.6 s of cut rounds before it found 181.22 against a
    root bound of 180.85; greedy's 181.85 is within 1 % of it."""
    plan, _ = greedy(problem)
    if plan is None or check_schedule(problem, plan):
        return start
    if start is None or objective(problem, plan) < objective(problem, start):
        return plan
    return start


def _seconds(settings: SolveSettings) -> str:
    return f"{hours(settings.time_limit) * 3600:g} s"


FAST_MIN_KEYS = 2_000  # x variables above which the vectorised HiGHS path is used
LNS_ONLY_KEYS = 60_000  # ... and above which the full MILP is not attempted
LNS_SHARE = 0.35  # share of the time limit the decomposition gets before the full MILP
MILP_MIN_SECONDS = 4.0  # below this time limit the full MILP barely finishes its root LP
# share of the decomposition's time in Lagrangian steps when the full MILP follows: its
# root cuts bound better (instance C: 5399 after 5 s vs 5313), but each step's priced
# insertion is the decomposition's best source of plans
BOUND_SHARE_BEFORE_MILP = 0.6
# share of the full MILP's time kept back: HiGHS reads its clock only between rounds of
# root cuts, which take seconds here (C: a 6.3 s limit ran 6.4-7.3 s, so 9.1-10.0 s
# against a 9 s limit)
HIGHS_OVERRUN = 0.15


MAX_KEYS = 250_000  # job-zone-slot choices planned at most ...
MAX_JOB_KEYS = 100_000  # ... and per job (its own MILP): the memory bound, docs/model.md


def _slot_text(slot_h: float) -> str:
    return f"{slot_h:g} h" if slot_h >= 1 else f"{slot_h * 60:g} min"


def check_size(problem: PlanningProblem) -> int:
    """The problem's job-zone-slot choices; a :class:`RequestError` when a job has more
    than ``MAX_JOB_KEYS`` or all together more than ``MAX_KEYS``, naming the job with the
    most, the largest window that fits on these slots and, on 15-min slots, whether
    1-h slots would fit."""
    per_job = [sum(int(problem.allowed(job, z).sum()) for z in job.zones)
               for job in problem.jobs]
    keys = sum(per_job)
    if keys <= MAX_KEYS and max(per_job, default=0) <= MAX_JOB_KEYS:
        return keys
    j = int(np.argmax(per_job))
    job = problem.jobs[j]
    window = job.last - job.first + 1
    fits = max(0, min(MAX_JOB_KEYS, MAX_KEYS - (keys - per_job[j])) // len(job.zones))
    slot = _slot_text(problem.slot_h)
    coarser = ""
    if problem.slot_h < 1:
        per_hour = round(1 / problem.slot_h)
        ok = math.ceil(keys / per_hour) <= MAX_KEYS and \
            math.ceil(per_job[j] / per_hour) <= MAX_JOB_KEYS
        coarser = (f"; with policy.slot = '1h' ({per_hour}x fewer slots) it "
                   f"{'would fit' if ok else 'would not fit either'}")
    raise RequestError(
        f"the request is too large to plan in bounded memory: {keys:,} job-zone-slot "
        f"choices (at most {MAX_KEYS:,}), job '{job.name}' {per_job[j]:,} (at most "
        f"{MAX_JOB_KEYS:,}: its window of {window:,} slots of {slot} x {len(job.zones)} "
        f"zone(s)); the largest window that fits for '{job.name}' is {fits:,} slots "
        f"({fits * problem.slot_h / 24:,.1f} days){coarser}; shorten the window "
        "(release/deadline) or allow fewer zones")


def count_keys(problem: PlanningProblem) -> int:
    """Number of x variables (job, zone, slot) the model would have."""
    return sum(int(problem.allowed(job, z).sum()) for job in problem.jobs for z in job.zones)


def rescored(solution: Solution, value: float) -> Solution:
    """``solution`` with the objective of the plan actually returned: extraction trims
    work and restarts a time-limited incumbent held beyond its need, so the plan can
    cost less than the solver's incumbent (its gap is then smaller).  The status stays
    the solver's own: a proven optimum is re-read within the solver's tolerances (the
    plan can read 1e-6 above the bound HiGHS stopped at), a time-limited incumbent
    stays ``feasible`` however small its gap."""
    from greenepoch.solvers.backends import _gap

    return dataclasses.replace(solution, objective=value, gap=_gap(value, solution.bound),
                               incumbent=solution.objective)


MIP_ABS_GAP = 1e-6  # HiGHS's default mip_abs_gap: it stops when plan - bound is below


def proved_within_gap(objective: float | None, bound: float | None, mip_gap: float) -> bool:
    """True when ``bound`` proves ``objective`` within ``mip_gap`` by HiGHS's own stopping
    rule (relative gap, or absolute gap ``MIP_ABS_GAP``).  Only for plans no solver
    judged (the decomposition's): a solver's plan takes the solver's status."""
    if objective is None or bound is None:
        return False
    return objective - bound <= max(mip_gap * abs(objective), MIP_ABS_GAP)


def solve_fast(problem: PlanningProblem, settings: SolveSettings,
               progress: Callable[[str], None] | None = None,
               start: Schedule | None = None) -> Outcome:
    """HiGHS without PuLP, in up to three steps within ``settings.time_limit``:

    * one job the exact DP applies to: :func:`solvers.dp.best_plan` (optimal);
    * otherwise :func:`solvers.lns.decompose` (greedy, transport-LP and Lagrangian
      bounds, DP insertion and descent, LNS) for ``LNS_SHARE`` of the time, or all of
      it above ``LNS_ONLY_KEYS`` x variables;
    * then the full MILP (:mod:`solvers.fastbuild`) warm-started from that plan.

    The objective is the model's (GPU-hours run); the bound is the best of the
    decomposition's bounds and HiGHS's dual bound.  ``start``, a feasible plan (a
    baseline), replaces the decomposition's when cheaper, so the MILP starts from it.
    """
    from greenepoch.solvers import dp, fastbuild
    from greenepoch.solvers.backends import _gap, run_highs
    from greenepoch.solvers.lns import decompose, progress_line

    began = time.perf_counter()
    limit = hours(settings.time_limit) * 3600
    deadline = began + limit
    if len(problem.jobs) == 1 and dp.applies(problem.jobs[0]):
        job = problem.jobs[0]
        found = dp.best_plan(problem, job, dp.job_slot_cost(problem, job), max_seconds=limit)
        if found is not None:
            out = Schedule.empty(problem)
            slots = np.flatnonzero(found[1] >= 0)
            out.gpus[0, found[1][slots], slots] = job.gpus
            out.run[0, found[1][slots], slots] = job.gpus * problem.slot_h
            trim_excess(problem, out, 0)
            seconds = time.perf_counter() - began
            return Outcome(out, Solution("highs", SolveStatus.OPTIMAL, found[0], found[0], 0.0,
                                         seconds, "exact dynamic programme (one job)"),
                           "exact-dp", 0.0)
    keys = count_keys(problem)
    share = 1.0 if keys > LNS_ONLY_KEYS or limit < MILP_MIN_SECONDS else LNS_SHARE
    decomposed = decompose(problem, share * limit,
                           bound_share=0.5 if share == 1.0 else BOUND_SHARE_BEFORE_MILP,
                           report=progress)
    build_seconds = 0.0
    method, message = "lns", "decomposition: " + ", ".join(
        sorted({label.split(" ")[0] for _, label, _, _ in decomposed.events}))
    schedule, value, bound = decomposed.schedule, decomposed.objective, decomposed.bound
    if start is not None and (value is None or objective(problem, start) < value - 1e-7):
        schedule, value = start, objective(problem, start)
        message += ", baseline start"
    left = deadline - time.perf_counter()
    proved = proved_within_gap(value, bound, settings.mip_gap)  # by the decomposition's bound
    if share < 1.0 and left > 0.5 and not proved:
        t0 = time.perf_counter()
        fm = fastbuild.build(problem)
        lp = fm.to_highs_lp()
        build_seconds = time.perf_counter() - t0
        mip_start = None if schedule is None else fastbuild.start_values(fm, schedule)
        if progress is not None:
            left = deadline - time.perf_counter()
            progress(progress_line(time.perf_counter() - began, value, bound,
                                   f"full MILP for the last {left:.0f} s"))
        solution, values, _ = run_highs(
            lp, time_limit=(deadline - time.perf_counter()) * (1 - HIGHS_OVERRUN),
            mip_gap=settings.mip_gap, start=mip_start,
            on_progress=None if progress is None else _milp_reporter(progress, began, bound))
        if solution.status is SolveStatus.INFEASIBLE:
            raise InfeasibleError(explain(problem))
        if solution.bound is not None and (bound is None or solution.bound > bound):
            bound = solution.bound
        if values is not None and solution.objective is not None and (
                value is None or solution.objective < value - 1e-7):
            schedule, value = fastbuild.schedule_from(fm, values), solution.objective
        # HiGHS's proof covers the plan returned: it is no dearer than HiGHS's incumbent
        proved = proved or solution.status is SolveStatus.OPTIMAL
        method = "lns+milp"
        message += f"; full MILP: {solution.message}"
    seconds = time.perf_counter() - began
    if schedule is None:  # nothing proved: a plan may exist
        raise NoSolutionError(
            f"no plan found within the time limit of {_seconds(settings)} by the "
            "decomposition or the MILP; this does not prove that none exists: raise "
            "policy.time_limit or relax the request")
    value = objective(problem, schedule)  # the returned plan's (trimmed) value
    status = SolveStatus.OPTIMAL if proved else SolveStatus.FEASIBLE
    return Outcome(schedule, Solution("highs", status, value,
                                      bound, _gap(value, bound), seconds, message),
                   method, build_seconds)


def _milp_reporter(progress: Callable[[str], None], began: float, bound: float | None,
                   label: str = "full MILP"
                   ) -> Callable[[float, float | None, float | None], None]:
    """Progress notes from a MILP's (seconds, incumbent, bound), on the solve's clock and
    with the decomposition's bound when it is higher."""
    from greenepoch.solvers.lns import progress_line

    offset = time.perf_counter() - began

    def report(seconds: float, incumbent: float | None, dual: float | None) -> None:
        best = dual if bound is None or (dual is not None and dual > bound) else bound
        progress(progress_line(offset + seconds, incumbent, best, label))

    return report


def check_schedule(problem: PlanningProblem, schedule: Schedule, tol: float = 1e-4) -> list[str]:
    """Plan invariants, as messages (empty when all hold): capacity, window, work done
    net of restart overheads, checkpoint saves and resizes (:meth:`Schedule.work_done`),
    hard threshold, interruptions (segments), sizes on the step and within bounds,
    checkpoint moves, one zone at a time."""
    issues = []
    used = (schedule.gpus).sum(axis=0)
    if (used > problem.capacity + tol).any():
        issues.append("capacity exceeded")
    for j, job in enumerate(problem.jobs):
        held = schedule.held(j)
        slots = np.flatnonzero(held.any(axis=0))
        if len(slots) and (slots[0] < job.first or slots[-1] > job.last):
            issues.append(f"{job.name}: runs outside its window")
        done = schedule.work_done(problem, j)
        if abs(done - job.work) > tol * max(1.0, job.work):
            issues.append(f"{job.name}: work {done:.4f} != {job.work:.4f}")
        if problem.threshold is not None and problem.threshold_mode == "hard" and \
                (problem.intensity[held] > problem.threshold + tol).any():
            issues.append(f"{job.name}: runs above the hard threshold")
        if (schedule.run[j] > schedule.gpus[j] * problem.slot_h + tol).any():
            issues.append(f"{job.name}: runs more GPU-hours than it holds")
        segments = schedule.segments(job, j)
        if job.max_starts is not None and segments > job.max_starts:
            issues.append(f"{job.name}: {segments - 1} interruptions > max")
        if (schedule.gpus[j] % job.gpus_step).any():
            issues.append(f"{job.name}: holds GPUs off its step of {job.gpus_step}")
        held_gpus = schedule.gpus[j][held]
        if len(held_gpus) and (held_gpus.min() < job.gpus_min or held_gpus.max() > job.gpus):
            issues.append(f"{job.name}: holds GPUs outside {job.gpus_min}..{job.gpus}")
        moves = len(schedule.moves(j, job.home))
        if job.max_moves is not None and moves > job.max_moves:
            issues.append(f"{job.name}: {moves} checkpoint moves > max {job.max_moves}")
        if not job.allow_split and (held.sum(axis=0) > 1).any():
            issues.append(f"{job.name}: runs in two zones at once")
    return issues
