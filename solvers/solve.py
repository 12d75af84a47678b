"""Solve a planning problem: pre-checks, MILP on the chosen backend, fallback, extraction."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from planner.errors import InfeasibleError
from planner.model import Policy
from planner.timeparse import hours
from solvers.backends import Solution, SolveStatus, get_backend
from solvers.explain import explain, explain_job
from solvers.formulation import Model, build
from solvers.heuristics import greedy
from solvers.problem import PlanningProblem
from solvers.schedule import Schedule, objective, trim_excess


@dataclass(frozen=True)
class Outcome:
    """A schedule and how it was found.  ``method`` is ``milp`` or ``heuristic``
    (the greedy fallback when the MILP found nothing in time)."""

    schedule: Schedule
    solution: Solution
    method: str
    build_seconds: float


def extract(model: Model) -> Schedule:
    """Read the solved variables back into arrays."""
    out = Schedule.empty(model.problem)
    for k, x in model.x.items():
        if (x.varValue or 0.0) > 0.5:
            j, z, t = k
            job = model.problem.jobs[j]
            held = model.n[k].varValue if not job.rigid else job.gpus
            out.gpus[k] = round(held or 0)
            out.run[k] = out.gpus[k] * model.problem.slot_h
    for j in range(len(model.problem.jobs)):
        trim_excess(model.problem, out, j)
    return out


def solve_problem(problem: PlanningProblem, policy: Policy) -> Outcome:
    """Plan with the MILP; fall back to greedy (labelled) if it finds nothing in time."""
    for job in problem.jobs:
        reason = explain_job(problem, job)
        if reason:
            raise InfeasibleError("infeasible: " + reason)
    began = time.perf_counter()
    model = build(problem)
    build_seconds = time.perf_counter() - began
    backend = get_backend(policy.solver)
    solution = backend.solve(model.lp, time_limit=hours(policy.time_limit) * 3600,
                             mip_gap=policy.mip_gap)
    if solution.status.has_solution:
        return Outcome(extract(model), solution, "milp", build_seconds)
    if solution.status is SolveStatus.INFEASIBLE:
        raise InfeasibleError(explain(problem))
    fallback, note = greedy(problem)
    if fallback is None:
        raise InfeasibleError(
            f"the {backend.name} solver found no plan within {policy.time_limit} "
            f"({solution.message}) and the greedy fallback failed: {note}; raise "
            "policy.time_limit or relax the request"
        )
    value = objective(problem, fallback)
    labelled = Solution(backend.name, solution.status, value, solution.bound,
                        None if solution.bound is None else
                        max(0.0, (value - solution.bound) / max(abs(value), 1e-9)),
                        solution.seconds,
                        f"{solution.message}; plan from greedy heuristic fallback")
    return Outcome(fallback, labelled, "heuristic", build_seconds)


def check_schedule(problem: PlanningProblem, schedule: Schedule, tol: float = 1e-4) -> list[str]:
    """Plan invariants, as messages (empty when all hold)."""
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
        if job.max_starts is not None and schedule.starts(j) > job.max_starts:
            issues.append(f"{job.name}: {schedule.starts(j) - 1} interruptions > max")
        if not job.allow_split and (held.sum(axis=0) > 1).any():
            issues.append(f"{job.name}: runs in two zones at once")
    return issues
