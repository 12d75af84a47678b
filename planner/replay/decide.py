"""One receding-horizon decision on a forecast: the replay's ``milp`` policy and
``greenepoch run --policy replan`` both call :func:`decide` (one function, two callers).

At a decision (slot 0 = now) every job still to finish (a :class:`Pending`) is
planned over the slots left to its deadline on the forecast just issued, from its
progress so far, and the caller acts on slot 0 (and follows the plan until the next
forecast):

* a job that cannot pause and still meet its deadline (or a started job that may not
  be interrupted) runs: ``must run``;
* every other job is first planned alone, exactly: the cheapest slots
  (:func:`~greenepoch.solvers.single_job.cheapest_slots_partial`) when it is
  interruptible without checkpoint overhead or save, else the planner's exact dynamic
  programme (:func:`~greenepoch.solvers.dp.best_plan`);
* where the jobs of a zone, planned alone, would hold more GPUs than the zone has left
  in some slot, those jobs are planned jointly by the planner's MILP
  (:func:`~greenepoch.solvers.solve.solve_problem`), warm-started from the previous
  decision's plan shifted to now (the solver's baseline start; used when it is still
  feasible).

Pause rule.  A job alone holds slot 0 unless the best plan that leaves it idle is
expected, on the forecast, to emit less than the best plan that runs it:
``saving = cost(run now) - cost(pause now) > 0``.  Both plans pay what a pause really
costs: a running job that pauses loses its checkpoint save (``save_h`` of work redone)
and pays the restart overhead (``overhead_h``) when it resumes; a running job that
runs on pays neither.  So a pause is taken only when the saving it expects exceeds
its checkpoint/restart cost.

A deadline beyond the forecast (or the horizon): the plan covers the forecast and
must do in it at least its share of the work (work x window / time left) and what
cannot wait; a non-interruptible job then starts when the cheapest window of its
length on the forecast starts now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.model import DEFAULT_EGRESS_USD_PER_GB, DEFAULT_TRANSFER_KWH_PER_GB
from greenepoch.solvers import dp
from greenepoch.solvers.problem import JobSpec, PlanningProblem, SolveSettings
from greenepoch.solvers.schedule import Schedule, trim_excess
from greenepoch.solvers.single_job import cheapest_slots_partial, cheapest_window
from greenepoch.solvers.solve import solve_problem

EPS = 1e-7
#: starts a plan alone with restart costs may hold ahead (the exact programme's time
#: grows with them: 48 h of work on 15-min slots, 72 h ahead: 1.4 s uncapped, 0.1 s at
#: 16); re-planned every slot, a plan rarely needs more
MAX_STARTS = 16
#: the plan's origin when the caller gives no times (only the solver's messages show it)
EPOCH = pd.Timestamp("2000-01-01", tz="UTC")


@dataclass(frozen=True)
class Pending:
    """A job still to finish, as seen at the decision (slot 0 starts now).

    ``remaining_h``: hours of work left at full size; ``running``: it held its GPUs
    in the slot before now (so running on pays no restart); ``end``: slots from now
    to its deadline (the last slot it may use is ``end - 1``; may lie beyond the
    forecast); ``overhead_h``: hours without progress at each start; ``save_h``: work
    lost at each pause (the save that ended the run).
    """

    key: int
    name: str
    zone: int
    gpus: int
    power_kw: float
    remaining_h: float
    running: bool
    end: int
    overhead_h: float = 0.0
    save_h: float = 0.0
    interruptible: bool = True

    def slots(self, paused: bool, slot_h: float) -> int:
        """Whole slots to finish: as it is, or if it pauses now (one save, one restart)."""
        hours = self.remaining_h
        if paused or not self.running:
            hours += self.overhead_h + (self.save_h if self.running else 0.0)
        return max(0, math.ceil(hours / slot_h - 1e-9)) if self.remaining_h > EPS else 0


@dataclass(frozen=True)
class Choice:
    """A job's plan from now: ``hours`` held per slot (> 0 held; the caller acts on
    slot 0), ``saving_kg`` what pausing now is expected to save over running now
    (negative: running is cheaper; None where it was not compared: must run, joint
    plans), and ``how`` it was planned (``must run``, ``alone``, ``joint``, ``fallback``)."""

    hours: np.ndarray
    saving_kg: float | None
    how: str

    @property
    def runs_now(self) -> bool:
        return bool(len(self.hours) and self.hours[0] > 0)


@dataclass
class Stats:
    """What the decisions cost: MILP solves, solves that found no plan (the jobs then
    ran at once), their seconds."""

    solves: int = 0
    fallbacks: int = 0
    solve_seconds: float = 0.0


def decide(forecast: np.ndarray, slot_h: float, jobs: Sequence[Pending], *,
           pue: np.ndarray | None = None, capacity: np.ndarray | None = None,
           previous: dict[int, np.ndarray] | None = None, time_limit_s: float = 10.0,
           mip_gap: float = 1e-3, times: pd.DatetimeIndex | None = None,
           stats: Stats | None = None) -> dict[int, Choice]:
    """Plans from now for ``jobs`` (by ``key``) on ``forecast`` ([zone, slot] g/kWh from
    now, one row per zone the jobs name; its length is the plan's horizon).

    ``pue``: per zone (default 1); ``capacity``: GPUs per zone (None: no limit, each
    job alone); ``previous``: the last decision's rows shifted to now (the MILP's warm
    start); ``times``: the slots' start times (for the solver's messages)."""
    forecast = np.asarray(forecast, dtype=float)
    n = forecast.shape[1]
    pue = np.ones(len(forecast)) if pue is None else np.asarray(pue, dtype=float)
    stats = stats if stats is not None else Stats()
    out: dict[int, Choice] = {}
    reserved = np.zeros((len(forecast), n))
    free: list[Pending] = []
    for p in jobs:
        if _must_run(p, slot_h):
            row = np.zeros(n)
            row[: p.slots(False, slot_h)] = slot_h
            out[p.key] = Choice(row, None, "must run")
            reserved[p.zone] += (row > 0) * p.gpus
            continue
        free.append(p)
    for p in free:
        out[p.key] = _alone(p, forecast[p.zone], slot_h, float(pue[p.zone]))
    if capacity is None:
        return out
    for z in range(len(forecast)):
        zone_jobs = [p for p in free if p.zone == z]
        used = reserved[z] + sum(((out[p.key].hours > 0) * p.gpus for p in zone_jobs),
                                 np.zeros(n))
        if not zone_jobs or (used <= capacity[z] + EPS).all():
            continue
        out.update(_joint(zone_jobs, forecast, slot_h, pue, capacity[z] - reserved[z],
                          previous or {}, time_limit_s, mip_gap, times, stats))
    return out


def _must_run(p: Pending, slot_h: float) -> bool:
    """No pause is affordable: started and not interruptible, at or past the deadline,
    or a pause now (one more save and restart) would leave too few slots."""
    if p.running and not p.interruptible:
        return True
    return p.end <= 1 or p.slots(True, slot_h) > p.end - 1


def _required(p: Pending, n: int, slot_h: float) -> float:
    """Hours of work the plan on ``n`` slots must do: all of it when the deadline is
    within them, else its share and what the slots after cannot hold."""
    if p.end <= n:
        return p.remaining_h
    after = (p.end - n) * slot_h
    # the window's run ends in a save, the run after it restarts
    return min(p.remaining_h, max(p.remaining_h + p.overhead_h + p.save_h - after,
                                  p.remaining_h * n / p.end, EPS))


def _alone(p: Pending, intensity: np.ndarray, slot_h: float, pue: float) -> Choice:
    """``p``'s best plan alone: run now or pause now, whichever is expected to emit less."""
    n = len(intensity)
    w = min(p.end, n)
    # kg of one full slot held
    cost = intensity[:w] * (p.gpus * p.power_kw * pue * slot_h / 1000.0)
    row = np.zeros(n)
    if p.end > n and not p.interruptible:
        need = p.slots(False, slot_h)
        start = cheapest_window(cost, need) if need <= w else 0
        if start == 0 or start is None:
            row[:need] = slot_h
        return Choice(row, None, "alone")
    work = _required(p, n, slot_h)
    run = _best(p, cost, work, slot_h, held_now=True)
    pause = _best(p, cost, work, slot_h, held_now=False)
    if run is None and pause is None:
        row[: p.slots(False, slot_h)] = slot_h
        return Choice(row, None, "must run")
    # ties run: the job finishes sooner
    runs = pause is None or (run is not None and run[0] <= pause[0] + EPS)
    best = run if runs else pause
    assert best is not None
    row[best[1]] = slot_h
    saving = None if run is None or pause is None else run[0] - pause[0]
    return Choice(row, saving, "alone")


def _best(p: Pending, cost: np.ndarray, work: float, slot_h: float, held_now: bool
          ) -> tuple[float, np.ndarray] | None:
    """Cheapest plan (kg, held slots) for ``work`` hours on slots with ``cost``, holding
    slot 0 (``held_now``) or leaving it idle; None when none fits."""
    running = p.running and held_now
    # a run that continues pays no restart; a pause loses the save and pays one later
    lost = 0.0 if running else p.overhead_h + (p.save_h if p.running else 0.0)
    if held_now and work + lost <= slot_h + EPS:
        return float(cost[0]) * (work + lost) / slot_h, np.array([0])
    if p.interruptible and p.overhead_h == 0 and p.save_h == 0:
        k = (work + lost) / slot_h
        if held_now:
            found = cheapest_slots_partial(cost[1:], k - 1)
            if found is None:
                return None
            slots = np.concatenate(([0], found + 1))
        else:
            found = cheapest_slots_partial(cost[1:], k)
            if found is None:
                return None
            slots = found + 1
        return _partial_cost(cost, slots, k), slots
    return _dp(p, cost, work, slot_h, held_now)


def _partial_cost(cost: np.ndarray, slots: np.ndarray, k: float) -> float:
    """kg of holding ``slots`` (sorted) for ``k`` slots of running: the last only in part."""
    last = k - (len(slots) - 1)
    return float(cost[slots[:-1]].sum() + last * cost[slots[-1]])


def _dp(p: Pending, cost: np.ndarray, work: float, slot_h: float, held_now: bool
        ) -> tuple[float, np.ndarray] | None:
    """The exact dynamic programme on ``p`` alone (restart overheads, saves, one start
    for a non-interruptible job).  A running job that runs on is planned as a fresh
    start with its work less one overhead (the first start's overhead it does not
    pay); one that pauses redoes its save."""
    w = len(cost)
    if w < (1 if held_now else 2):
        return None
    fresh = not (p.running and held_now)
    hours = work + (p.save_h if p.running and not held_now else 0.0) - \
        (0.0 if fresh else p.overhead_h)
    intensity = cost / (p.gpus * p.power_kw * slot_h / 1000.0)
    job = _spec(p, hours, 0 if held_now else 1, w - 1, starts=MAX_STARTS)
    problem = PlanningProblem(
        slots=pd.date_range(EPOCH, periods=w, freq=pd.Timedelta(hours=slot_h), name="time"),
        slot_h=slot_h, zones=("zone",), jobs=(job,), intensity=intensity[None, :],
        pue=np.ones(1), capacity=np.full((1, w), p.gpus, dtype=np.int64), price=None)
    slot_cost = dp.job_slot_cost(problem, job)
    forced = 0.0
    if held_now:
        # slot 0 must be held: far below any plan's cost, added back below
        forced = float(slot_cost[0, 0]) + float(slot_cost[np.isfinite(slot_cost)].sum()) + 1
        slot_cost[0, 0] -= forced
    found = dp.best_plan(problem, job, slot_cost)
    if found is None:
        return None
    value, zone_of = found
    return value + forced, np.flatnonzero(zone_of >= 0)


def _spec(p: Pending, work_h: float, first: int, last: int, starts: int | None = None
          ) -> JobSpec:
    """``p`` as the planner's job on one zone (``starts``: at most that many, when
    interruptible; one when not)."""
    zone = 0
    return JobSpec(
        name=p.name, gpus=p.gpus, gpus_min=p.gpus, work=float(work_h * p.gpus),
        power_kw=p.power_kw, first=first, last=last, zones=(zone,), home=zone,
        overhead_h=p.overhead_h, save_h=p.save_h,
        max_starts=starts if p.interruptible else 1, min_run_slots=1, checkpoint_gb=0.0,
        egress_usd_per_gb=DEFAULT_EGRESS_USD_PER_GB, transfer_slots=0,
        transfer_kwh_per_gb=DEFAULT_TRANSFER_KWH_PER_GB, allow_split=False)


def _joint(jobs: list[Pending], forecast: np.ndarray, slot_h: float, pue: np.ndarray,
           left: np.ndarray, previous: dict[int, np.ndarray], time_limit_s: float,
           mip_gap: float, times: pd.DatetimeIndex | None, stats: Stats
           ) -> dict[int, Choice]:
    """The jobs of one zone planned together by the planner's MILP within ``left`` GPUs
    per slot, warm-started from ``previous``; on failure they run at once."""
    import time

    n = forecast.shape[1]
    z = jobs[0].zone
    w = min(n, max(p.end for p in jobs))
    specs = tuple(_spec(p, _required(p, n, slot_h), 0, min(p.end, n) - 1) for p in jobs)
    if times is None:
        times = pd.date_range(EPOCH, periods=n, freq=pd.Timedelta(hours=slot_h), name="time")
    problem = PlanningProblem(
        slots=pd.DatetimeIndex(times[:w], name="time"), slot_h=slot_h, zones=(str(z),),
        jobs=specs, intensity=forecast[z : z + 1, :w].astype(float), pue=pue[z : z + 1],
        capacity=np.floor(left[None, :w] + EPS).astype(np.int64), price=None)
    start = _start(problem, jobs, previous, slot_h)
    began = time.perf_counter()
    stats.solves += 1
    try:
        outcome = solve_problem(problem, SolveSettings(
            "highs", pd.Timedelta(seconds=time_limit_s), mip_gap),
            baselines=None if start is None else {"previous plan": start})
    except GreenEpochError:
        stats.fallbacks += 1
        stats.solve_seconds += time.perf_counter() - began
        rows = {}
        for p in jobs:
            row = np.zeros(n)
            row[: p.slots(False, slot_h)] = slot_h
            rows[p.key] = Choice(row, None, "fallback")
        return rows
    stats.solve_seconds += time.perf_counter() - began
    out = {}
    for jj, p in enumerate(jobs):
        row = np.zeros(n)
        row[:w] = np.where(outcome.schedule.gpus[jj, 0] > 0, slot_h, 0.0)
        out[p.key] = Choice(row, None, "joint")
    return out


def _start(problem: PlanningProblem, jobs: list[Pending], previous: dict[int, np.ndarray],
           slot_h: float) -> Schedule | None:
    """The previous decision's plan (already shifted to now) as the solver's start, when
    every job has one; the solver drops it when it no longer fits."""
    if not all(p.key in previous for p in jobs):
        return None
    out = Schedule.empty(problem)
    w = problem.n_slots
    for jj, p in enumerate(jobs):
        row = np.zeros(w)
        seg = previous[p.key][:w]
        row[: len(seg)] = seg
        held = row > 0
        out.gpus[jj, 0, held] = p.gpus
        out.run[jj, 0, held] = p.gpus * slot_h
        trim_excess(problem, out, jj)
    return out
