"""The run's clocks: wall time, and simulated time that continues across a restart."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.run.clock import RealClock, SimAnchor, SimClock

START = pd.Timestamp("2023-06-01T00:00Z")


def test_real_clock_is_utc_wall_time() -> None:
    clock = RealClock()
    now = clock.now()
    assert str(now.tz) == "UTC"
    assert abs((now - pd.Timestamp.now(tz="UTC")).total_seconds()) < 1
    assert clock.wall_seconds(pd.Timedelta("15min")) == 900


def test_sim_clock_runs_at_its_speed() -> None:
    clock = SimClock(START, speed=36_000)  # 10 simulated hours per wall second
    assert clock.now() - START < pd.Timedelta("1h")
    assert clock.wall_seconds(pd.Timedelta("1h")) == pytest.approx(0.1)
    time.sleep(0.2)
    assert START + pd.Timedelta("2h") <= clock.now() < START + pd.Timedelta("20h")
    assert str(clock.now().tz) == "UTC"


def test_a_restarted_clock_continues_the_same_timeline() -> None:
    first = SimClock(START, speed=3600)
    saved = SimAnchor.from_json(first.anchor().to_json())  # as state.json keeps it
    time.sleep(0.2)
    again = SimClock.resume(saved)
    before, resumed, after = first.now(), again.now(), first.now()
    slack = pd.Timedelta("60s")  # 17 ms of wall time at this speed
    assert before - slack <= resumed <= after + slack
    assert again.now() - START >= pd.Timedelta(seconds=0.2 * 3600)
    # an anchor taken 10 wall seconds ago: the supervisor was down 10 s = 10 sim hours
    old = SimClock(START, speed=3600, anchor_wall=time.time() - 10)
    assert pd.Timedelta("10h") <= old.now() - START < pd.Timedelta("10h5min")


def test_sim_clock_refuses_bad_parameters() -> None:
    with pytest.raises(GreenEpochError, match="start must be a tz-aware UTC"):
        SimClock(pd.Timestamp("2023-06-01"), speed=60)
    for speed in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(GreenEpochError, match="`speed` must be a number > 0"):
            SimClock(START, speed=speed)


def test_sim_anchor_reads_only_what_it_writes() -> None:
    anchor = SimAnchor(START, 1.7e9, 3600.0)
    assert SimAnchor.from_json(anchor.to_json()) == anchor
    bad = [None, {}, {"sim": "2023-06-01T00:00", "wall": 1.0, "speed": 1.0},
           {"sim": "2023-06-01T00:00Z", "wall": "1", "speed": 1.0},
           {"sim": "2023-06-01T00:00Z", "wall": 1.0, "speed": 0},
           {"sim": "2023-06-01T00:00Z", "wall": 1.0, "speed": 1.0, "extra": 1}]
    for raw in bad:
        with pytest.raises(ValueError):
            SimAnchor.from_json(raw)
