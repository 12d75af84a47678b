"""Decision epochs longer than a slot, real submit times, and the replay CLI's inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.data.errors import RequestError
from greenepoch.planner.cli.main import cli
from greenepoch.planner.replay.engine import Compiled, Scenario, run_replay
from greenepoch.planner.replay.jobs import ReplayJob, read_jobs_csv
from greenepoch.planner.replay.policies import POLICIES, Threshold, get_policy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.planner.replay.test_replay import HISTORY_H, START, history

PUE = 1.2


def job(name: str, zone: str, at_h: float, dur: float, slack: float, gpus: int = 8,
        interruptible: bool = True, overhead: float = 0.0) -> ReplayJob:
    submit = START + pd.Timedelta(hours=at_h)
    deadline = submit.ceil("1h") + pd.Timedelta(hours=math.ceil(dur + overhead) + slack)
    return ReplayJob(name, zone, submit, gpus, dur, deadline, interruptible, overhead)


def scenario(actual: pd.DataFrame, jobs: list[ReplayJob], hours: int, capacity: int = 64,
             epoch: str = "1h") -> Scenario:
    zones = list(actual.columns)
    return Scenario(actual, START, START + pd.Timedelta(hours=hours), tuple(jobs),
                    {z: capacity for z in zones}, {z: PUE for z in zones},
                    epoch=pd.Timedelta(epoch), forecast="seasonal")  # too short for blend


def test_oracle_does_not_plan_slots_before_the_job_is_seen() -> None:
    # submitted at 01:00, first seen at the 02:00 epoch; the cheapest slot is 01:00,
    # which no policy can use: the oracle must still meet the 05:00 deadline
    actual = history(24)
    actual.iloc[HISTORY_H + 1 : HISTORY_H + 5, 0] = [1.0, 500.0, 600.0, 700.0]
    jobs = [job("a", "A", 1, 3, 1)]
    c = Compiled(scenario(actual, jobs, 24, epoch="2h"))
    res = run_replay(c, get_policy("oracle"), record=True)
    row = res.jobs.loc["a"]
    assert not row["missed"]
    assert row["completion"] == START + pd.Timedelta(hours=5)
    assert sorted(res.info["schedule"]["slot"] - HISTORY_H) == [2, 3, 4]


def _instance(draw: st.DrawFn) -> tuple[pd.DataFrame, list[ReplayJob], int, int, str]:
    hours = 48
    epoch = draw(st.sampled_from([2, 3]))
    jobs = []
    for i in range(draw(st.integers(1, 4))):
        jobs.append(job(f"j{i}", draw(st.sampled_from(["A", "B"])), draw(st.integers(0, 20)),
                        draw(st.sampled_from([1.0, 2.0, 3.0, 4.5, 6.0])),
                        draw(st.integers(epoch - 1, 16)),  # room for the wait to the epoch
                        gpus=draw(st.sampled_from([4, 8, 16])),
                        interruptible=draw(st.booleans()),
                        overhead=draw(st.sampled_from([0.0, 0.0, 0.25]))))
    seed = draw(st.integers(0, 10_000))
    return history(hours, seed=seed), jobs, hours, draw(st.sampled_from([16, 64])), f"{epoch}h"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.composite(_instance)())
def test_coarse_epochs_keep_deadlines_and_the_oracle_bound(inst: tuple) -> None:
    actual, jobs, hours, capacity, epoch = inst
    c = Compiled(scenario(actual, jobs, hours, capacity=capacity, epoch=epoch))
    results = {name: run_replay(c, get_policy(name)) for name in POLICIES}
    oracle = results["oracle"]
    if oracle.info["fallbacks"] == 0:  # else over-subscribed: no deadline-meeting plan
        assert oracle.info["limited"] == 0
        assert not oracle.jobs["missed"].any()
        best = float(oracle.jobs["emissions_kg"].sum())
        for name, res in results.items():
            if not res.jobs["missed"].any():
                assert float(res.jobs["emissions_kg"].sum()) >= best * (1 - 1e-6) - 1e-9, name
    if capacity >= 64:  # ample room: no policy misses, whatever the epoch
        for name, res in results.items():
            assert not res.jobs["missed"].any(), (name, epoch)


def test_window_too_short_after_the_epoch_wait_is_refused() -> None:
    actual = history(24)
    jobs = [job("a", "A", 1, 3, 0)]  # 01:00 .. 04:00, first seen at 02:00 with 2 h epochs
    assert not run_replay(Compiled(scenario(actual, jobs, 24)),
                          get_policy("oracle")).jobs["missed"].any()
    with pytest.raises(RequestError, match="shorter `epoch`"):
        Compiled(scenario(actual, jobs, 24, epoch="2h"))


def test_reported_submit_is_the_real_one() -> None:
    actual = history(24)
    jobs = [job("a", "A", 1.5, 2, 4)]  # submitted 01:30, first seen at 02:00
    res = run_replay(Compiled(scenario(actual, jobs, 24)), get_policy("run-now")).jobs
    assert res.loc["a", "submit"] == START + pd.Timedelta(hours=1.5)
    assert res.loc["a", "completion"] == START + pd.Timedelta(hours=4)
    assert res.loc["a", "latency_h"] == pytest.approx(2.5)


def test_threshold_hysteresis_keeps_a_run_but_does_not_start_one() -> None:
    # the live value (last observed slot) sits between the threshold and x (1 + H)
    actual = history(24)
    actual.iloc[HISTORY_H - 1 : HISTORY_H + 12, 0] = 105.0
    actual.iloc[HISTORY_H + 2, 0] = 50.0
    jobs = [job("a", "A", 0, 4, 12)]
    pol = Threshold(threshold=100.0, hysteresis=0.1, min_run_h=1.0)
    sched = run_replay(Compiled(scenario(actual, jobs, 24)), pol, record=True).info["schedule"]
    # 105 > 100: no start; 50 seen at slot 3: start; 105 <= 110: keep running
    assert (sched["slot"] - HISTORY_H).tolist() == [3, 4, 5, 6]


def test_policy_settings_out_of_range_are_refused() -> None:
    for kwargs, match in (({"threshold": -100.0}, "below 0"),
                          ({"hysteresis": 5.0}, r"in \[0, 1\]"),
                          ({"hysteresis": -0.1}, r"in \[0, 1\]")):
        with pytest.raises(RequestError, match=match):
            Threshold(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(RequestError, match="`replan_every_h` must be longer than 0"):
        get_policy("milp", replan_every_h=0.0)


def test_cloud_region_zones_in_jobs_csv(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("name,zone,submit,gpus,duration_h,slack_h\n"
                    "a,eu-central-1,2023-03-01T09:00Z,8,4,12\n"
                    "b,DE,2023-03-01T10:00Z,8,4,12\n"
                    "c,QQ,2023-03-01T10:00Z,8,4,12\n")
    assert [j.zone for j in read_jobs_csv(path)] == ["DE", "DE", "QQ"]


# the CLI (synthetic default intensities: no data folder)

BASE = ["replay", "--zones", "DE", "--from", "2023-03-01", "--until", "2023-03-08",
        "--generate", "n=4,dur=2-6,slack=24h,seed=1", "--forecast", "seasonal"]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    return CliRunner()


def test_cli_jobs_csv_with_cloud_region(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("name,zone,submit,gpus,duration_h,slack_h\n"
                    "c,eu-central-1,2023-03-03T09:30Z,16,5,48\n")
    result = runner.invoke(cli, ["replay", "--from", "2023-03-01", "--until", "2023-03-08",
                                 "--jobs", str(path), "--capacity", "eu-central-1=64",
                                 "--policies", "run-now,oracle", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["zones"] == ["DE"]
    rec = next(r for r in doc["jobs"] if r["policy"] == "run-now")
    assert rec["zone"] == "DE"
    assert rec["submit"] == "2023-03-03T09:30:00+00:00"
    assert rec["completion"] == "2023-03-03T15:00:00+00:00"
    assert rec["latency_h"] == pytest.approx(5.5)


def test_cli_info_has_only_policies_that_report(runner: CliRunner) -> None:
    result = runner.invoke(cli, [*BASE, "--policies", "run-now,threshold,greedy,oracle",
                                 "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)["info"]
    assert list(info) == ["oracle"]
    assert info["oracle"]["components"] >= 1


@pytest.mark.parametrize("args, message", [
    (["--threshold", "-100"], "give 0 or more"),
    (["--hysteresis", "5"], "--hysteresis = 5; give a fraction"),
    (["--threshold", "q0"], "--threshold 'q0': the quantile must be in (0, 1), e.g. q0.3"),
    (["--forecast-every", "0h"], "give e.g. --forecast-every 1h"),
    (["--forecast-every", "90min"], "whole number"),
    (["--epoch", "30min"], "--epoch 0.5 h must be a whole number"),
    (["--replan-every", "0h"], "--replan-every must be longer than 0"),
])
def test_cli_nonsense_settings_are_one_line_errors(runner: CliRunner, args: list[str],
                                                   message: str) -> None:
    result = runner.invoke(cli, [*BASE, "--policies", "run-now,threshold,milp", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error:"), result.stderr
    assert message in lines[0]


@pytest.mark.parametrize("args, message", [
    (["replay", "--zones", "DE", "--from", "2023-03-08", "--until", "2023-03-01",
      "--generate", "n=2"], "give an --until later than --from"),
    (["replay", "--zones", "DE", "--generate", "n=2"], "--from DATE and --until DATE"),
    ([*BASE, "--jobs", "jobs.csv"], "exactly one of --jobs"),
    ([*BASE, "--threshold", "abc"], "quantile like q0.3"),
    (["replay", "slack-sweep", "--data", ".", "--year", "2022", "--lengths", "abc"],
     "whole hours like 1,6,24"),
])
def test_cli_usage_errors_say_what_to_do(runner: CliRunner, args: list[str],
                                         message: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error:"), result.stderr
    assert message in lines[0]


def test_help_describes_the_hysteresis_the_code_applies(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["replay", "--help"])
    text = " ".join(result.output.split())
    assert "pause only above threshold x (1 + hysteresis)" in text
    assert "(1 - hysteresis)" not in text


@pytest.mark.realdata
@pytest.mark.parametrize("epoch", ["2h", "3h"])
@pytest.mark.parametrize("capacity", ["512", "DE=64,GB=32"])
def test_real_data_oracle_meets_deadlines_at_any_epoch(real_data: Path, epoch: str,
                                                       capacity: str) -> None:
    """The QA reproduction: odd-hour deadlines with 2 h and 3 h epochs."""
    result = CliRunner().invoke(cli, [
        "replay", "--data", str(real_data), "--zones", "DE,GB", "--from", "2022-03-01",
        "--until", "2022-03-15", "--generate", "n=20,seed=2,gpus=8-32",
        "--policies", "greedy,milp,oracle", "--epoch", epoch, "--capacity", capacity,
        "--forecast", "seasonal", "--json"])  # the QA reproduction's model
    assert result.exit_code == 0, result.output
    rows = {r["policy"]: r for r in json.loads(result.stdout)["summary"]}
    assert rows["oracle"]["misses"] == 0
    for name, row in rows.items():
        if row["misses"] == 0:
            assert row["emissions_kg"] >= rows["oracle"]["emissions_kg"] - 1e-9, name
    if capacity == "512":
        assert rows["greedy"]["misses"] == 0


def test_cli_default_forecast_is_the_best_measured_model(runner: CliRunner,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --forecast, replay uses forecasts.registry.DEFAULT_MODEL (blend; mean7d here,
    quick to fit) and records the model it stands for."""
    import greenepoch.forecasts.registry

    assert greenepoch.forecasts.registry.DEFAULT_MODEL == "blend"
    assert Scenario.__dataclass_fields__["forecast"].default == "default"
    monkeypatch.setattr(greenepoch.forecasts.registry, "DEFAULT_MODEL", "mean7d")
    args = [a for a in BASE if a not in ("--forecast", "seasonal")]
    result = runner.invoke(cli, [*args, "--policies", "run-now,greedy", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["forecast"] == "mean7d"
