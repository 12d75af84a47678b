"""The ``--simulate`` sweep: many runs on history, the trade-off a user must choose.

Each run drives the same :class:`~greenepoch.planner.run.controller.Controller` and
policies as ``greenepoch run``, on a :class:`~greenepoch.planner.run.feeds.HistoryFeed`,
but against :class:`StudyTraining` on a clock that jumps from decision to decision, so a
year of runs takes seconds, not days.

:class:`StudyTraining` is a study model of a training, not a test double of one: work
accumulates at ``gpus`` GPU-hours per hour while it runs, and each start after the first
loses ``restart_h`` hours (checkpoint reload, warm-up: work redone) before any new work
counts.  Energy is charged over all the running time (the redone hours too) at the
configured draw and the recorded intensity of each interval.

Each run is judged against two references on the same recorded intensities:

* run now: start at the run's start and run straight through (no restarts);
* the oracle: the cheapest hours between the start and ``deadline - margin`` that hold the
  work, with perfect knowledge and no restart cost: no policy can save more (an upper
  bound on the saving, not a plan a real run could follow).

Figures per policy and threshold: emissions and their saving vs run-now, the share of the
oracle's saving realised, the completion delay (finish minus run-now's finish; mean and
p95), pauses per run, work redone after resumes, and deadlines missed.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from greenepoch.data.errors import RequestError, param
from greenepoch.planner.run.controller import Controller, Outcome
from greenepoch.planner.run.energy import ConfiguredPower
from greenepoch.planner.run.feeds import HistoryFeed
from greenepoch.planner.run.log import RunLog
from greenepoch.planner.run.model import RunJob
from greenepoch.planner.run.policies import make_policy
from greenepoch.planner.run.process import CLEAN, EXITED, Child, Ended
from greenepoch.planner.run.state import RunDir, State


class JumpClock:
    """A clock the sweep sets: ``now`` is whatever it was set to; nothing waits."""

    def __init__(self, start: pd.Timestamp) -> None:
        self.t = start

    def now(self) -> pd.Timestamp:
        return self.t

    def wall_seconds(self, sim_span: pd.Timedelta) -> float:
        return 0.0


class StudyTraining:
    """The study model of a training (module docstring): ``gpu_hours`` of work on
    ``gpus`` GPUs, ``restart_h`` lost per resume; driven by ``clock``."""

    grace_s = 0.0

    def __init__(self, clock: JumpClock, gpu_hours: float, gpus: int,
                 restart_h: float) -> None:
        self.clock = clock
        self.total = gpu_hours
        self.gpus = gpus
        self.restart_h = restart_h
        self.banked = 0.0          # GPU-hours done before the current segment
        self.redone_h = 0.0        # hours lost to resumes so far
        self.starts = 0
        self._since: pd.Timestamp | None = None
        self._lost = 0.0           # hours this segment loses before it counts work
        self.finished: pd.Timestamp | None = None

    def work(self, now: pd.Timestamp) -> float:
        if self._since is None:
            return self.banked
        hours = max((now - self._since).total_seconds() / 3600.0 - self._lost, 0.0)
        return min(self.banked + hours * self.gpus, self.total)

    def finish_time(self) -> pd.Timestamp | None:
        """When the running segment completes the work (None while paused)."""
        if self._since is None:
            return None
        left_h = (self.total - self.banked) / self.gpus + self._lost
        return self._since + pd.Timedelta(hours=left_h)

    @property
    def alive(self) -> bool:
        return self._since is not None and self.clock.now() < self._end()

    def _end(self) -> pd.Timestamp:
        end = self.finish_time()
        assert end is not None
        return end

    def start(self, segment: int, resume: bool) -> Child:
        self._lost = self.restart_h if self.starts else 0.0
        self.starts += 1
        self._since = self.clock.now()
        return Child(1, 1)

    def poll(self) -> int | None:
        if self._since is None:
            return 0 if self.finished is not None else None
        if self.clock.now() < self._end():
            return None
        self.finished = self._end()
        self.redone_h += self._lost
        self.banked, self._since = self.total, None
        return 0

    def pause(self) -> Ended:
        now = self.clock.now()
        if self._since is None or now >= self._end():
            self.poll()
            return Ended(EXITED, 0, 0.0)
        ran_h = (now - self._since).total_seconds() / 3600.0
        self.redone_h += min(ran_h, self._lost)
        self.banked = self.work(now)
        self._since = None
        return Ended(CLEAN, 0, 0.0)

    def adopt(self, pid: int, start_ticks: int) -> Any:  # never a previous supervisor
        raise AssertionError("a study run is never adopted")


class _StudyDir(RunDir):
    """A run directory that keeps nothing on disk (a sweep runs thousands of runs);
    the progress is the study training's."""

    def __init__(self, training: StudyTraining) -> None:
        super().__init__(tempfile.gettempdir())
        self.training = training

    def save(self, state: State) -> None:
        pass

    def progress(self) -> dict[str, Any] | None:
        t = self.training
        return {"progress": t.work(t.clock.now()) / t.total}


class _MemoryLog(RunLog):
    """The run log's lines, kept in memory."""

    def __init__(self, policy: str) -> None:
        self.path = None  # type: ignore[assignment]
        self.policy = policy
        self.wall = lambda: pd.Timestamp(0, tz="UTC")
        self._file = None
        self.lines: list[str] = []

    def _append(self, text: str, *, sync: bool) -> None:
        self.lines.append(text)

    def close(self) -> None:
        pass

    def events(self, event: str) -> int:
        return sum(f'"event": "{event}"' in line for line in self.lines)


@dataclass(frozen=True)
class RunResult:
    """One study run: its emissions (kg), run-now's and the oracle's, completion
    delay (hours after run-now's finish), pauses, work redone (GPU-hours), missed."""

    policy: str
    threshold: float | str | None  # a label (e.g. 'p25') where levels differ by zone
    start: pd.Timestamp
    emissions_kg: float
    run_now_kg: float
    oracle_kg: float
    delay_h: float
    pauses: int
    redone_gpu_h: float
    missed: bool
    zone: str = ""


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs: ``starts`` x ``thresholds`` (threshold policy) and once per
    start for every other policy in ``policies``; each run ``gpu_hours`` on ``gpus``
    with ``slack`` after run-now's finish as the deadline."""

    zone: str
    starts: Sequence[pd.Timestamp]
    gpu_hours: float
    gpus: int = 1
    power_kw: float = 0.3
    slack: pd.Timedelta = pd.Timedelta("24h")
    restart_h: float = 0.25
    margin: pd.Timedelta = pd.Timedelta("1h")
    interval: pd.Timedelta = pd.Timedelta("15min")
    thresholds: Sequence[float] = ()
    resume_gap: float = 0.0   # resume at threshold - gap (hysteresis)
    min_run: str = "1h"
    min_pause: str = "30min"
    policies: Sequence[str] = ("threshold", "replan")
    extra: dict[str, Any] = field(default_factory=dict)

    def job(self, start: pd.Timestamp) -> RunJob:
        straight = pd.Timedelta(hours=self.gpu_hours / self.gpus)
        return RunJob(gpus=self.gpus, power_kw=self.power_kw, gpu_hours=self.gpu_hours,
                      deadline=start + straight + self.slack, restart_h=self.restart_h,
                      margin=self.margin, zone=self.zone)


def simulate_run(policy_name: str, options: dict[str, Any], feed: HistoryFeed, job: RunJob,
                 start: pd.Timestamp, interval: pd.Timedelta) -> tuple[Outcome, float,
                                                                        StudyTraining, int]:
    """One study run from ``start``: (outcome, emissions kg, the training, pauses)."""
    assert job.gpu_hours is not None
    clock = JumpClock(start)
    training = StudyTraining(clock, job.gpu_hours, job.gpus, job.restart_h)
    policy = make_policy(policy_name, job, **options)
    log = _MemoryLog(policy.name)
    controller = Controller(policy, feed, training, clock, _StudyDir(training),  # type: ignore[arg-type]
                            State.new(policy.name, ["study"]), job, interval, log,
                            ConfiguredPower(job.gpus, job.power_kw))
    controller.begin()
    end = feed.end
    while True:
        outcome = controller.tick(clock.t)
        if outcome is not None:
            break
        step = clock.t.floor(interval) + interval
        finish = training.finish_time()
        clock.t = min(step, finish) if finish is not None and finish > clock.t else step
        if clock.t >= end:
            outcome = Outcome("ended", "the recorded intensities end", 1)
            break
    return outcome, controller.account.emissions_kg, training, log.events("pause")


def run_now_kg(feed: HistoryFeed, job: RunJob, start: pd.Timestamp) -> float:
    """Straight through from ``start``: kWh x recorded g/kWh, kg."""
    assert job.gpu_hours is not None
    hours = job.gpu_hours / job.gpus
    mean = feed.actual(start, start + pd.Timedelta(hours=hours))
    return math.nan if mean is None else hours * job.gpus * job.power_kw * mean / 1000.0


def oracle_kg(feed: HistoryFeed, job: RunJob, start: pd.Timestamp) -> float:
    """The cheapest recorded slots from ``start`` to ``deadline - margin`` holding the
    work (parts of slots allowed; no restart cost): a lower bound on any run's kg."""
    assert job.gpu_hours is not None and job.deadline is not None
    values = feed.values
    step = feed.step
    first = start.floor(step)
    window = values[(values.index >= first) & (values.index < job.deadline - job.margin)]
    need_h = job.gpu_hours / job.gpus
    kw = job.gpus * job.power_kw
    total, left = 0.0, need_h
    times = pd.DatetimeIndex(window.index)
    for k in window.to_numpy().argsort(kind="stable"):
        t, g = times[k], float(window.iloc[k])
        slot_start = max(t, start)
        usable = (t + step - slot_start).total_seconds() / 3600.0
        if usable <= 0:
            continue
        take = min(usable, left)
        total += take * kw * g / 1000.0
        left -= take
        if left <= 1e-12:
            return total
    return math.nan  # the window cannot hold the work


def sweep(spec: SweepSpec, feed: HistoryFeed,
          progress: Callable[[str], None] | None = None) -> list[RunResult]:
    """Every run of ``spec`` on ``feed`` (one feed: its forecasts are shared)."""
    if "threshold" in spec.policies and not spec.thresholds:
        raise RequestError(f"a threshold sweep needs {param('thresholds')}, e.g. 300,350")
    out: list[RunResult] = []
    for n, start in enumerate(spec.starts):
        job = spec.job(start)
        straight = start + pd.Timedelta(hours=job.gpu_hours / job.gpus)  # type: ignore[operator]
        now_kg, best_kg = run_now_kg(feed, job, start), oracle_kg(feed, job, start)
        for name, threshold, options in _variants(spec):
            _, kg, training, pauses = simulate_run(name, options, feed, job, start,
                                                   spec.interval)
            finished = training.finished
            delay = math.nan if finished is None else (finished - straight).total_seconds() / 3600
            assert job.deadline is not None
            out.append(RunResult(
                policy=name, threshold=threshold, start=start, emissions_kg=kg,
                run_now_kg=now_kg, oracle_kg=best_kg, delay_h=delay, pauses=pauses,
                redone_gpu_h=training.redone_h * job.gpus,
                missed=finished is None or finished > job.deadline, zone=spec.zone))
        if progress is not None:
            progress(f"{spec.zone}: start {n + 1}/{len(spec.starts)} done")
    return out


def _variants(spec: SweepSpec) -> Iterable[tuple[str, float | None, dict[str, Any]]]:
    for name in spec.policies:
        if name == "threshold":
            for g in spec.thresholds:
                yield name, g, {"pause_above": g, "resume_below": g - spec.resume_gap,
                                "min_run": spec.min_run, "min_pause": spec.min_pause}
        else:
            yield name, None, dict(spec.extra.get(name, {}))


def summarise(results: Sequence[RunResult]) -> pd.DataFrame:
    """Per policy (and threshold): runs, emissions, saving vs run-now, share of the
    oracle's saving realised (of the summed savings), mean and p95 delay (h), pauses per
    run, work redone per run (GPU-hours), deadlines missed; run-now and the oracle as
    rows of their own."""
    frame = pd.DataFrame([r.__dict__ for r in results])
    if frame.empty:
        return frame
    frame["threshold"] = frame["threshold"].astype(object).where(frame["threshold"].notna(), "")
    rows = []
    base = frame.drop_duplicates(["zone", "start"])
    now_total, oracle_total = base["run_now_kg"].sum(), base["oracle_kg"].sum()
    for (policy, threshold), group in frame.groupby(["policy", "threshold"], sort=False):
        g_now = group["run_now_kg"].sum()
        g_oracle = group["oracle_kg"].sum()
        kg = group["emissions_kg"].sum()
        possible = g_now - g_oracle
        rows.append({
            "policy": policy, "threshold": threshold, "runs": len(group),
            "emissions_kg": kg, "saving_pct": 100 * (g_now - kg) / g_now if g_now else np.nan,
            "oracle_share_pct": 100 * (g_now - kg) / possible if possible > 0 else np.nan,
            "mean_delay_h": group["delay_h"].mean(),
            "p95_delay_h": group["delay_h"].quantile(0.95),
            "pauses": group["pauses"].mean(), "redone_gpu_h": group["redone_gpu_h"].mean(),
            "missed": int(group["missed"].sum()),
        })
    n = len(base)
    rows.append({"policy": "run-now", "threshold": "", "runs": n, "emissions_kg": now_total,
                 "saving_pct": 0.0, "oracle_share_pct": 0.0, "mean_delay_h": 0.0,
                 "p95_delay_h": 0.0, "pauses": 0.0, "redone_gpu_h": 0.0, "missed": 0})
    rows.append({"policy": "oracle", "threshold": "", "runs": n, "emissions_kg": oracle_total,
                 "saving_pct": 100 * (now_total - oracle_total) / now_total if now_total
                 else np.nan, "oracle_share_pct": 100.0, "mean_delay_h": np.nan,
                 "p95_delay_h": np.nan, "pauses": np.nan, "redone_gpu_h": 0.0, "missed": 0})
    return pd.DataFrame(rows)
