"""The controller with real child processes (tests/support/run_children.py and one-line
Python programs) on accelerated history: crashes restarted with backoff and given up,
a stop request checkpointing the child, a restarted supervisor continuing the run,
energy and emissions at the intensities seen; the feeds (no look-ahead) and the log."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from greenepoch.planner.run.controller import RunSpec, supervise
from greenepoch.planner.run.feeds import HistoryFeed, mean_over, on_interval
from greenepoch.planner.run.log import RunLog, read_log
from greenepoch.planner.run.model import RunJob
from source_fixtures import HEADER

CHILDREN = Path(__file__).parents[2] / "support" / "run_children.py"
START = pd.Timestamp("2023-03-01T00:00Z")


def write_constant(folder: Path, values: list[float], days: int = 10) -> Path:
    """An export folder for DE repeating ``values`` hour after hour."""
    exports = folder / "electricitymaps"
    exports.mkdir(parents=True)
    rows = []
    for i, t in enumerate(pd.date_range(START, periods=days * 24, freq="1h")):
        v = values[i % len(values)]
        rows.append(f"{t.strftime('%Y-%m-%d %H:%M:%S')},X,DE,DE,{v:.2f},{v + 40:.2f},50,40,"
                    "test,false,\n")
    (exports / "DE_2023_hourly.csv").write_text(HEADER + "".join(rows), encoding="utf-8")
    return folder


def spec(tmp_path: Path, data: Path, argv: list[str], **kw: Any) -> RunSpec:
    settings: dict[str, Any] = {
        "argv": tuple(argv), "policy": "threshold",
        "job": RunJob(gpus=2, power_kw=0.5, zone="DE"),
        "policy_options": {"pause_above": 1000.0, "min_run": "0min", "min_pause": "0min"},
        "data": str(data), "simulate_from": pd.Timestamp("2023-03-06T00:00Z"),
        "speed": 3600.0, "model": "persistence", "run_dir": str(tmp_path / "run"),
        "grace_s": 5.0, "term_grace_s": 2.0, "backoff_s": 0.0,
    }
    settings.update(kw)
    return RunSpec(**settings)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENEPOCH_CACHE", str(tmp_path / "cache"))


def kinds(path: Path) -> list[str]:
    return [line["event"] for line in read_log(path)]


@pytest.mark.usefixtures("cache")
def test_done_charges_energy_at_the_intensity_seen(tmp_path: Path) -> None:
    data = write_constant(tmp_path / "data", [250.0])
    sleeper = [sys.executable, "-c", "import time; time.sleep(1.5)"]
    outcome = supervise(spec(tmp_path, data, sleeper), install_signals=False)
    assert outcome.phase == "done" and outcome.code == 0, outcome
    lines = read_log(tmp_path / "run" / "run.jsonl")
    assert [e["event"] for e in lines][:2] == ["supervisor", "start"]
    assert lines[-1]["event"] == "done"
    last = lines[-1]
    # 2 GPUs x 0.5 kW for about 1.5 wall s = 1.5 simulated hours at 3600x (+ the start)
    assert 1.2 <= last["energy_kwh"] <= 3.5, last
    assert last["emissions_kg"] == pytest.approx(last["energy_kwh"] * 0.25, rel=1e-4)
    assert last["done_gpu_h"] == pytest.approx(2 * last["energy_kwh"], rel=1e-3)  # 1 kW
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["phase"] == "done" and state["child_pid"] is None
    # every line has the contract's keys; times are simulated, walls real
    for line in lines:
        assert {"time", "event", "intensity", "reason", "state", "energy_kwh",
                "emissions_kg", "segment", "policy", "wall", "provenance"} <= line.keys()
    seen = lines[1]["provenance"]
    assert seen["provider"] == "electricitymaps-exports" and seen["kind"] == "actual"
    assert not seen["stale"] and 0 <= seen["age_s"] < 300  # the first decision is at --from
    assert lines[0]["time"].startswith("2023-03-06T00:0")


@pytest.mark.usefixtures("cache")
def test_crash_restarted_then_done(tmp_path: Path) -> None:
    data = write_constant(tmp_path / "data", [250.0])
    marks = tmp_path / "marks"
    marks.mkdir()
    crash = [sys.executable, str(CHILDREN), "crash", str(marks), "2"]
    outcome = supervise(spec(tmp_path, data, crash), install_signals=False)
    assert outcome.phase == "done", outcome
    events = read_log(tmp_path / "run" / "run.jsonl")
    restarts = [e for e in events if e["event"] == "restart"]
    assert [e["returncode"] for e in restarts] == [3, 3]
    assert [e["segment"] for e in restarts] == [1, 2]
    assert "restart 2 of 3 from the last checkpoint" in restarts[-1]["reason"]
    envs = sorted(marks.glob("env-*.json"), key=lambda p: p.stat().st_mtime)
    resume = [json.loads(p.read_text())["GREENEPOCH_RESUME"] for p in envs]
    assert resume == ["0", "1", "1"]


@pytest.mark.usefixtures("cache")
def test_crashes_give_up_after_max_restarts(tmp_path: Path) -> None:
    data = write_constant(tmp_path / "data", [250.0])
    failing = [sys.executable, "-c", "raise SystemExit(7)"]
    outcome = supervise(spec(tmp_path, data, failing, max_restarts=1), install_signals=False)
    assert outcome.phase == "failed" and outcome.code == 1
    assert "exited with code 7; gave up after 1 restart(s)" in outcome.summary
    changes = [k for k in kinds(tmp_path / "run" / "run.jsonl") if k != "decision"]
    assert changes == ["supervisor", "start", "restart", "exit"]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["phase"] == "failed" and state["restarts"] == 1


@pytest.mark.usefixtures("cache")
def test_stop_checkpoints_and_a_new_supervisor_continues(tmp_path: Path) -> None:
    data = write_constant(tmp_path / "data", [250.0])
    marks = tmp_path / "marks"
    marks.mkdir()
    obey = [sys.executable, str(CHILDREN), "obey", str(marks)]
    run_spec = spec(tmp_path, data, obey, speed=600.0)
    got: list[Any] = []
    stops: list[Any] = []

    def supervised() -> None:
        got.append(supervise(run_spec, install_signals=False,
                             built=lambda c: stops.append(c.stop)))

    def stop_when_ready(n: int) -> threading.Thread:
        thread = threading.Thread(target=supervised)
        thread.start()
        end = time.monotonic() + 30
        while len(list(marks.glob("ready-*"))) < n and time.monotonic() < end:
            time.sleep(0.05)
        assert len(list(marks.glob("ready-*"))) == n
        return thread

    thread = stop_when_ready(1)
    stops[-1]("SIGTERM received")  # what the SIGTERM/SIGINT handlers call
    thread.join(30)
    assert got[-1].phase == "stopped" and got[-1].code == 0
    assert len(list(marks.glob("checkpoint-*"))) == 1  # checkpointed on the signal
    log = tmp_path / "run" / "run.jsonl"
    assert kinds(log)[-1] == "exit"
    assert "the training checkpointed" in read_log(log)[-1]["reason"]
    thread = stop_when_ready(2)  # started again: resumes it (GREENEPOCH_RESUME=1)
    stops[-1]("SIGINT received")
    thread.join(30)
    events = read_log(tmp_path / "run" / "run.jsonl")
    names = [e["event"] for e in events]
    assert names.count("supervisor") == 1
    assert [e["event"] for e in events if e["event"] != "decision"] == [
        "supervisor", "start", "exit", "restart", "resume", "exit"]
    assert events[names.index("restart")]["supervisor"] is True
    resumed = [json.loads(p.read_text()) for p in marks.glob("env-*.json")]
    assert sorted(e["GREENEPOCH_RESUME"] for e in resumed) == ["0", "1"]
    assert sorted(e["GREENEPOCH_SEGMENT"] for e in resumed) == ["0", "1"]


def test_history_feed_sees_no_future(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENEPOCH_CACHE", "off")
    values = [100.0 + i for i in range(24)]
    data = write_constant(tmp_path / "a", values)
    feed = HistoryFeed(str(data), "DE", model="yesterday",
                       fit_until=pd.Timestamp("2023-03-06T00:00Z"), horizon=pd.Timedelta("6h"))
    now = pd.Timestamp("2023-03-07T05:20Z")
    reading = feed.observe(now)
    # the latest completed hour is 04:00-05:00 (value 104); 05:00 is not done at 05:20
    assert reading.intensity == 104.0 and reading.provenance["age_s"] == 20 * 60
    assert reading.issued == pd.Timestamp("2023-03-07T05:00Z")
    # 'yesterday' forecasts each hour as the same hour a day before: 105, 106, ...
    assert reading.forecast.tolist() == [105.0, 106.0, 107.0, 108.0, 109.0, 110.0]
    # change everything after the issue: the forecast and the reading stay
    future = list(values)
    data2 = write_constant(tmp_path / "b", future)
    csv = data2 / "electricitymaps" / "DE_2023_hourly.csv"
    lines = csv.read_text().splitlines()
    cut = 1 + 6 * 24 + 5  # header + six days + 5 hours: rows from 2023-03-07T05:00
    lines[cut:] = [line.replace(",DE,DE,", ",DE,DE,").split(",", 4)[0] + ",X,DE,DE,999.00,"
                   "1039.00,50,40,test,false," for line in lines[cut:]]
    csv.write_text("\n".join(lines) + "\n")
    other = HistoryFeed(str(data2), "DE", model="yesterday",
                        fit_until=pd.Timestamp("2023-03-06T00:00Z"),
                        horizon=pd.Timedelta("6h")).observe(now)
    assert other.intensity == reading.intensity
    assert other.forecast.tolist() == reading.forecast.tolist()
    assert feed.actual(pd.Timestamp("2023-03-07T05:30Z"), pd.Timestamp("2023-03-07T06:30Z")) \
        == pytest.approx((105 + 106) / 2)


def test_mean_over_and_on_interval() -> None:
    idx = pd.date_range("2023-01-01", periods=3, freq="1h", tz="UTC", name="time")
    s = pd.Series([100.0, 200.0, 400.0], index=idx)
    t = pd.Timestamp("2023-01-01T00:45Z")
    assert mean_over(s, t, t + pd.Timedelta("30min")) == pytest.approx(150.0)
    assert mean_over(s, t, t + pd.Timedelta("4h")) is None  # past the end
    grid = on_interval(s, t, pd.Timedelta("15min"))
    assert grid.index[0] == t and grid.iloc[0] == 100.0
    assert grid.tolist() == [100.0] + [200.0] * 4 + [400.0] * 4
    assert (np.diff(grid.index.asi8) == 900 * 10**9).all()


def test_log_lines_and_a_line_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    t = pd.Timestamp("2023-03-02T00:00Z")
    with RunLog(path, policy="threshold") as log:
        log.write("start", t, intensity=212.345, reason="go", energy_kwh=float("nan"))
    with path.open("a") as f:
        f.write('{"time": "2023-03-02T00:15:00Z", "ev')  # a SIGKILL mid-line
    with RunLog(path, policy="threshold") as log:
        log.write("restart", t, reason="again", supervisor=True)
    lines = read_log(path)
    assert [e["event"] for e in lines] == ["start", "restart"]
    assert lines[0]["intensity"] == 212.3 and lines[0]["energy_kwh"] is None
    assert lines[0]["time"] == "2023-03-02T00:00:00Z" and lines[0]["policy"] == "threshold"
    with pytest.raises(ValueError, match="unknown run log event"):
        RunLog(path, policy="x").write("nap", t)


@pytest.mark.parametrize("minutes", [15, 30])
def test_history_feed_keeps_the_data_resolution(tmp_path: Path, minutes: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: 15- and 30-minute data drive a run at their own slots (not averaged
    into hours, which showed a completed slot only at the next whole hour)."""
    monkeypatch.setenv("GREENEPOCH_CACHE", "off")
    times = pd.date_range(START, periods=10 * 24 * 60 // minutes, freq=f"{minutes}min")
    rows = "".join(f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},DE,{100 + i % 7}\n"
                   for i, t in enumerate(times))
    (tmp_path / "de.csv").write_text("time,zone,value\n" + rows, encoding="utf-8")
    feed = HistoryFeed(str(tmp_path), "DE", model="persistence", horizon=pd.Timedelta("6h"))
    assert feed.step == pd.Timedelta(minutes=minutes)
    now = START + pd.Timedelta("6D") + pd.Timedelta(minutes=minutes)
    reading = feed.observe(now)  # the slot [now - step, now) has just completed
    i = int(times.get_loc(now - pd.Timedelta(minutes=minutes)))
    assert reading.intensity == 100 + i % 7 and reading.provenance["age_s"] == 0
    assert reading.forecast is not None and len(reading.forecast) == 6 * 60 // minutes


SUPERVISOR = """
import sys, pandas as pd
from greenepoch.planner.run.controller import RunSpec, supervise
from greenepoch.planner.run.model import RunJob
supervise(RunSpec(argv=tuple(sys.argv[3:]), policy="threshold",
                  job=RunJob(gpus=2, power_kw=0.5, zone="DE"),
                  policy_options={"pause_above": 1000.0, "min_run": "0min",
                                  "min_pause": "0min"},
                  data=sys.argv[1], simulate_from=pd.Timestamp("2023-03-06T00:00Z"),
                  speed=3600.0, model="persistence", run_dir=sys.argv[2], grace_s=5.0,
                  term_grace_s=2.0, backoff_s=0.0))
"""


@pytest.mark.usefixtures("cache")
def test_a_supervisor_killed_and_started_again_charges_the_time_it_was_down(
        tmp_path: Path) -> None:
    """The training ran on while no supervisor watched: that span is energy and work
    too (it was left out: the new supervisor charged from its own start)."""
    import subprocess

    data = write_constant(tmp_path / "data", [250.0])
    marks = tmp_path / "marks"
    marks.mkdir()
    obey = [sys.executable, str(CHILDREN), "obey", str(marks)]
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(data), str(run), *obey])
    try:
        end = time.monotonic() + 60
        while not list(marks.glob("ready-*")) and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        first.kill()
        first.wait(10)
    before = json.loads((run / "state.json").read_text())
    time.sleep(1.5)  # 1.5 simulated hours of training with no supervisor
    stops: list[Any] = []
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(supervise(
        spec(tmp_path, data, obey), install_signals=False,
        built=lambda c: stops.append(c.stop))))
    thread.start()
    try:
        end = time.monotonic() + 30
        while not stops and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stops[-1]("SIGTERM received")
        thread.join(30)
    assert got and got[-1].phase == "stopped", got
    lines = read_log(run / "run.jsonl")
    restart = next(e for e in lines if e["event"] == "restart")
    assert "adopted the running training" in restart["reason"]
    down_h = (pd.Timestamp(restart["time"]) - pd.Timestamp(before["last_decision"])) \
        / pd.Timedelta("1h")
    assert down_h > 1.4
    assert lines[-1]["done_gpu_h"] >= before["done_gpu_h"] + 2 * down_h  # 2 GPUs


@pytest.mark.usefixtures("cache")
def test_a_supervisor_killed_while_pausing_does_not_take_the_checkpoint_for_done(
        tmp_path: Path) -> None:
    """Killed after sending the checkpoint signal, before saving 'paused': the
    training's exit 0 on that signal is a checkpoint, not the end of the training."""
    from greenepoch.planner.run.process import Training
    from greenepoch.planner.run.state import RunDir, State

    data = write_constant(tmp_path / "data", [250.0])
    marks = tmp_path / "marks"
    marks.mkdir()
    obey = [sys.executable, str(CHILDREN), "obey", str(marks)]
    run_spec = spec(tmp_path, data, obey)
    run_dir = RunDir(run_spec.run_dir)
    state = State.new("threshold", obey)
    with run_dir.lock():  # what the killed supervisor did: start, then pause
        child = Training(obey, run_dir, checkpoint_dir=run_dir.checkpoints).start(0, False)
        state.child_pid, state.child_start_ticks = child.pid, child.start_ticks
        state.phase = "running"
        run_dir.save(state)
        end = time.monotonic() + 30
        while not list(marks.glob("ready-*")) and time.monotonic() < end:
            time.sleep(0.05)
        state.phase = "pausing"  # saved before the signal (Controller._pause)
        run_dir.save(state)
        os.kill(child.pid, signal.SIGUSR1)  # to the shim, which passes it on
        while not list(marks.glob("checkpoint-*")) and time.monotonic() < end:
            time.sleep(0.05)
    stops: list[Any] = []
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(supervise(
        run_spec, install_signals=False, built=lambda c: stops.append(c.stop))))
    thread.start()
    try:
        end = time.monotonic() + 30
        while len(list(marks.glob("ready-*"))) < 2 and time.monotonic() < end \
                and thread.is_alive():
            time.sleep(0.05)
    finally:
        if stops:
            stops[-1]("SIGTERM received")
        thread.join(30)
    assert got and got[-1].phase == "stopped", got
    names = [k for k in kinds(run_dir.log_path) if k != "decision"]
    assert "done" not in names and "resume" in names, names
