"""Why a request is infeasible, and the smallest change that would fix it.

The checks here are necessary conditions (optimistic: capacity is read per job, as if
the job were alone; size changes cost nothing; a move cap is ignored), so a job they
reject is infeasible for certain.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from greenepoch.solvers.problem import JobSpec, PlanningProblem
from greenepoch.solvers.schedule import stretches

EPS = 1e-6


def _hard(problem: PlanningProblem) -> float | None:
    """The hard carbon threshold (g/kWh), or None."""
    return problem.threshold if problem.threshold_mode == "hard" else None


def _gpu_hours(problem: PlanningProblem, job: JobSpec, threshold: float | None,
               window: bool = True) -> np.ndarray:
    """GPU-hours ``job`` could run in each slot: the most GPUs (at most ``gpus``, at
    least ``gpus_min``, a multiple of its step) free in its best allowed zone, or in all
    of them when it may split; 0 where it cannot run or the intensity is above
    ``threshold``."""
    sizes = np.zeros((len(job.zones), problem.n_slots))
    for i, z in enumerate(job.zones):
        size = np.minimum(problem.capacity[z], job.gpus) // job.gpus_step * job.gpus_step
        size = size.astype(float)
        ok = size >= job.gpus_min
        if threshold is not None:
            ok &= problem.intensity[z] <= threshold
        sizes[i] = np.where(ok, size, 0.0)
    gpus = sizes.sum(axis=0) if job.allow_split else sizes.max(axis=0)
    if window:
        gpus[: job.first] = 0.0
        gpus[job.last + 1 :] = 0.0
    return gpus * problem.slot_h


def _enough(job: JobSpec, gpu_hours: np.ndarray) -> bool:
    """Room for the work plus one restart overhead."""
    return float(gpu_hours.sum()) - job.overhead_gpu_h >= job.work - EPS


def _fewest_runs(job: JobSpec, gpu_hours: np.ndarray) -> int | None:
    """Fewest runs (of at least min_run slots, a restart overhead each and a save
    between two, the largest stretches first) that hold the work; None if all of them
    together do not."""
    runs = sorted(_runs(gpu_hours, job.min_run_slots), reverse=True)
    done = np.cumsum(runs) - np.array([job.lost_gpu_h(k) for k in range(1, len(runs) + 1)])
    fits = np.flatnonzero(done >= job.work - EPS)
    return int(fits[0]) + 1 if len(fits) else None


def _fits(job: JobSpec, gpu_hours: np.ndarray) -> bool:
    """Room for the work, also in few enough runs of at least min_run slots."""
    if not _enough(job, gpu_hours):
        return False
    if job.max_starts is None and job.min_run_slots <= 1 and not job.loses_time:
        return True
    fewest = _fewest_runs(job, gpu_hours)  # each run pays its restart overhead
    return fewest is not None and (job.max_starts is None or fewest <= job.max_starts)


def _step(problem: PlanningProblem) -> pd.Timedelta:
    return pd.Timedelta(hours=problem.slot_h)


def _stamp(problem: PlanningProblem, t: int) -> str:
    return problem.slots[t].isoformat()


def _deadline_needed(problem: PlanningProblem, job: JobSpec,
                     threshold: float | None) -> pd.Timestamp | None:
    """End of the slot in which ``job``, running in every usable slot from its release,
    would finish.  Past the horizon, capacity stays as in the last slot (a capacity
    schedule holds its last value); with a hard threshold the unknown intensities there
    give no answer (None)."""
    room = _gpu_hours(problem, job, threshold, window=False)[job.first :]
    total = job.work + job.overhead_gpu_h
    done = np.cumsum(room)
    hit = np.flatnonzero(done >= total - EPS)
    if len(hit):  # the first end with room, then the first that also fits the run limits
        for end in range(int(hit[0]), len(room)):
            if _fits(job, room[: end + 1]):
                return problem.slots[job.first + end] + _step(problem)
        return None
    if threshold is not None or room[-1] <= 0:
        return None
    extra = math.ceil((total - float(done[-1])) / float(room[-1]) - 1e-9)
    return problem.slots[-1] + _step(problem) * (1 + extra)


def _threshold_needed(problem: PlanningProblem, job: JobSpec) -> float | None:
    """Lowest hard threshold (g/kWh) under which the job has room in its window, in few
    enough runs."""
    levels = np.unique(problem.intensity[list(job.zones), job.first : job.last + 1])
    lo, hi = 0, len(levels) - 1
    if hi < 0 or not _fits(job, _gpu_hours(problem, job, float(levels[hi]))):
        return None
    while lo < hi:  # usable stretches only grow and merge with the threshold: bisect
        mid = (lo + hi) // 2
        if _fits(job, _gpu_hours(problem, job, float(levels[mid]))):
            hi = mid
        else:
            lo = mid + 1
    return float(levels[lo])


def explain_job(problem: PlanningProblem, job: JobSpec) -> str | None:
    """A sentence if ``job`` cannot fit even alone, else None."""
    room = _gpu_hours(problem, job, _hard(problem))
    if _enough(job, room):
        return None
    need = problem.slots_needed(job)
    have = int((room > 0).sum())
    slot_h = problem.slot_h
    window = job.last - job.first + 1
    deadline = problem.slots[job.last] + _step(problem)
    parts = [
        f"job '{job.name}' needs {need} slots of {slot_h:g} h at {job.gpus} GPUs "
        f"({job.work:g} GPU-hours plus restart overhead) between release "
        f"{_stamp(problem, job.first)} and deadline {deadline.isoformat()}, but only "
        f"{have} of the window's {window} slots are usable (room for "
        f"{float(room.sum()):g} GPU-hours)"
    ]
    no_threshold = _gpu_hours(problem, job, None)
    if not _enough(job, no_threshold):
        short = job.work + job.overhead_gpu_h - float(no_threshold.sum())
        full = int((no_threshold >= job.gpus * slot_h - EPS).sum())
        if full < window:
            parts.append(f"capacity: fewer than {job.gpus} GPUs are free in {window - full} "
                         "slots of every allowed zone")
        else:
            parts.append("the window between release and deadline is too short")
        end = _deadline_needed(problem, job, _hard(problem))
        if end is not None:
            parts.append(f"latest deadline needed: {end.isoformat()}")
        elif not _gpu_hours(problem, job, None, window=False).any():
            parts.append(f"no allowed zone ever has {job.gpus_min} GPUs free; raise "
                         "capacity_gpus, allow more zones or use fewer GPUs")
        else:
            later = math.ceil(short / (job.gpus * slot_h) - 1e-9) * slot_h
            parts.append(f"move the deadline at least {later:g} h later or free capacity")
    elif problem.threshold is not None and problem.threshold_mode == "hard":
        needed = _threshold_needed(problem, job)
        if needed is not None:
            excluded = int((no_threshold > 0).sum()) - have
            parts.append(
                f"the carbon threshold {problem.threshold:g} g/kWh excludes {excluded} slots; "
                f"threshold needed: {_tenth_up(needed):g} g/kWh"
            )
        end = _deadline_needed(problem, job, problem.threshold)
        if end is not None:
            parts.append(f"or keep the threshold and move the deadline to {end.isoformat()}")
    return "; ".join(parts)


def _runs(gpu_hours: np.ndarray, min_len: int) -> list[float]:
    """GPU-hours of each maximal run of usable slots at least ``min_len`` long."""
    return [float(gpu_hours[s : e + 1].sum()) for s, e in stretches(gpu_hours > 0)
            if e - s + 1 >= min_len]


def explain_runs(problem: PlanningProblem, job: JobSpec) -> str | None:
    """A sentence if ``job`` has room, but not in max_interruptions + 1 runs of at least
    min_run slots each (runs across zones count as one: optimistic), else None."""
    if job.max_starts is None and job.min_run_slots <= 1 and not job.loses_time:
        return None
    room = _gpu_hours(problem, job, _hard(problem))
    fewest = _fewest_runs(job, room)
    if fewest is not None and (job.max_starts is None or fewest <= job.max_starts):
        return None
    limit = "unlimited" if job.max_starts is None else job.max_starts - 1
    if fewest is None:
        # each run pays its overhead and a save, but one save is never made
        kept = [max(r - job.segment_gpu_h, 0.0) for r in _runs(room, job.min_run_slots)]
        most = sum(kept) + (job.save_gpu_h if any(kept) else 0.0)
        save = (f" and a checkpoint save ({job.save_gpu_h:g} GPU-hours) between two"
                if job.save_h > 0 else "")
        fix = (f"its free stretches{' of at least min_run' if job.min_run_slots > 1 else ''} "
               f"hold at most {most:g} of the {job.work:g} GPU-hours after a restart "
               f"overhead ({job.overhead_gpu_h:g} GPU-hours) each{save}; "
               f"{'use a shorter minimum run, ' if job.min_run_slots > 1 else ''}"
               "move the deadline later or free capacity")
        needed = _threshold_needed(problem, job) if _hard(problem) is not None else None
        if needed is not None:
            fix += f", or raise the threshold (threshold needed: {_tenth_up(needed):g} g/kWh)"
    else:
        fix = f"raise max_interruptions to at least {fewest - 1}"
    return (
        f"job '{job.name}' has enough usable slots, but not in few enough runs: "
        f"max_interruptions = {limit}, min_run = {job.min_run_slots} slot(s); {fix}"
    )


def _tenth_up(value: float) -> float:
    """Rounded up to 0.1 g/kWh (a suggested threshold must not fall below the need)."""
    return math.ceil(value * 10 - 1e-6) / 10


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
        f"{_stamp(problem, first)} and {(problem.slots[last] + _step(problem)).isoformat()}, "
        "limited further by deadlines, "
        f"one-zone-at-a-time, run lengths and interruptions); raise capacity_gpus, allow more "
        f"zones, or move a deadline later (the earliest is '{tight.name}')"
    )


def explain(problem: PlanningProblem) -> str:
    """Why the MILP found the problem infeasible, job by job first."""
    for check in (explain_job, explain_runs):
        reasons = [r for r in (check(problem, j) for j in problem.jobs) if r]
        if reasons:
            return "infeasible: " + " | ".join(reasons)
    if len(problem.jobs) == 1:
        job = problem.jobs[0]
        limits = ["max_interruptions" + (" (each size change is a restart)"
                                         if not job.rigid and job.resize_h is None else ""),
                  f"min_run = {job.min_run_slots} slot(s)", "transfer_time"]
        if job.save_h > 0:
            limits.append("checkpoint_save")
        if job.max_moves is not None and len(job.zones) > 1:
            limits.append("max_migrations")
        return (
            f"infeasible: job '{job.name}' has enough usable slots, but no schedule meets "
            f"all its limits together ({', '.join(limits)}, one zone at a time); relax one "
            "of them or move the deadline later"
        )
    return "infeasible: " + explain_shared(problem)
