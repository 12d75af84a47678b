"""The replay engine: walk through history, let a policy decide, charge what happened.

Time is cut into slots of the data's step (1 h for the shared exports); slot ``t``
covers ``[times[t], times[t] + slot_h)``.  Decisions are taken at epochs, every
``epoch`` (a whole number of slots, default 1 h) from the replay start.  A job is
first seen at the first epoch at or after its submission (``Compiled.first``): no
policy can run it earlier, so that slot starts its window for every policy, the
oracle included.  At the epoch starting at slot
``t`` a policy sees a :class:`View`: the intensities of slots before ``t`` only
(``known``), forecasts issued from them, and the state of the jobs submitted by
then.  It returns, per active job and per slot of the epoch, whether the job holds its
GPUs (any value > 0); a held slot runs in full until the job's work is done.  The engine then

1. forces what no policy may refuse: a non-interruptible job that has started runs
   on, and a job past its deadline runs until done (counted as a deadline miss);
2. admits held jobs into each zone's GPU capacity, slot by slot, in the order
   non-interruptible running, running, earliest deadline (the rest wait);
3. charges every held slot with the *actual* intensity of that slot.

Accounting (the planner's, with held slots run in full): each start (the first
one included) costs the job's
checkpoint overhead of running time without progress, and each pause (a running job
not held, its work not done) its checkpoint save: the last ``checkpoint_save_h`` of
the run before the pause saved the checkpoint, so that work is done again; a run in slot ``t`` of
``r`` hours per GPU uses ``r x gpus x gpu_power_kw x PUE`` kWh, emits that x
intensity / 1000 kg CO2eq and costs that x price / 1000 USD.  A job stops as soon
as its work is done; it completes at the slot start plus the hours run in it.
Outcomes report the job's real submission time; ``latency_h`` counts from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from greenepoch.data.errors import RequestError, param
from greenepoch.planner.model import DEFAULT_PUE
from greenepoch.planner.replay.jobs import ReplayJob

if TYPE_CHECKING:
    from greenepoch.forecasts.base import Forecaster

EPS = 1e-9


@dataclass(frozen=True)
class Scenario:
    """What is replayed.

    ``actual``: gCO2eq/kWh, UTC index ``time`` (one regular step), one column per
    zone, covering the history before ``start`` (forecasts learn from it) and the
    replayed period ``[start, end)``.  ``capacity``: GPUs per zone.  ``prices``:
    USD/MWh on the same index (NaN where unknown), or None.
    """

    actual: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    jobs: tuple[ReplayJob, ...]
    capacity: dict[str, int]
    pue: dict[str, float] = field(default_factory=dict)
    prices: pd.DataFrame | None = None
    epoch: pd.Timedelta = pd.Timedelta("1h")
    forecast: str = "default"  # forecasts.registry.DEFAULT_MODEL: the best measured (blend)
    forecast_every: pd.Timedelta = pd.Timedelta("1h")  # a new forecast every hour
    history: pd.Timedelta = pd.Timedelta("90D")  # what forecasters are fitted on


class Compiled:
    """A scenario as arrays: intensities [zone, slot] and job vectors (slot numbers)."""

    def __init__(self, sc: Scenario) -> None:
        idx = sc.actual.index
        if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
            raise RequestError("intensities need a tz-aware UTC index")
        self.sc = sc
        self.times = idx
        self.step = pd.Timedelta(idx[1] - idx[0])
        self.slot_h = self.step / pd.Timedelta("1h")
        self.zones = [str(z) for z in sc.actual.columns]
        zi = {z: i for i, z in enumerate(self.zones)}
        self.intensity = np.ascontiguousarray(sc.actual.to_numpy(dtype=float).T)
        self.intensity.setflags(write=False)
        self.t0 = int(idx.searchsorted(sc.start))
        self.t1 = int(idx.searchsorted(sc.end))
        if self.t0 >= self.t1:
            raise RequestError(
                f"replay period {sc.start} .. {sc.end} holds no data; data covers "
                f"{idx[0]} .. {idx[-1] + self.step}"
            )
        self.epoch_slots = _whole_slots(sc.epoch, self.step, param("epoch"))
        self.forecast_every_slots = _whole_slots(sc.forecast_every, self.step,
                                                 param("forecast_every"))
        self.pue = np.array([sc.pue.get(z, DEFAULT_PUE) for z in self.zones])
        self.capacity = np.array([sc.capacity.get(z, 0) for z in self.zones], dtype=np.int64)
        self.price = None if sc.prices is None else np.ascontiguousarray(
            sc.prices.reindex(index=idx, columns=self.zones).to_numpy(dtype=float).T)
        jobs = sc.jobs
        if not jobs:
            raise RequestError(f"no jobs to replay; give {param('jobs')} or a generator "
                               f"{param('spec')}")
        for j in jobs:
            if j.zone not in zi:
                raise RequestError(
                    f"job '{j.name}': zone {j.zone} is not replayed; add it to {param('zones')}"
                )
            if j.submit < sc.start or j.deadline > sc.end:
                raise RequestError(
                    f"job '{j.name}': {j.submit.isoformat()} .. {j.deadline.isoformat()} is "
                    f"not inside the replay period {sc.start.isoformat()} .. "
                    f"{sc.end.isoformat()}; widen the replay period or drop the job"
                )
            if j.checkpoint_overhead_h + j.checkpoint_save_h >= self.slot_h:
                # a one-slot run must have time to restore, and to save when it pauses
                raise RequestError(
                    f"job '{j.name}': checkpoint_overhead_h + checkpoint_save_h = "
                    f"{j.checkpoint_overhead_h + j.checkpoint_save_h:g} must be shorter than "
                    f"one slot ({self.slot_h:g} h)"
                )
            if j.gpus > sc.capacity.get(j.zone, 0):
                raise RequestError(
                    f"job '{j.name}' needs {j.gpus} GPUs but zone {j.zone} has capacity "
                    f"{sc.capacity.get(j.zone, 0)}; raise {param('capacity')}"
                )
        self.names = [j.name for j in jobs]
        self.zone = np.array([zi[j.zone] for j in jobs])
        # first slot: the first epoch at or after submission (epochs start at t0)
        sub = np.array([idx.searchsorted(j.submit.ceil(self.step)) for j in jobs])
        e = self.epoch_slots
        self.first = self.t0 + -((self.t0 - sub) // e) * e
        self.last = np.array([idx.searchsorted(j.deadline.floor(self.step)) - 1 for j in jobs])
        self.gpus = np.array([j.gpus for j in jobs], dtype=np.int64)
        self.work = np.array([j.duration_h for j in jobs])
        self.overhead = np.array([j.checkpoint_overhead_h for j in jobs])
        self.save = np.array([j.checkpoint_save_h for j in jobs])
        self.power = np.array([j.gpu_power_kw for j in jobs])
        self.interruptible = np.array([j.interruptible for j in jobs])
        short = np.flatnonzero((self.last - self.first + 1) * self.slot_h
                               < self.work + self.overhead - EPS)
        if len(short):
            k = int(short[0])
            j = jobs[k]
            seen = idx[self.first[k]] if self.first[k] < len(idx) else sc.end
            later = "" if e == 1 else (
                f" (it is first seen at the next {_hours(sc.epoch)} epoch, {seen.isoformat()})")
            raise RequestError(
                f"job '{j.name}': too few whole {_hours(self.step)} slots between submit"
                f"{later} and deadline {j.deadline.isoformat()} for its "
                f"{j.duration_h + j.checkpoint_overhead_h:g} h; move the deadline later"
                + ("" if e == 1 else f" or use a shorter {param('epoch')}")
            )

    def slots_needed(self, jobs: np.ndarray, remaining: np.ndarray,
                     running: np.ndarray) -> np.ndarray:
        """Whole slots for ``jobs`` to finish ``remaining`` hours, plus an overhead when
        not running."""
        extra = np.where(running, 0.0, self.overhead[jobs])
        return np.ceil((remaining + extra) / self.slot_h - 1e-9).astype(np.int64)

    def slots_if_paused(self, jobs: np.ndarray, remaining: np.ndarray,
                        running: np.ndarray) -> np.ndarray:
        """Whole slots for ``jobs`` to finish ``remaining`` hours if they pause now: a
        running job's pause costs its save, and every resumption an overhead."""
        lost = np.where(running, self.save[jobs], 0.0)
        return self.slots_needed(jobs, remaining + lost, np.zeros(len(jobs), bool))


def _hours(td: pd.Timedelta) -> str:
    return f"{td / pd.Timedelta('1h'):g} h"


def _whole_slots(td: pd.Timedelta, step: pd.Timedelta, name: str) -> int:
    """``td`` (the parameter ``name``, quoted) as a whole number (>= 1) of data slots."""
    ratio = td / step
    if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-9:
        raise RequestError(
            f"{name} {_hours(td)} must be a whole number (1 or more) of data slots "
            f"({_hours(step)}); give e.g. {name} {_hours(step).replace(' ', '')}"
        )
    return round(ratio)


@dataclass
class JobState:
    """Mutable per-job state over the replay (arrays over all jobs)."""

    remaining: np.ndarray  # hours of work left (at full size)
    running: np.ndarray  # held in the previous slot
    started: np.ndarray
    run_since: np.ndarray  # slot the current run started (-1 when not running)
    done: np.ndarray
    completion: np.ndarray  # hours since times[0] (NaN until done)
    emissions_kg: np.ndarray
    energy_kwh: np.ndarray
    cost_usd: np.ndarray
    starts: np.ndarray
    overhead_h: np.ndarray
    held_slots: np.ndarray
    save_h: np.ndarray  # hours of checkpoint saves lost at pauses


    @classmethod
    def new(cls, c: Compiled) -> JobState:
        n = len(c.names)
        z = np.zeros(n)
        return cls(c.work.astype(float).copy(), np.zeros(n, bool), np.zeros(n, bool),
                   np.full(n, -1), np.zeros(n, bool), np.full(n, np.nan), z.copy(), z.copy(),
                   z.copy(), np.zeros(n, np.int64), z.copy(), np.zeros(n, np.int64), z.copy())


@dataclass
class View:
    """What a policy may see at the epoch starting at slot ``t``.

    ``known`` is the intensity of slots ``[0, t)`` only ([zone, slot], read-only);
    ``forecast()`` returns ``[zone, slot]`` forecast means for slots ``t, t+1, ...``
    issued from ``known``.  ``active`` are the indices of jobs submitted by ``t``
    and not done; job vectors are on the compiled scenario ``c`` and the state ``s``.
    """

    t: int
    n_slots: int
    known: np.ndarray
    active: np.ndarray
    c: Compiled
    s: JobState
    forecast: Callable[[], np.ndarray]

    @property
    def slot_h(self) -> float:
        return self.c.slot_h


class ReplayPolicy:
    """A policy decides, at each epoch, how many hours each active job runs per slot.

    ``decide`` returns an array ``[len(view.active), view.n_slots]``: > 0 where the job
    holds its GPUs (it then runs the whole slot, or until done), 0 where it waits.
    ``clairvoyant`` policies (the
    oracle) receive the actual intensities in :meth:`reset`; no other may.
    """

    name = "base"
    clairvoyant = False
    uses_forecast = False

    def reset(self, c: Compiled, actual: np.ndarray | None, feed: ForecastFeed | None) -> None:
        """Called once before the replay starts."""

    def decide(self, view: View) -> np.ndarray:
        raise NotImplementedError


def fit_forecaster(c: Compiled, model: str | None = None) -> Forecaster:
    """The forecast model ``model`` (default the scenario's) fitted on the history before
    the replay start: what every forecast of the replay is issued from."""
    from greenepoch.forecasts.registry import get_model

    frame = c.sc.actual
    lo = int(c.times.searchsorted(c.sc.start - c.sc.history))
    history = frame.iloc[lo : c.t0]
    if len(history) < 2:
        raise RequestError(
            f"forecasts need history before the replay start {c.sc.start.isoformat()}; "
            "start the replay a week or more after the data begins"
        )
    return get_model(model or c.sc.forecast).fit(history)


#: forecasts computed at once through the model's batch path (a week of hourly
#: issues): the same values as one ``predict`` per issue (tests/planner/replay), each
#: issue a fraction of the time (blend, 4 zones, 100 h: 2.3 s alone, 0.16 s in a batch
#: of 168 on a loaded 2-core machine)
BATCH_ISSUES = 168


class ForecastFeed:
    """Forecasts issued every ``every`` slots from the data known at the issue time.

    The model is fitted once on the history before the replay start; each issue
    reads the observations before the issue time only (the model's batch path,
    ``predict_batch``, computes ``BATCH_ISSUES`` issues ahead at once, each from its own
    past).  ``perfect=True`` returns the actual values instead (perfect foresight).
    """

    def __init__(self, c: Compiled, model: str, every_slots: int, horizon_slots: int,
                 perfect: bool = False, fitted: Forecaster | None = None) -> None:
        self.c = c
        self.every = every_slots
        self.horizon = horizon_slots + self.every
        self.perfect = perfect
        self.issue = -1
        self.values = np.empty((len(c.zones), 0))
        self.model: Forecaster | None = None
        self.name = model
        self.calls = 0
        self._ahead: dict[int, np.ndarray] = {}
        if not perfect:
            self.model = fitted if fitted is not None else fit_forecaster(c, model)

    def issue_of(self, t: int) -> int:
        """The slot the forecast in force at slot ``t`` was issued at."""
        return t - (t - self.c.t0) % self.every

    def at(self, t: int) -> np.ndarray:
        """Forecast means [zone, slot] for slots ``t ..`` (at least the horizon)."""
        issue = self.issue_of(t)
        if issue != self.issue:
            self.issue = issue
            self.calls += 1
            self.values = self._issue(issue)
        return self.values[:, t - issue :]

    def _issue(self, issue: int) -> np.ndarray:
        c = self.c
        if self.perfect:
            out = c.intensity[:, issue : issue + self.horizon]
            if out.shape[1] < self.horizon:
                pad = np.repeat(out[:, -1:], self.horizon - out.shape[1], axis=1)
                out = np.hstack([out, pad])
            return out
        if issue not in self._ahead:
            self._ahead = self._batch(issue)
        return self._ahead[issue]

    def _batch(self, issue: int) -> dict[int, np.ndarray]:
        """Forecasts of the issues ``issue, issue + every, ...`` (``BATCH_ISSUES`` of them,
        within the replay), each from the observations before it."""
        c, model = self.c, self.model
        assert model is not None
        issues = issue + self.every * np.arange(BATCH_ISSUES)
        issues = issues[(issues < c.t1) | (issues == issue)]
        values = np.ascontiguousarray(c.intensity[[c.zones.index(z) for z in model.zones_]].T)
        # issue i reads values[: issues[i]] (its last known slot is issues[i] - 1)
        pred = model.predict_batch(values, c.times[0], issues - 1, 1, self.horizon)
        order = [list(model.zones_).index(z) for z in c.zones]
        return {int(i): np.clip(pred[k, :, :, 0].T[order], 0.0, None)
                for k, i in enumerate(issues.tolist())}


@dataclass(frozen=True)
class ReplayResult:
    """One policy's replay: per-job outcome (DataFrame indexed by job name) and timing."""

    policy: str
    jobs: pd.DataFrame
    seconds: float
    info: dict


def _admit(c: Compiled, s: JobState, cand: np.ndarray, t: int) -> np.ndarray:
    """Bool mask over ``cand`` of the jobs that fit each zone's capacity in slot ``t``."""
    if len(cand) == 0:
        return np.zeros(0, bool)
    zone = c.zone[cand]
    gpus = c.gpus[cand]
    need = np.bincount(zone, weights=gpus, minlength=len(c.zones))
    if (need <= c.capacity).all():
        return np.ones(len(cand), bool)
    nonint = s.running[cand] & ~c.interruptible[cand]
    order = np.lexsort((c.last[cand], ~s.running[cand], ~nonint))
    used = np.zeros(len(c.zones))
    ok = np.zeros(len(cand), bool)
    for i in order.tolist():
        z = zone[i]
        if used[z] + gpus[i] <= c.capacity[z]:
            used[z] += gpus[i]
            ok[i] = True
    return ok


def run_replay(c: Compiled, policy: ReplayPolicy, *, progress: Callable[[int], None] | None
               = None, record: bool = False, forecaster: Forecaster | None = None
               ) -> ReplayResult:
    """Replay ``policy`` over the compiled scenario and return per-job outcomes.

    ``forecaster``: the scenario's model already fitted (:func:`fit_forecaster`), shared
    by the replays of several policies; None: fitted here when the policy needs it.

    ``record``: keep the realised schedule in ``info['schedule']``, a frame with one
    row per held (job, slot): ``job`` (index), ``slot`` (absolute), ``hours`` run.
    """
    import time

    began = time.perf_counter()
    feed = None
    horizon = int((c.last - c.first).max()) + 2
    if policy.uses_forecast:
        feed = ForecastFeed(c, c.sc.forecast, c.forecast_every_slots, horizon,
                            perfect=policy.clairvoyant, fitted=forecaster)
    policy.reset(c, c.intensity if policy.clairvoyant else None, feed)
    s = JobState.new(c)
    trace: list[tuple[np.ndarray, int, np.ndarray]] | None = [] if record else None
    order = np.argsort(c.first, kind="stable")
    next_job = 0
    active: list[int] = []
    t = c.t0
    last_needed = int(c.last.max())
    while t < c.t1:
        while next_job < len(order) and c.first[order[next_job]] <= t:
            active.append(int(order[next_job]))
            next_job += 1
        active = [j for j in active if not s.done[j]]
        n_slots = min(c.epoch_slots, c.t1 - t)
        if active:
            act = np.array(active)
            def forecast(t: int = t) -> np.ndarray:
                if feed is None:
                    raise RequestError(f"policy {policy.name} asked for a forecast without "
                                       "declaring uses_forecast")
                return feed.at(t)

            known = c.intensity[:, :t]
            view = View(t, n_slots, known, act, c, s, forecast)
            plan = np.asarray(policy.decide(view), dtype=float).reshape(len(act), n_slots)
            _advance(c, s, act, plan, t, n_slots, trace)
        elif next_job >= len(order) and t > last_needed:
            break
        t += n_slots
        if progress is not None:
            progress(n_slots)
    if progress is not None and t < c.t1:
        progress(c.t1 - t)
    info = dict(getattr(policy, "info", {}))
    if trace is not None:
        info["schedule"] = pd.DataFrame({
            "job": np.concatenate([j for j, _, _ in trace] or [np.zeros(0, int)]),
            "slot": np.concatenate([np.full(len(j), t) for j, t, _ in trace]
                                   or [np.zeros(0, int)]),
            "hours": np.concatenate([h for _, _, h in trace] or [np.zeros(0)]),
        })
    return ReplayResult(policy.name, _outcomes(c, s), time.perf_counter() - began, info)


def _advance(c: Compiled, s: JobState, act: np.ndarray, plan: np.ndarray, t0: int,
             n_slots: int, trace: list | None = None) -> None:
    """Run the epoch's slots: force, admit, charge."""
    plan = np.clip(plan, 0.0, c.slot_h)
    for k in range(n_slots):
        t = t0 + k
        live = ~s.done[act]
        want = plan[:, k].copy()
        forced = live & ((s.running[act] & ~c.interruptible[act]) | (t > c.last[act]))
        want[forced] = c.slot_h
        held_mask = live & (want > 0)
        cand = act[held_mask]
        ok = _admit(c, s, cand, t)
        held = cand[ok]
        # everyone not held stops running
        stopped = act[~np.isin(act, held)]
        paused = stopped[s.running[stopped]]  # done jobs are not running
        s.remaining[paused] += c.save[paused]  # the save that ended the run is lost
        s.save_h[paused] += c.save[paused]
        s.running[stopped] = False
        s.run_since[stopped] = -1
        if len(held) == 0:
            continue
        new = ~s.running[held]
        oh = np.where(new, c.overhead[held], 0.0)
        # a held slot runs in full until the job is done
        r = np.minimum(c.slot_h, s.remaining[held] + oh)
        progress = r - oh
        if trace is not None:
            trace.append((held.copy(), t, r.copy()))
        s.starts[held] += new
        s.overhead_h[held] += oh
        s.started[held] = True
        s.run_since[held[new]] = t
        s.running[held] = True
        s.held_slots[held] += 1
        s.remaining[held] -= progress
        kwh = r * c.gpus[held] * c.power[held] * c.pue[c.zone[held]]
        s.energy_kwh[held] += kwh
        s.emissions_kg[held] += kwh * c.intensity[c.zone[held], t] / 1000.0
        if c.price is not None:
            s.cost_usd[held] += kwh * c.price[c.zone[held], t] / 1000.0
        fin = held[s.remaining[held] <= 1e-7]
        if len(fin):
            s.done[fin] = True
            s.remaining[fin] = 0.0
            s.completion[fin] = t * c.slot_h + r[np.isin(held, fin)]
            s.running[fin] = False


def _outcomes(c: Compiled, s: JobState) -> pd.DataFrame:
    base = c.times[0]
    completion = pd.DatetimeIndex(base + pd.to_timedelta(s.completion, unit="h"))
    # the real submission, not the epoch it was first seen at
    submit = pd.DatetimeIndex([j.submit for j in c.sc.jobs])
    deadline = pd.DatetimeIndex([j.deadline for j in c.sc.jobs])
    frame = pd.DataFrame({
        "zone": [c.zones[z] for z in c.zone],
        "submit": submit,
        "deadline": deadline,
        "completion": completion,
        "latency_h": (completion - submit) / pd.Timedelta("1h"),
        "emissions_kg": s.emissions_kg,
        "energy_kwh": s.energy_kwh,
        "cost_usd": s.cost_usd if c.price is not None else np.nan,
        "interruptions": np.maximum(s.starts - 1, 0),
        "overhead_h": s.overhead_h,
        "save_h": s.save_h,
        "missed": ~s.done | (completion > deadline + pd.Timedelta("1s")),
        "done": s.done,
    }, index=pd.Index(c.names, name="job"))
    return frame
