"""The --simulate sweep: the study training's arithmetic, the oracle by hand, sweeps
through the real controller and policies on a small history, and ``greenepoch
run-sweep``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.planner.cli.main import cli
from greenepoch.planner.run.feeds import HistoryFeed
from greenepoch.planner.run.model import RunJob
from greenepoch.planner.run.sweep import (
    JumpClock,
    StudyTraining,
    SweepSpec,
    oracle_kg,
    run_now_kg,
    summarise,
    sweep,
)

from tests.planner.run.test_controller import write_constant

T0 = pd.Timestamp("2023-03-06T00:00Z")


def test_study_training_counts_work_and_the_restart_cost() -> None:
    clock = JumpClock(T0)
    t = StudyTraining(clock, gpu_hours=6.0, gpus=2, restart_h=0.5)
    t.start(0, resume=False)
    clock.t = T0 + pd.Timedelta("1h")
    assert t.work(clock.t) == 2.0 and t.alive
    assert t.pause().how == "clean" and t.banked == 2.0 and t.redone_h == 0.0
    clock.t = T0 + pd.Timedelta("3h")
    t.start(1, resume=True)  # loses 0.5 h, then 4 GPU-h left on 2 GPUs: 2 h
    assert t.finish_time() == T0 + pd.Timedelta("5.5h")
    clock.t = T0 + pd.Timedelta("3.25h")
    assert t.work(clock.t) == 2.0  # still reloading
    clock.t = T0 + pd.Timedelta("5.5h")
    assert not t.alive and t.poll() == 0
    assert t.finished == T0 + pd.Timedelta("5.5h") and t.redone_h == 0.5


def test_oracle_and_run_now_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENEPOCH_CACHE", "off")
    feed = HistoryFeed(str(write_constant(tmp_path, [400.0, 100.0, 300.0, 200.0])), "DE",
                       model="yesterday", fit_until=T0)
    job = RunJob(gpus=1, power_kw=1.0, gpu_hours=2.0, deadline=T0 + pd.Timedelta("5h"),
                 margin=pd.Timedelta("1h"), zone="DE")
    # run now: 400 then 100 at 1 kW; the oracle: 100 and 200 within the 4 h window
    assert run_now_kg(feed, job, T0) == pytest.approx(0.5)
    assert oracle_kg(feed, job, T0) == pytest.approx(0.3)
    # from 00:30: half of the 400 hour is gone; the cheapest 2 h are still 100 and 200
    assert oracle_kg(feed, job, T0 + pd.Timedelta("30min")) == pytest.approx(0.3)
    tight = RunJob(gpus=1, power_kw=1.0, gpu_hours=2.0, deadline=T0 + pd.Timedelta("2h30min"),
                   margin=pd.Timedelta("30min"), zone="DE")
    assert oracle_kg(feed, tight, T0) == pytest.approx(0.5)  # no choice but 400 and 100


def test_sweep_threshold_replan_and_references(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENEPOCH_CACHE", "off")
    # a daily cycle: 8 clean hours (100) then 16 dirty ones (500)
    data = write_constant(tmp_path, [100.0] * 8 + [500.0] * 16)
    feed = HistoryFeed(str(data), "DE", model="yesterday", fit_until=T0,
                       horizon=pd.Timedelta("72h"))
    starts = [T0 + pd.Timedelta("10h"), T0 + pd.Timedelta("1D10h")]
    spec = SweepSpec(zone="DE", starts=starts, gpu_hours=4.0, power_kw=1.0,
                     slack=pd.Timedelta("24h"), restart_h=0.25, thresholds=[1000.0, 300.0],
                     min_run="0min", min_pause="0min", policies=("threshold", "replan"))
    results = sweep(spec, feed)
    assert len(results) == 6
    never = [r for r in results if r.threshold == 1000.0]
    for r in never:  # never pauses: exactly run-now (4 h at 500)
        assert r.emissions_kg == pytest.approx(r.run_now_kg) == pytest.approx(2.0)
        assert r.delay_h == 0 and r.pauses == 0 and not r.missed
    for r in results:
        assert r.oracle_kg == pytest.approx(0.4)  # 4 clean hours before the deadline
    waits = [r for r in results if r.threshold == 300.0]
    for r in waits:  # waits for the clean hours (seen an hour late), then runs 4 h there
        assert not r.missed and r.pauses == 0
        # 00:00 is seen clean at 01:00: runs 01:00-05:00, all clean; run-now ends 14:00
        assert r.emissions_kg == pytest.approx(0.4)
        assert r.delay_h == pytest.approx(15.0)
    replans = [r for r in results if r.policy == "replan"]
    assert all(not r.missed and r.emissions_kg < r.run_now_kg for r in replans)
    table = summarise(results).set_index(["policy", "threshold"])
    assert table.loc[("oracle", ""), "oracle_share_pct"] == 100.0
    assert table.loc[("threshold", 1000.0), "oracle_share_pct"] == pytest.approx(0.0)
    assert table.loc[("run-now", ""), "runs"] == 2


def test_run_sweep_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENEPOCH_CACHE", "off")
    data = write_constant(tmp_path, [100.0] * 8 + [500.0] * 16)
    args = ["run-sweep", "--zone", "DE", "--data", str(data), "--from", "2023-03-06T10:00Z",
            "--to", "2023-03-07T10:00Z", "--gpu-hours", "4", "--thresholds", "300",
            "--forecast", "yesterday", "--policies", "threshold"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "oracle" in result.output and "run-now" in result.output
    rows = CliRunner().invoke(cli, [*args, "--json"])
    assert rows.exit_code == 0, rows.output
    lines = [json.loads(line) for line in rows.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["policy"] == "threshold"
    bad = CliRunner().invoke(cli, [*args[:-6], "--thresholds", "a,b"])
    assert bad.exit_code == 2 and "greenepoch: error: --thresholds = 'a,b'" in bad.output
