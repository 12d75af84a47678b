"""A schedule as arrays, whoever produced it (MILP, exact method, greedy heuristic).

``gpus[j, z, t]`` GPUs held and ``run[j, z, t]`` GPU-hours run (work plus what is
lost: restart overheads, checkpoint saves, resizes) by job ``j`` in zone ``z`` during
slot ``t``.  A *segment* is a stretch of the run that a stop ends (and, when the job's
size changes count as restarts, a size change): every segment but the last ends in a
checkpoint save (``save_h``), every segment begins with a restart overhead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from greenepoch.solvers.problem import JobSpec, PlanningProblem

EPS = 1e-6


@dataclass(frozen=True)
class Schedule:
    gpus: np.ndarray
    run: np.ndarray

    @classmethod
    def empty(cls, problem: PlanningProblem) -> Schedule:
        shape = (len(problem.jobs), len(problem.zones), problem.n_slots)
        return cls(np.zeros(shape, dtype=np.int64), np.zeros(shape))

    def held(self, j: int) -> np.ndarray:
        """[zone, slot] bool: job j holds GPUs there."""
        return self.gpus[j] > 0

    def started(self, j: int) -> np.ndarray:
        """[zone, slot] bool: a slot held in z that was not held in z the slot before."""
        held = self.held(j)
        prev = np.zeros_like(held)
        prev[:, 1:] = held[:, :-1]
        return held & ~prev

    def starts(self, j: int) -> int:
        """Runs started (:meth:`started`)."""
        return int(self.started(j).sum())

    def resized(self, j: int) -> np.ndarray:
        """[zone, slot] bool: job j holds a different number of GPUs than in the slot
        before, in the same zone (held in both)."""
        g = self.gpus[j]
        out = np.zeros(g.shape, dtype=bool)
        out[:, 1:] = (g[:, 1:] > 0) & (g[:, :-1] > 0) & (g[:, 1:] != g[:, :-1])
        return out

    def resizes(self, j: int) -> int:
        """Size changes between consecutive held slots in one zone."""
        return int(self.resized(j).sum())

    def resized_gpus(self, j: int) -> int:
        """The larger size of each size change, summed (what an in-place resize loses
        ``resize_h`` hours of)."""
        g = self.gpus[j]
        larger = np.zeros_like(g)
        larger[:, 1:] = np.maximum(g[:, 1:], g[:, :-1])
        return int(larger[self.resized(j)].sum())

    def segment_starts(self, job: JobSpec, j: int) -> np.ndarray:
        """[zone, slot] bool: slots that begin a segment of job j's run: every start and,
        when a size change is a restart (``resize_h`` None), every size change."""
        out = self.started(j)
        return out | self.resized(j) if job.resize_h is None else out

    def segments(self, job: JobSpec, j: int) -> int:
        """Segments of job j's run: what counts toward ``max_starts`` (one more than its
        interruptions); each but the first follows a checkpoint save."""
        return int(self.segment_starts(job, j).sum())

    def moves(self, j: int, home: int) -> list[tuple[int, int]]:
        """(zone, slot) of every checkpoint move: the first slot held in a zone other
        than the previous run's (home before the first run)."""
        held = self.held(j)
        out, last = [], home
        for t in np.flatnonzero(held.any(axis=0)).tolist():
            z = int(np.flatnonzero(held[:, t])[0])
            if z != last:
                out.append((z, t))
                last = z
        return out

    def lost_gpu_h(self, job: JobSpec, j: int) -> float:
        """GPU-hours job j's run loses: restart overheads, checkpoint saves and in-place
        resizes (:meth:`JobSpec.lost_gpu_h`)."""
        in_place = self.resized_gpus(j) if job.resize_h is not None else 0
        return job.lost_gpu_h(self.segments(job, j), in_place)

    def work_done(self, problem: PlanningProblem, j: int) -> float:
        """GPU-hours run less those lost (:meth:`lost_gpu_h`)."""
        job = problem.jobs[j]
        return float(self.run[j].sum() - self.lost_gpu_h(job, j))


def emissions_kg(problem: PlanningProblem, schedule: Schedule, j: int) -> float:
    """Running emissions of job j (kg CO2eq) on the problem's intensities."""
    job = problem.jobs[j]
    run = schedule.run[j]
    coef = job.power_kw * problem.pue[:, None] * problem.intensity / 1000.0
    return float((run * coef).sum())


def move_charges(problem: PlanningProblem, schedule: Schedule, j: int) -> list[tuple[int, int]]:
    """(zone, slot) at which each checkpoint move of job j is charged: the cleanest slot
    of the destination from the end of the previous run to the latest departure that
    leaves the transfer time before the resume (where the model moves it); the resume
    slot when that window is empty."""
    job = problem.jobs[j]
    ran = np.flatnonzero(schedule.held(j).any(axis=0))
    out = []
    for z, resume in schedule.moves(j, job.home):
        before = ran[ran < resume]
        lo = int(before[-1]) + 1 if len(before) else job.first
        hi = resume - job.transfer_slots
        t = lo + int(np.argmin(problem.intensity[z, lo : hi + 1])) if hi >= lo else resume
        out.append((z, t))
    return out


def transfer_kg(problem: PlanningProblem, schedule: Schedule, j: int) -> float:
    """Emissions of moving job j's checkpoint (see :func:`move_charges`)."""
    job = problem.jobs[j]
    per_gb = job.checkpoint_gb * job.transfer_kwh_per_gb / 1000.0
    charges = move_charges(problem, schedule, j)
    return sum(per_gb * float(problem.intensity[z, t]) for z, t in charges)


def objective(problem: PlanningProblem, schedule: Schedule) -> float:
    """The MILP's objective evaluated on a schedule."""
    return sum(job_objective(problem, schedule, j) for j in range(len(problem.jobs)))


def job_objective(problem: PlanningProblem, schedule: Schedule, j: int) -> float:
    """Job ``j``'s share of :func:`objective` (the objective is a sum over jobs)."""
    job = problem.jobs[j]
    total = 0.0
    for z in job.zones:
        total += float((schedule.run[j, z] * problem.cost_per_gpu_h(job, z)).sum())
    if job.migrates_at_cost:
        for z, t in move_charges(problem, schedule, j):
            total += float(problem.migration_cost(job, z)[t])
    return total


def stretches(held: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each maximal stretch of True in ``held``."""
    edges = np.diff(np.concatenate(([0], held.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(),
                    (np.flatnonzero(edges == -1) - 1).tolist(), strict=True))


def drop_idle_runs(problem: PlanningProblem, schedule: Schedule, j: int) -> bool:
    """Release job j's runs that do no work (in place): runs whose GPU-hours are no more
    than what they make the job lose (their restart overhead, the save before them,
    their resizes; time-limited MILP plans can end in such restarts).  Fewer starts,
    moves and resizes, so every limit still holds.  True if any was released."""
    dropped = False
    before = schedule.work_done(problem, j)  # changes only when a run is released
    for z in range(len(problem.zones)):
        for t0, t1 in stretches(schedule.held(j)[z]):
            gpus = schedule.gpus[j, z, t0 : t1 + 1].copy()
            run = schedule.run[j, z, t0 : t1 + 1].copy()
            schedule.gpus[j, z, t0 : t1 + 1] = 0
            schedule.run[j, z, t0 : t1 + 1] = 0.0
            after = schedule.work_done(problem, j)
            if after >= before - EPS:
                dropped, before = True, after
            else:
                schedule.gpus[j, z, t0 : t1 + 1] = gpus
                schedule.run[j, z, t0 : t1 + 1] = run
    return dropped


def _release_idle_tails(problem: PlanningProblem, schedule: Schedule, j: int) -> None:
    """Release held slots that run nothing at the end of a run while the run stays
    at least the minimum run length long."""
    job = problem.jobs[j]
    for z in range(len(problem.zones)):
        for t0, t1 in stretches(schedule.held(j)[z]):
            while t1 - t0 + 1 > job.min_run_slots and schedule.run[j, z, t1] <= EPS:
                schedule.gpus[j, z, t1] = 0
                schedule.run[j, z, t1] = 0.0
                t1 -= 1


def trim_excess(problem: PlanningProblem, schedule: Schedule, j: int) -> None:
    """Cut job j's work beyond its need (in place), from the end of its run: the job
    stops once its work is done, so its last held slot is only partly run (earlier
    slots too, in plans holding more than they need; the dearest zone first within a
    slot).  A start slot (and a size change that is a restart) keeps its restart
    overhead; runs left doing no work are released (:func:`drop_idle_runs`: each frees
    its overhead, the save before it and its resizes, trimmed again), and so
    are held slots with nothing to run (with a minimum run length, only while the run
    stays that long).  The plan's cost never rises."""
    job = problem.jobs[j]
    _trim_work(problem, schedule, j)
    while job.loses_time and drop_idle_runs(problem, schedule, j):
        _trim_work(problem, schedule, j)  # a trim may leave another run doing nothing
    if job.min_run_slots > 1:
        _release_idle_tails(problem, schedule, j)


def _trim_work(problem: PlanningProblem, schedule: Schedule, j: int) -> None:
    job = problem.jobs[j]
    excess = schedule.work_done(problem, j) - job.work
    if excess <= EPS:
        return
    cost = np.vstack([problem.cost_per_gpu_h(job, z) for z in range(len(problem.zones))])
    zs, ts = np.nonzero(schedule.gpus[j])
    floor = np.where(schedule.resized(j), job.resize_floor(problem.slot_h), 0.0)
    floor[schedule.started(j)] = job.restart_floor(problem.slot_h)
    for i in np.lexsort((-cost[zs, ts], -ts)).tolist():
        z, t = int(zs[i]), int(ts[i])
        cut = min(excess, schedule.run[j, z, t] - float(floor[z, t]))
        if cut > 0:
            schedule.run[j, z, t] -= cut
            excess -= cut
            if schedule.run[j, z, t] <= EPS and job.min_run_slots <= 1:
                schedule.gpus[j, z, t] = 0
                schedule.run[j, z, t] = 0.0
        if excess <= EPS:
            return
