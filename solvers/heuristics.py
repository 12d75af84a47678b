"""Plans without the MILP: the exact cleanest-slots method and a greedy heuristic.

* :func:`exact_cleanest_slots` is optimal when nothing couples slots: one rigid job,
  no restart overhead or checkpoint save time, no paid or capped migration, no limit
  on interruptions or run length.
  Each slot then costs its cleanest allowed zone and the cheapest slots win, except
  that the last of them runs only what is left
  (:func:`~solvers.single_job.cheapest_slots_partial`).  It must equal the MILP's
  objective there.
* :func:`greedy` places jobs earliest-deadline first, each in the cheapest slots of
  one zone (or of the per-slot best zone when moving is free and uncapped), within
  what capacity is left (the single-job optimisers of :mod:`solvers.single_job`), at
  full size (a multiple of its step; it never resizes), its runs paying their
  overheads and the saves between them.  It is the
  fallback when the MILP finds nothing in time, and the literature-style baseline
  the MILP is measured against.
"""

from __future__ import annotations

import numpy as np
from greenepoch.solvers.problem import JobSpec, PlanningProblem
from greenepoch.solvers.schedule import EPS, Schedule, trim_excess
from greenepoch.solvers.single_job import cheapest_order, cheapest_slots_partial, cheapest_window


def exact_applies(problem: PlanningProblem) -> bool:
    if len(problem.jobs) != 1:
        return False
    job = problem.jobs[0]
    return (
        job.rigid
        and not job.loses_time
        and not job.tracks_checkpoint
        and job.max_starts is None
        and job.min_run_slots <= 1
        and not (job.allow_split and len(job.zones) > 1)  # may hold two zones in one slot
    )


def _best_zone_per_slot(problem: PlanningProblem, job: JobSpec, cap: np.ndarray,
                        zones: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per slot: cheapest allowed zone with room for the job, and its cost per GPU-hour."""
    cost = np.full((len(zones), problem.n_slots), np.inf)
    for i, z in enumerate(zones):
        ok = problem.allowed(job, z) & (cap[z] >= job.gpus)
        cost[i, ok] = problem.cost_per_gpu_h(job, z)[ok]
    pick = cost.argmin(axis=0)
    return np.asarray(zones)[pick], cost[pick, np.arange(problem.n_slots)]


def _fill(problem: PlanningProblem, job: JobSpec, zone_of: np.ndarray, chosen: np.ndarray,
          j: int, out: Schedule) -> None:
    """Hold the job at full size in the ``chosen`` slots, then trim the excess work."""
    for t in chosen.tolist():
        out.gpus[j, zone_of[t], t] = job.gpus
        out.run[j, zone_of[t], t] = job.gpus * problem.slot_h
    trim_excess(problem, out, j)


def exact_cleanest_slots(problem: PlanningProblem) -> Schedule | None:
    """Optimal schedule for an uncoupled request (see module doc), or None if infeasible:
    :func:`~solvers.single_job.cheapest_slots_partial` on each slot's cleanest zone."""
    job = problem.jobs[0]
    zone_of, cost = _best_zone_per_slot(problem, job, problem.capacity, job.zones)
    chosen = cheapest_slots_partial(cost, job.work / (job.gpus * problem.slot_h))
    if chosen is None:
        return None
    out = Schedule.empty(problem)
    _fill(problem, job, zone_of, chosen, 0, out)
    return out


def _cheapest_slots(problem: PlanningProblem, job: JobSpec, cost: np.ndarray,
                    zone_of: np.ndarray) -> np.ndarray | None:
    """Cheapest slot set covering work plus one overhead per run and a save between
    runs, within max_starts: the ``k`` cheapest slots for the least ``k`` that covers it."""
    if job.min_run_slots > 1:
        return None
    order = cheapest_order(cost)
    full = job.gpus * problem.slot_h
    k = max(1, int(np.ceil(job.work / full - 1e-9)))
    while k <= len(order):
        chosen = np.sort(order[:k])
        breaks = (np.diff(chosen) > 1) | (np.diff(zone_of[chosen]) != 0)
        runs = 1 + int(breaks.sum())
        if job.max_starts is not None and runs > job.max_starts:
            return None
        if k * full - job.lost_gpu_h(runs) >= job.work - EPS:
            return chosen
        k += 1
    return None


def _cheapest_window(problem: PlanningProblem, job: JobSpec, cost: np.ndarray) -> np.ndarray | None:
    """Cheapest contiguous run of slots covering work plus one overhead."""
    full = job.gpus * problem.slot_h
    k = max(job.min_run_slots, int(np.ceil((job.work + job.overhead_gpu_h) / full - 1e-9)))
    start = cheapest_window(cost, k)
    return None if start is None else np.arange(start, start + k)


def greedy(problem: PlanningProblem) -> tuple[Schedule | None, str]:
    """Earliest-deadline-first greedy schedule, or (None, reason) if a job did not fit."""
    out = Schedule.empty(problem)
    cap = problem.capacity.astype(float).copy()
    for j in sorted(range(len(problem.jobs)), key=lambda i: problem.jobs[i].last):
        job = problem.jobs[j]
        options = []
        zone_sets: list[tuple[int, ...]] = [(z,) for z in job.zones
                                            if job.max_moves != 0 or z == job.home]
        if len(job.zones) > 1 and not job.tracks_checkpoint:
            zone_sets.append(job.zones)
        for zones in zone_sets:
            zone_of, cost = _best_zone_per_slot(problem, job, cap, zones)
            if zones[0] != job.home and len(zones) == 1 and job.transfer_slots:
                cost[: job.first + job.transfer_slots] = np.inf
            chosen = _cheapest_slots(problem, job, cost, zone_of)
            if chosen is None and len(zones) == 1:
                chosen = _cheapest_window(problem, job, cost)
            if chosen is not None:
                options.append((float(cost[chosen].sum()), zone_of, chosen, cost))
        if not options:
            return None, f"job '{job.name}' found no room in the capacity left by earlier jobs"
        _, zone_of, chosen, cost = min(options, key=lambda o: o[0])
        _fill(problem, job, zone_of, chosen, j, out)
        for t in chosen.tolist():
            cap[zone_of[t], t] -= job.gpus
    return out, "greedy"
