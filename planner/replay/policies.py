"""Replay policies behind one interface (:class:`~planner.replay.engine.ReplayPolicy`).

* ``run-now``: carbon-agnostic, runs from submission until done.
* ``threshold``: runs while the live intensity (the last observed slot) is low:
  starts/resumes when it is at or below the zone's threshold, and once running
  pauses only when it rises above threshold x (1 + hysteresis), never pauses a
  run younger than the minimum run length, and a deadline guard forces running
  when pausing for one more epoch would leave too few slots.  The threshold is
  fixed (gCO2eq/kWh) or, by default, the ``quantile`` of the last ``window_h``
  hours of known data per zone.
* ``greedy``: from the latest forecast, an interruptible job holds each slot of
  the epoch that is among the ``k`` lowest-forecast slots before its deadline
  (``k`` = slots still needed); a non-interruptible job starts when the
  lowest-mean contiguous window of its length starts in the epoch; a deadline
  guard runs the whole epoch when that would leave too few slots after it.
* ``milp``: the receding-horizon decision of :mod:`.decide` (shared with ``greenepoch
  run --policy replan``) on the latest forecast, re-planned at every forecast issue
  (or every ``replan_every_h`` hours), when a job arrives or the plan could not be
  followed, over at most ``horizon_h`` hours: each job alone exactly, the planner's
  MILP (warm-started) for the jobs of a zone that contend for its capacity.
* ``oracle``: perfect foresight over each job's whole window (from the epoch it is
  first seen at to its deadline), exact per job, the MILP for jobs that share capacity.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from greenepoch.data.errors import (
    DataError,
    GreenEpochError,
    InfeasibleError,
    RequestError,
    param,
)
from greenepoch.planner.model import DEFAULT_EGRESS_USD_PER_GB, DEFAULT_TRANSFER_KWH_PER_GB
from greenepoch.planner.replay.decide import Pending, Stats, decide
from greenepoch.planner.replay.engine import Compiled, ForecastFeed, JobState, ReplayPolicy, View
from greenepoch.solvers import dp
from greenepoch.solvers.problem import JobSpec, PlanningProblem, SolveSettings
from greenepoch.solvers.single_job import cheapest_order, cheapest_window
from greenepoch.solvers.solve import solve_problem


def _full(view: View) -> np.ndarray:
    return np.full((len(view.active), view.n_slots), view.slot_h)


class RunNow(ReplayPolicy):
    name = "run-now"

    def decide(self, view: View) -> np.ndarray:
        return _full(view)


class Threshold(ReplayPolicy):
    """Pause above a threshold, resume below it (hysteresis, min run, deadline guard)."""

    name = "threshold"

    def __init__(self, threshold: float | None = None, quantile: float = 0.3,
                 window_h: float = 168.0, hysteresis: float = 0.1, min_run_h: float = 2.0,
                 ) -> None:
        if threshold is None and not 0 < quantile < 1:
            raise RequestError(f"threshold {param('quantile')} = {quantile}; give a value in "
                               "(0, 1), e.g. 0.3")
        if threshold is not None and not threshold >= 0:
            raise RequestError(f"{param('threshold')} = {threshold:g} g/kWh is below 0; give 0 "
                               f"or more (e.g. 250), or None to use a {param('quantile')} of "
                               "the last week's intensity")
        # a running job pauses above threshold x (1 + hysteresis): a fraction of it
        if not 0 <= hysteresis <= 1:
            raise RequestError(f"{param('hysteresis')} = {hysteresis:g}; give a fraction of the "
                               "threshold in [0, 1], e.g. 0.1 for 10 %")
        self.threshold = threshold
        self.quantile = quantile
        self.window_h = window_h
        self.hysteresis = hysteresis
        self.min_run_h = min_run_h
        self._day = -1
        self._thr = np.zeros(0)

    def reset(self, c: Compiled, actual: np.ndarray | None, feed: ForecastFeed | None) -> None:
        self._day = -1

    def thresholds(self, view: View) -> np.ndarray:
        """Threshold per zone (gCO2eq/kWh), refreshed once a day from known data."""
        c = view.c
        if self.threshold is not None:
            return np.full(len(c.zones), float(self.threshold))
        day = int((view.t - c.t0) * c.slot_h // 24)
        if day != self._day:
            width = max(1, int(self.window_h / c.slot_h))
            self._thr = np.quantile(view.known[:, -width:], self.quantile, axis=1)
            self._day = day
        return self._thr

    def decide(self, view: View) -> np.ndarray:
        c, s, t, act = view.c, view.s, view.t, view.active
        z = c.zone[act]
        live = view.known[z, -1]
        thr = self.thresholds(view)[z]
        running = s.running[act]
        left = c.last[act] - t + 1
        # pausing now means a save and a restart later (one more overhead)
        guard = c.slots_if_paused(act, s.remaining[act], running) > left - view.n_slots
        young = running & ((t - s.run_since[act]) * c.slot_h < self.min_run_h)
        keep = running & (live <= thr * (1.0 + self.hysteresis))
        start = ~running & (live <= thr)
        locked = running & ~c.interruptible[act]
        run = guard | young | keep | start | locked
        return np.where(run[:, None], view.slot_h, 0.0).repeat(view.n_slots, axis=1)


def _greedy_slots(f: np.ndarray, need: int, interruptible: bool, n: int) -> np.ndarray:
    """Which of the first ``n`` slots of ``f`` to hold (bool): those among the ``need``
    cheapest (interruptible), or from the start of the cheapest window of ``need``
    slots on when it starts among them (not).  Slots past ``f`` are held."""
    held = np.ones(n, bool)
    if need >= len(f):
        return held
    if interruptible:
        head = np.zeros(len(f), bool)
        head[cheapest_order(f)[:need]] = True
        held[: min(n, len(f))] = head[:n]
        return held
    s0 = cheapest_window(f, need)
    if s0 is not None:  # else no window of known slots: run
        held[: min(s0, n)] = False
    return held


def _greedy_runs_now(f: np.ndarray, need: int, interruptible: bool) -> bool:
    """Does slot 0 belong to the k cheapest slots / start the cheapest window of ``f``?"""
    return bool(_greedy_slots(f, need, interruptible, 1)[0])


def _slots_after(c: Compiled, s: JobState, j: int, held: np.ndarray) -> int:
    """Whole slots job ``j`` still needs after holding ``held`` (the engine's rule)."""
    left, running = float(s.remaining[j]), bool(s.running[j])
    for h in held.tolist():
        if running and not h and left > 1e-7:
            left += float(c.save[j])  # a pause loses the save that ended the run
        if h and left > 1e-7:
            oh = 0.0 if running else float(c.overhead[j])
            left -= min(c.slot_h, left + oh) - oh
        running = bool(h) and left > 1e-7
    if left <= 1e-7:
        return 0
    return int(c.slots_needed(np.array([j]), np.array([left]), np.array([running]))[0])


class Greedy(ReplayPolicy):
    """k lowest-forecast slots (interruptible) or lowest-mean window (not).

    Decided slot by slot over the epoch from the forecast issued by its start; when
    that would leave too few slots before the deadline, the whole epoch runs.
    """

    name = "greedy"
    uses_forecast = True

    def decide(self, view: View) -> np.ndarray:
        c, s, t, n = view.c, view.s, view.t, view.n_slots
        fc = view.forecast()
        out = np.zeros((len(view.active), n))
        act = view.active
        need = c.slots_needed(act, s.remaining[act], s.running[act])
        for i, j in enumerate(act.tolist()):
            left = int(c.last[j]) - t + 1
            if left <= 0 or (s.running[j] and not c.interruptible[j]):
                out[i] = view.slot_h
                continue
            held = _greedy_slots(fc[c.zone[j], :left], int(need[i]),
                                 bool(c.interruptible[j]), n)
            # deadline guard: what the epoch leaves undone must fit in the slots after it
            if _slots_after(c, s, j, held) > max(left - n, 0):
                held[:] = True
            out[i] = np.where(held, view.slot_h, 0.0)
        return out


def window_problem(c: Compiled, t: int, end: int, intensity: np.ndarray,
                   jobs: list[tuple[int, float, int]], reserved: np.ndarray) -> PlanningProblem:
    """The planner's problem for ``jobs`` on slots ``[t, end)``, built from the arrays.

    ``intensity``: [zone, end - t] what the plan is judged on; ``jobs``: (job index,
    hours of work required, exclusive end slot), each released at its submission slot
    or ``t``, whichever is later; ``reserved``: [zone, end - t] GPUs already taken.
    The problem holds the jobs' zones (in zone order) and runs to the last job's end.
    Raises :class:`~greenepoch.data.errors.InfeasibleError` when the GPUs already taken
    exceed a zone's capacity (the caller runs the jobs now) and
    :class:`~greenepoch.data.errors.DataError` when an intensity is unknown.
    """
    zone_ids = sorted({int(c.zone[j]) for j, _, _ in jobs})
    at = {z: i for i, z in enumerate(zone_ids)}
    n = max(stop for _, _, stop in jobs) - t
    left = c.capacity[zone_ids, None] - reserved[zone_ids]
    if (left < 0).any():
        i, k = np.argwhere(left < 0)[0].tolist()
        raise InfeasibleError(
            f"zone {c.zones[zone_ids[i]]}: jobs that must run on hold "
            f"{int(reserved[zone_ids[i], k])} GPUs of {int(c.capacity[zone_ids[i]])} at "
            f"{c.times[t + k].isoformat()}; no room to plan the others")
    values = np.array(intensity[zone_ids, :n], dtype=float)
    if np.isnan(values).any():
        raise DataError("intensities do not cover the replay window; check the data range")
    specs = tuple(JobSpec(
        name=c.names[j], gpus=int(c.gpus[j]), gpus_min=int(c.gpus[j]),
        work=float(req_h * c.gpus[j]), power_kw=float(c.power[j]),
        first=max(t, int(c.first[j])) - t, last=stop - t - 1,
        zones=(at[int(c.zone[j])],), home=at[int(c.zone[j])],
        overhead_h=float(c.overhead[j]), save_h=float(c.save[j]),
        max_starts=None if c.interruptible[j] else 1,
        min_run_slots=1, checkpoint_gb=0.0, egress_usd_per_gb=DEFAULT_EGRESS_USD_PER_GB,
        transfer_slots=0, transfer_kwh_per_gb=DEFAULT_TRANSFER_KWH_PER_GB, allow_split=False,
    ) for j, req_h, stop in jobs)
    return PlanningProblem(
        slots=pd.DatetimeIndex(c.times[t : t + n], name="time"), slot_h=c.slot_h,
        zones=tuple(c.zones[z] for z in zone_ids), jobs=specs, intensity=values,
        pue=c.pue[zone_ids].astype(float), capacity=left[:, :n].astype(np.int64), price=None)


def plan_window(c: Compiled, t: int, end: int, intensity: np.ndarray,
                jobs: list[tuple[int, float, int]], reserved: np.ndarray,
                time_limit_s: float, mip_gap: float, solver: str = "highs",
                ) -> tuple[dict[int, np.ndarray], str]:
    """Plan jobs on slots ``[t, end)`` with the planner's MILP (arguments as
    :func:`window_problem`).

    Returns hours per slot for each job (over ``[t, end)``) and the solve status.
    Raises a :class:`~greenepoch.data.errors.GreenEpochError` when no plan was found.
    """
    problem = window_problem(c, t, end, intensity, jobs, reserved)
    settings = SolveSettings(solver, pd.Timedelta(seconds=time_limit_s), mip_gap)
    outcome = solve_problem(problem, settings)
    sched = outcome.schedule
    out = {}
    n = end - t
    for jj, (j, _, _) in enumerate(jobs):
        gpus = sched.gpus[jj].sum(axis=0)
        run = sched.run[jj].sum(axis=0) / c.gpus[j]
        hours = np.where(gpus > 0, np.maximum(run, 1e-9), 0.0)
        row = np.zeros(n)
        row[: len(hours)] = hours[:n]
        out[j] = row
    return out, f"{outcome.method}:{outcome.solution.status.name.lower()}"


class Milp(ReplayPolicy):
    """The shared receding-horizon decision (:func:`~.decide.decide`, also behind
    ``greenepoch run --policy replan``) on the latest forecast.

    Re-planned whenever a forecast is issued (``replan_every_h`` None, the default:
    hourly with the default ``forecast_every``) or every ``replan_every_h`` hours, and
    whenever a job arrives or the plan could not be followed, over at most
    ``horizon_h`` hours; each joint MILP is warm-started from the previous plan.
    """

    name = "milp"
    uses_forecast = True

    def __init__(self, replan_every_h: float | None = None, horizon_h: float = 168.0,
                 time_limit_s: float = 10.0, mip_gap: float = 1e-3) -> None:
        for value, name, example in ((replan_every_h, param("replan_every_h"), "1h"),
                                     (horizon_h, param("horizon_h"), "168h"),
                                     (time_limit_s, param("time_limit_s"), "10s")):
            if value is not None and not value > 0:
                raise RequestError(f"{name} must be longer than 0; give e.g. {example}")
        self.replan_every_h = replan_every_h
        self.horizon_h = horizon_h
        self.time_limit_s = time_limit_s
        self.mip_gap = mip_gap
        self.info: dict = {}

    def reset(self, c: Compiled, actual: np.ndarray | None, feed: ForecastFeed | None) -> None:
        self.feed = feed
        self.plan: dict[int, tuple[int, np.ndarray]] = {}
        self.considered: set[int] = set()
        self.next_replan = -1
        self.stats = Stats()
        self.info = {"replans": 0, "solves": 0, "fallbacks": 0, "solve_seconds": 0.0}

    def _hours(self, j: int, t: int, n: int) -> np.ndarray:
        start, row = self.plan.get(j, (t, np.zeros(0)))
        out = np.zeros(n)
        seg = row[max(0, t - start) : max(0, t - start) + n]
        out[: len(seg)] = seg
        return out

    def _deviated(self, view: View) -> bool:
        for j in view.active.tolist():
            if j not in self.considered:
                return True
            if view.t > view.c.first[j] and bool(self._hours(j, view.t - 1, 1)[0] > 0) != \
                    bool(view.s.running[j]):
                return True
        return False

    def _due(self, view: View) -> bool:
        """A new forecast was issued since the last plan (or ``replan_every_h`` passed)."""
        if self.replan_every_h is None and self.feed is not None:
            every = self.feed.every
            return view.t >= self.next_replan or (view.t - view.c.t0) % every == 0
        return view.t >= self.next_replan

    def decide(self, view: View) -> np.ndarray:
        if self._due(view) or self._deviated(view):
            self._replan(view, view.forecast())
        return np.vstack([self._hours(j, view.t, view.n_slots) for j in view.active.tolist()])

    def _replan(self, view: View, fc: np.ndarray) -> None:
        c, t = view.c, view.t
        act = view.active.tolist()
        jobs = pending(c, view.s, t, act)
        n = max(1, min(fc.shape[1], max(p.end for p in jobs),
                       round(self.horizon_h / c.slot_h)))
        previous = {j: self._hours(j, t, n) for j in act if j in self.plan}
        choices = decide(fc[:, :n], c.slot_h, jobs, pue=c.pue, capacity=c.capacity,
                         previous=previous, time_limit_s=self.time_limit_s,
                         mip_gap=self.mip_gap, times=c.times[t : t + n], stats=self.stats)
        self.plan = {j: (t, choice.hours) for j, choice in choices.items()}
        self.considered = set(act)
        every = self.replan_every_h
        if every is None and self.feed is not None:
            self.next_replan = t + self.feed.every - (t - c.t0) % self.feed.every
        else:
            self.next_replan = t + max(1, round((every or c.slot_h) / c.slot_h))
        self.info.update(replans=self.info["replans"] + 1, solves=self.stats.solves,
                         fallbacks=self.stats.fallbacks,
                         solve_seconds=self.stats.solve_seconds)


def pending(c: Compiled, s: JobState, t: int, jobs: list[int]) -> list[Pending]:
    """The replay's jobs ``jobs`` at slot ``t`` as :func:`~.decide.decide` reads them."""
    return [Pending(key=j, name=c.names[j], zone=int(c.zone[j]), gpus=int(c.gpus[j]),
                    power_kw=float(c.power[j]), remaining_h=float(s.remaining[j]),
                    running=bool(s.running[j]), end=int(c.last[j]) + 1 - t,
                    overhead_h=float(c.overhead[j]), save_h=float(c.save[j]),
                    interruptible=bool(c.interruptible[j])) for j in jobs]


class Oracle(ReplayPolicy):
    """The MILP with perfect foresight: each job's best slots in its whole window.

    Jobs of one zone whose windows overlap form a component; a component whose
    jobs' individual optima fit the capacity is optimal as is, otherwise it is
    planned jointly by the MILP (``time_limit_s``; a time-limited component is
    recorded in ``info['limited']``).  Individual optima are the single-job optimisers
    (:mod:`~greenepoch.solvers.single_job`) when a job has no checkpoint overhead or
    save and whole-slot work, else the exact dynamic programme
    (:func:`~greenepoch.solvers.dp.best_plan`).
    """

    name = "oracle"
    clairvoyant = True

    def __init__(self, time_limit_s: float = 60.0, mip_gap: float = 1e-6) -> None:
        self.time_limit_s = time_limit_s
        self.mip_gap = mip_gap
        self.info: dict = {}

    def reset(self, c: Compiled, actual: np.ndarray | None, feed: ForecastFeed | None) -> None:
        if actual is None:
            raise RequestError("the oracle needs the actual intensities")
        self.plan: dict[int, tuple[int, np.ndarray]] = {}
        self.info = {"components": 0, "joint": 0, "limited": 0, "fallbacks": 0}
        for comp in _components(c):
            self.info["components"] += 1
            lo = int(c.first[comp].min())
            hi = int(c.last[comp].max()) + 1
            rows = {j: self._alone(c, actual, j) for j in comp.tolist()}
            used = np.zeros(hi - lo)
            for j, row in rows.items():
                used[c.first[j] - lo : c.last[j] + 1 - lo] += (row > 0) * c.gpus[j]
            if (used > c.capacity[c.zone[comp[0]]]).any():
                self.info["joint"] += 1
                try:
                    joint, status = plan_window(
                        c, lo, hi, actual[:, lo:hi],
                        [(j, float(c.work[j]), int(c.last[j]) + 1) for j in comp.tolist()],
                        np.zeros((len(c.zones), hi - lo), dtype=np.int64),
                        self.time_limit_s, self.mip_gap)
                    self.info["limited"] += "optimal" not in status
                    rows = {j: row[c.first[j] - lo : c.last[j] + 1 - lo]
                            for j, row in joint.items()}
                except GreenEpochError:
                    self.info["fallbacks"] += 1
            for j, row in rows.items():
                self.plan[j] = (int(c.first[j]), row)

    def _alone(self, c: Compiled, actual: np.ndarray, j: int) -> np.ndarray:
        """Held hours per slot over the job's window that minimise its emissions alone:
        the cheapest slots or window (whole-slot work, no overhead or save), else the
        DP."""
        lo, hi = int(c.first[j]), int(c.last[j]) + 1
        f = actual[c.zone[j], lo:hi]
        slots = c.work[j] / c.slot_h
        row = np.zeros(len(f))
        if c.overhead[j] == 0 and c.save[j] == 0 and abs(slots - round(slots)) < 1e-9:
            k = round(slots)
            if c.interruptible[j]:
                row[cheapest_order(f)[:k]] = c.slot_h
            else:
                s0 = cheapest_window(f, k)
                if s0 is None:
                    raise DataError(f"job '{c.names[j]}': no {k} known slots in a row")
                row[s0 : s0 + k] = c.slot_h
            return row
        problem = window_problem(c, lo, hi, actual[:, lo:hi], [(j, float(c.work[j]), hi)],
                                 np.zeros((len(c.zones), hi - lo), dtype=np.int64))
        job = problem.jobs[0]
        found = dp.best_plan(problem, job, dp.job_slot_cost(problem, job))
        if found is None:
            raise InfeasibleError(f"job '{c.names[j]}': no plan in its window")
        return np.where(found[1] >= 0, c.slot_h, 0.0)

    def decide(self, view: View) -> np.ndarray:
        out = np.zeros((len(view.active), view.n_slots))
        for i, j in enumerate(view.active.tolist()):
            start, row = self.plan[j]
            seg = row[view.t - start : view.t - start + view.n_slots]
            out[i, : len(seg)] = seg
        return out


def _components(c: Compiled) -> list[np.ndarray]:
    """Groups of jobs in one zone whose windows overlap (chains included)."""
    out = []
    for z in range(len(c.zones)):
        idx = np.flatnonzero(c.zone == z)
        if not len(idx):
            continue
        idx = idx[np.argsort(c.first[idx], kind="stable")]
        reach = np.maximum.accumulate(c.last[idx])
        breaks = np.flatnonzero(c.first[idx][1:] > reach[:-1]) + 1
        out.extend(np.split(idx, breaks))
    return out


POLICIES: dict[str, Callable[[], ReplayPolicy]] = {
    "run-now": RunNow, "threshold": Threshold, "greedy": Greedy, "milp": Milp,
    "oracle": Oracle,
}


def get_policy(name: str, **settings: object) -> ReplayPolicy:
    """A fresh policy by name."""
    if name not in POLICIES:
        raise RequestError(
            f"unknown replay policy {name!r}; use one of {', '.join(POLICIES)}"
        )
    try:
        return POLICIES[name](**settings)
    except TypeError as exc:
        raise RequestError(f"policy '{name}' does not take {sorted(settings)}: {exc}") from exc
