"""The ``replan`` policy of ``greenepoch run`` against hand-computed decisions (issue 17).

One job of 1 GPU at 1 kW on hourly intervals: holding one slot at ``x`` g/kWh emits
``x / 1000`` kg.  It has run 1 h of its 2 GPU-hours (1 h of work left) and is running
now; a pause costs ``restart_h`` of running again without progress when it resumes.
Forecast ``[400, 500, 450, 100, 100]``:

* run on now: 400 g x 1 h = 0.400 kg;
* pause now, restart 0.25 h, deadline 5 h: 1.25 h in the valley (slots 3, 4: the last
  slot runs 0.25 h) = 0.100 + 0.025 = 0.125 kg: pausing saves 0.275 kg > 0, it pauses;
* the same with restart 0.9 h: 0.100 + 0.090 = 0.190 kg, still saves 0.210 kg: pauses;
  with restart 0.9 h and the valley ``[.., 300, 300]``: 0.300 + 0.270 = 0.570 kg >
  0.400: it runs, although the valley is cheaper than now (the restart eats the saving);
* deadline 4 h (slot 4 lies past it): 1.25 h in slots 1..3: slots 2, 3 = 0.450 + 0.025
  = 0.475 kg > 0.400: it runs (the deadline cuts the valley off).
"""

from __future__ import annotations

import pandas as pd
import pytest
from greenepoch.data.errors import RequestError
from greenepoch.planner.run.model import Observation, RunJob
from greenepoch.planner.run.policies import make_policy
from greenepoch.planner.run.replan import ReplanPolicy

T0 = pd.Timestamp("2023-06-01T00:00Z")
HOUR = pd.Timedelta("1h")
VALLEY = [400.0, 500.0, 450.0, 100.0, 100.0]


def job(restart_h: float = 0.25, deadline_h: float = 5, gpu_hours: float = 2.0) -> RunJob:
    return RunJob(gpus=1, power_kw=1.0, gpu_hours=gpu_hours, deadline=T0 + deadline_h * HOUR,
                  restart_h=restart_h, margin=pd.Timedelta(0), zone="DE")


def observe(forecast: list[float] | None, *, k: int = 0, running: bool = True,
            done: float = 1.0, issued: int | None = None) -> Observation:
    now = T0 + k * HOUR
    series = None if forecast is None else pd.Series(
        forecast, index=pd.date_range(now, periods=len(forecast), freq=HOUR))
    return Observation(now=now, interval=HOUR, intensity=None, provenance="test forecast",
                       stale=False, forecast=series,
                       issued=None if forecast is None else T0 + (k if issued is None
                                                                  else issued) * HOUR,
                       running=running, since=T0, done_gpu_h=done, progress=None)


def test_pauses_when_the_expected_saving_exceeds_the_restart() -> None:
    d = ReplanPolicy(job(restart_h=0.25)).decide(observe(VALLEY))
    assert not d.run
    assert d.expected_saving_kg == pytest.approx(0.400 - 0.125)
    assert "resumes at 2023-06-01T03:00:00+00:00" in d.reason


def test_keeps_running_when_the_restart_eats_the_saving() -> None:
    d = ReplanPolicy(job(restart_h=0.9)).decide(observe(VALLEY))
    assert not d.run and d.expected_saving_kg == pytest.approx(0.400 - 0.190)
    shallow = [400.0, 500.0, 450.0, 300.0, 300.0]
    d = ReplanPolicy(job(restart_h=0.9)).decide(observe(shallow))
    assert d.run
    assert d.expected_saving_kg == pytest.approx(0.400 - 0.570)
    # the same valley is worth a pause when restarting is cheap: 0.300 + 0.075 < 0.400
    assert not ReplanPolicy(job(restart_h=0.25)).decide(observe(shallow)).run


def test_the_deadline_cuts_the_valley_off() -> None:
    d = ReplanPolicy(job(deadline_h=4)).decide(observe(VALLEY))
    assert d.run and d.expected_saving_kg == pytest.approx(0.400 - 0.475)
    # at the deadline's edge the guard runs it, whatever the forecast says
    d = ReplanPolicy(job(deadline_h=2)).decide(observe(VALLEY))
    assert d.run and d.reason.startswith("deadline guard")
    # the margin counts: deadline 5 h with a 1 h margin is the 4 h case
    margined = RunJob(gpus=1, power_kw=1.0, gpu_hours=2.0, deadline=T0 + 5 * HOUR,
                      restart_h=0.25, margin=HOUR, zone="DE")
    assert ReplanPolicy(margined).decide(observe(VALLEY)).run


def test_a_paused_job_resumes_in_the_valley_and_not_before() -> None:
    policy = ReplanPolicy(job())
    # paused at 0 (decided above); at 1 and 2 the valley is still ahead: stay paused
    for k in (1, 2):
        d = policy.decide(observe(VALLEY[k:], k=k, running=False, issued=0))
        assert not d.run, (k, d.reason)
    d = policy.decide(observe(VALLEY[3:], k=3, running=False, issued=0))
    assert d.run


def test_it_replans_with_a_newer_forecast() -> None:
    policy = ReplanPolicy(job())
    assert not policy.decide(observe(VALLEY)).run
    # an hour later a new forecast: the valley has gone, running on is cheapest
    newer = [450.0, 500.0, 600.0, 600.0]
    d = policy.decide(observe(newer, k=1, running=False, issued=1))
    assert d.run
    # paused, it pays the restart either way: 1.25 h from now = 0.450 + 0.25 x 0.500 =
    # 0.575 kg, from the next hour 0.500 + 0.25 x 0.600 = 0.650 kg
    assert d.expected_saving_kg == pytest.approx(0.575 - 0.650)


def test_runs_and_says_why_when_it_cannot_plan() -> None:
    d = ReplanPolicy(job()).decide(observe(None))
    assert d.run and "no forecast" in d.reason and d.expected_saving_kg is None
    unknown = RunJob(gpus=1, power_kw=1.0, gpu_hours=None, deadline=T0 + 5 * HOUR,
                     margin=pd.Timedelta(0))
    d = ReplanPolicy(unknown).decide(observe(VALLEY))
    assert d.run and "work left is unknown" in d.reason


def test_needs_a_deadline_and_is_built_by_name() -> None:
    with pytest.raises(RequestError, match="`deadline`"):
        ReplanPolicy(RunJob(gpus=1, gpu_hours=2.0))
    assert isinstance(make_policy("replan", job()), ReplanPolicy)


def test_a_forecast_is_read_by_its_times_not_its_positions() -> None:
    """The valley's slots 1 and 2 are missing (a gap in the forecast's index): what is
    known from now is only 400 (slot 0), so the valley at 03:00-05:00 is not read as
    lying at 01:00-03:00.  With the gap cut off, 1 h of work in a 1-slot window of a 5-h
    deadline must do its share (0.2 h) now or pause for nothing: it runs."""
    now = T0
    gapped = pd.Series([400.0, 100.0, 100.0],
                       index=pd.DatetimeIndex([now, now + 3 * HOUR, now + 4 * HOUR]))
    obs = Observation(now=now, interval=HOUR, intensity=None, provenance="test forecast",
                      stale=False, forecast=gapped, issued=now, running=True, since=T0,
                      done_gpu_h=1.0, progress=None)
    d = ReplanPolicy(job()).decide(obs)
    assert "01:00" not in d.reason
    assert d.run


def test_a_forecast_starting_after_now_is_no_forecast_for_now() -> None:
    """Slot 0 must be now: a forecast whose first value is for 01:00 says nothing of now."""
    late = pd.Series([100.0, 100.0], index=pd.date_range(T0 + HOUR, periods=2, freq=HOUR))
    obs = Observation(now=T0, interval=HOUR, intensity=None, provenance="test forecast",
                      stale=False, forecast=late, issued=T0, running=True, since=T0,
                      done_gpu_h=1.0, progress=None)
    d = ReplanPolicy(job()).decide(obs)
    assert d.run and "no forecast" in d.reason
