"""Why a request is infeasible, and the smallest change that would fix it."""

from __future__ import annotations

import numpy as np

from solvers.problem import JobSpec, PlanningProblem


def _usable(problem: PlanningProblem, job: JobSpec, threshold: bool = True,
            window: bool = True) -> np.ndarray:
    """Slots where the job could run in some allowed zone at full size."""
    mask = np.zeros(problem.n_slots, dtype=bool)
    for z in job.zones:
        ok = problem.capacity[z] >= job.gpus
        if threshold and problem.threshold is not None and problem.threshold_mode == "hard":
            ok &= problem.intensity[z] <= problem.threshold
        mask |= ok
    if window:
        inside = np.zeros_like(mask)
        inside[job.first : job.last + 1] = True
        mask &= inside
    return mask


def _stamp(problem: PlanningProblem, t: int) -> str:
    return problem.slots[t].isoformat()


def explain_job(problem: PlanningProblem, job: JobSpec) -> str | None:
    """A sentence if ``job`` cannot fit even alone, else None."""
    need = problem.slots_needed(job)
    usable = _usable(problem, job)
    have = int(usable.sum())
    if have >= need:
        return None
    slot_h = problem.slot_h
    window = job.last - job.first + 1
    parts = [
        f"job '{job.name}' needs {need} slots of {slot_h:g} h at {job.gpus} GPUs "
        f"({job.work:g} GPU-hours plus restart overhead) between release "
        f"{_stamp(problem, job.first)} and deadline, but only {have} of the window's "
        f"{window} slots are usable"
    ]
    no_cap = _usable(problem, job, threshold=False)
    if int(no_cap.sum()) < need:
        short = need - int(no_cap.sum())
        parts.append(f"capacity: fewer than {job.gpus} GPUs are free in {window - int(no_cap.sum())} "
                     f"slots of every allowed zone")
        later = np.flatnonzero(_usable(problem, job, window=False)[job.first :])
        if len(later) >= need:
            end = problem.slots[job.first + later[need - 1]] + (problem.slots[1] - problem.slots[0])
            parts.append(f"latest deadline needed: {end.isoformat()}")
        else:
            parts.append(f"move the deadline at least {short * slot_h:g} h later or free capacity")
    if problem.threshold is not None and problem.threshold_mode == "hard":
        best = np.full(problem.n_slots, np.inf)
        for z in job.zones:
            ok = problem.capacity[z] >= job.gpus
            best = np.where(ok, np.minimum(best, problem.intensity[z]), best)
        inside = np.sort(best[job.first : job.last + 1])
        if np.isfinite(inside[need - 1]) if need <= len(inside) else False:
            parts.append(
                f"the carbon threshold {problem.threshold:g} g/kWh excludes "
                f"{int(no_cap.sum()) - have} slots; threshold needed: "
                f"{np.ceil(inside[need - 1] * 10) / 10:g} g/kWh"
            )
        later = np.flatnonzero(_usable(problem, job, window=False)[job.first :])
        if len(later) >= need:
            end = problem.slots[job.first + later[need - 1]] + (problem.slots[1] - problem.slots[0])
            parts.append(f"or keep the threshold and move the deadline to {end.isoformat()}")
    return "; ".join(parts)


def explain_shared(problem: PlanningProblem) -> str:
    """Every job fits alone, so together they overload capacity: say where."""
    names = ", ".join(f"'{j.name}'" for j in problem.jobs)
    demand = sum(j.work for j in problem.jobs)
    first = min(j.first for j in problem.jobs)
    last = max(j.last for j in problem.jobs)
    zones = sorted({z for j in problem.jobs for z in j.zones})
    supply = float(problem.capacity[zones, first : last + 1].sum()) * problem.slot_h
    tight = min(problem.jobs, key=lambda j: j.last)
    return (
        f"capacity shared too thin: jobs {names} each fit alone but not together "
        f"({demand:g} GPU-hours of work plus restart overhead against {supply:g} GPU-hours of "
        f"capacity in zones {', '.join(problem.zones[z] for z in zones)} between "
        f"{_stamp(problem, first)} and {_stamp(problem, last)}, limited further by deadlines, "
        f"one-zone-at-a-time, run lengths and interruptions); raise capacity_gpus, allow more "
        f"zones, or move a deadline later (the earliest is '{tight.name}')"
    )


def explain(problem: PlanningProblem) -> str:
    reasons = [r for r in (explain_job(problem, j) for j in problem.jobs) if r]
    if reasons:
        return "infeasible: " + " | ".join(reasons)
    single = [j for j in problem.jobs if j.max_starts is not None or j.min_run_slots > 1]
    if len(problem.jobs) == 1 and single:
        job = single[0]
        return (
            f"infeasible: job '{job.name}' has enough usable slots, but not in few enough "
            f"runs: max_interruptions = {job.max_starts - 1 if job.max_starts else 'unlimited'}"
            f", min_run = {job.min_run_slots} slot(s); allow more interruptions or a shorter "
            "minimum run"
        )
    return "infeasible: " + explain_shared(problem)
