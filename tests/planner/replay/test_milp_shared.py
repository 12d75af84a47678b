"""The replay's ``milp`` policy and ``greenepoch run --policy replan`` take the same
decision on the same inputs (issue 17: one function, two callers), and the forecasts
the replay issues hourly in batches are the model's own, issue by issue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from greenepoch.planner.replay.engine import Compiled, ForecastFeed, JobState, Scenario, View
from greenepoch.planner.replay.jobs import ReplayJob
from greenepoch.planner.replay.policies import Milp
from greenepoch.planner.run.model import Observation, RunJob
from greenepoch.planner.run.replan import ReplanPolicy

START = pd.Timestamp("2023-03-01", tz="UTC")
HOUR = pd.Timedelta("1h")


def scenario(overhead: float, days: int = 3) -> Compiled:
    idx = pd.date_range(START - 8 * pd.Timedelta("1D"), START + days * pd.Timedelta("1D"),
                        freq=HOUR, inclusive="left", name="time")
    hour = idx.hour.to_numpy()
    values = 300 + 150 * np.sin(2 * np.pi * hour / 24) + \
        np.random.default_rng(1).normal(0, 40, len(idx))
    frame = pd.DataFrame({"A": np.clip(values, 5, None)}, index=idx)
    job = ReplayJob("j", "A", START, 8, 10.0, START + 30 * HOUR, True, overhead)
    return Compiled(Scenario(frame, START, START + days * pd.Timedelta("1D"), (job,),
                             {"A": 64}, forecast="seasonal"))


def replay_decides(c: Compiled, t: int, remaining: float, running: bool,
                   forecast: np.ndarray) -> bool:
    s = JobState.new(c)
    s.remaining[0], s.running[0] = remaining, running
    policy = Milp()
    policy.reset(c, None, None)
    view = View(t, 1, c.intensity[:, :t], np.array([0]), c, s, lambda: forecast)
    return bool(policy.decide(view)[0, 0] > 0)


def run_decides(c: Compiled, t: int, remaining: float, running: bool,
                forecast: np.ndarray) -> bool:
    now = c.times[t]
    job = RunJob(gpus=8, power_kw=float(c.power[0]), gpu_hours=8 * float(c.work[0]),
                 deadline=c.times[c.last[0] + 1], restart_h=float(c.overhead[0]),
                 margin=pd.Timedelta(0), zone="A")
    obs = Observation(now=now, interval=HOUR, intensity=None, provenance="test forecast",
                      stale=False,
                      forecast=pd.Series(forecast[0], index=pd.date_range(
                          now, periods=forecast.shape[1], freq=HOUR)),
                      issued=now, running=running, since=c.times[c.t0],
                      done_gpu_h=8 * (float(c.work[0]) - remaining), progress=None)
    return ReplanPolicy(job).decide(obs).run


@pytest.mark.parametrize("overhead", [0.0, 0.3])
def test_replay_milp_and_run_replan_decide_alike(overhead: float) -> None:
    c = scenario(overhead)
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(40):
        t = c.t0 + int(rng.integers(0, 24))
        remaining = float(rng.choice([0.5, 2.0, 4.5, 9.0]))
        running = bool(rng.integers(0, 2))
        forecast = rng.uniform(50, 600, (1, 60))
        both = (replay_decides(c, t, remaining, running, forecast),
                run_decides(c, t, remaining, running, forecast))
        assert both[0] == both[1], (t, remaining, running)
        seen.add(both[0])
    assert seen == {True, False}  # both decisions were exercised


def test_hourly_batched_forecasts_are_the_models_own() -> None:
    c = scenario(0.0, days=10)
    feed = ForecastFeed(c, "seasonal", 1, 30)
    for t in (c.t0, c.t0 + 1, c.t0 + 37):
        known = c.sc.actual.iloc[:t]
        own = feed.model.predict(c.times[t], feed.horizon * c.step, data=known)  # type: ignore[union-attr]
        expect = np.clip(own.xs("mean", axis=1, level=1).to_numpy(dtype=float).T, 0, None)
        np.testing.assert_allclose(feed.at(t), expect)
    assert feed.calls == 3
