"""The replay engine and its policies on small synthetic histories."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import GreenEpochError, RequestError
from greenepoch.planner.replay.engine import Compiled, Scenario, run_replay
from greenepoch.planner.replay.jobs import ReplayJob, generate_jobs, parse_spec, read_jobs_csv
from greenepoch.planner.replay.metrics import summary
from greenepoch.planner.replay.policies import POLICIES, Greedy, Threshold, get_policy
from greenepoch.planner.replay.runner import run_policies
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

START = pd.Timestamp("2023-03-01", tz="UTC")
HISTORY_H = 8 * 24
PUE = 1.2


def history(hours: int, zones: tuple[str, ...] = ("A", "B"), seed: int = 0) -> pd.DataFrame:
    """Hourly intensities: a daily cycle plus noise, from 8 days before START."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(START - pd.Timedelta(hours=HISTORY_H), periods=HISTORY_H + hours,
                        freq="1h", name="time")
    hour = idx.hour.to_numpy()
    cols = {}
    for k, z in enumerate(zones):
        base = 300 + 100 * k + 150 * np.sin(2 * np.pi * (hour - 6 * k) / 24)
        cols[z] = np.clip(base + rng.normal(0, 40, len(idx)), 5, None)
    return pd.DataFrame(cols, index=idx)


def job(name: str, zone: str, at_h: int, dur: float, slack: float, gpus: int = 8,
        interruptible: bool = True, overhead: float = 0.0) -> ReplayJob:
    submit = START + pd.Timedelta(hours=at_h)
    return ReplayJob(name, zone, submit, gpus, dur,
                     submit + pd.Timedelta(hours=math.ceil(dur + overhead) + slack),
                     interruptible, overhead)


def scenario(actual: pd.DataFrame, jobs: list[ReplayJob], hours: int, capacity: int = 64,
             **kw: object) -> Scenario:
    zones = list(actual.columns)
    kw.setdefault("forecast", "seasonal")  # 8 days of history: too short for blend (27)
    return Scenario(actual, START, START + pd.Timedelta(hours=hours), tuple(jobs),
                    {z: capacity for z in zones}, {z: PUE for z in zones}, **kw)


def test_run_now_emissions_equal_hand_computed_sum() -> None:
    actual = history(48)
    jobs = [job("a", "A", 2, 3.0, 10, gpus=4), job("b", "B", 5, 2.5, 10, gpus=2)]
    res = run_replay(Compiled(scenario(actual, jobs, 48)), get_policy("run-now"))
    x = actual.loc[START:]
    a = 4 * 1.0 * PUE * x["A"].iloc[2:5].sum() / 1000
    b = 2 * 1.0 * PUE * (x["B"].iloc[5:7].sum() + 0.5 * x["B"].iloc[7]) / 1000
    assert res.jobs.loc["a", "emissions_kg"] == pytest.approx(a, rel=1e-12)
    assert res.jobs.loc["b", "emissions_kg"] == pytest.approx(b, rel=1e-12)
    assert res.jobs.loc["b", "completion"] == START + pd.Timedelta(hours=7.5)
    assert res.jobs.loc["a", "energy_kwh"] == pytest.approx(4 * 3 * PUE)
    assert not res.jobs["missed"].any()


def test_checkpoint_overhead_is_paid_at_every_start() -> None:
    actual = history(48)
    jobs = [job("a", "A", 0, 3.0, 20, overhead=0.25)]
    c = Compiled(scenario(actual, jobs, 48))
    res = run_replay(c, get_policy("oracle"))
    row = res.jobs.loc["a"]
    assert row["overhead_h"] == pytest.approx(0.25 * (row["interruptions"] + 1))
    assert row["energy_kwh"] == pytest.approx((3.0 + row["overhead_h"]) * 8 * PUE)


def decisions(res: object) -> pd.DataFrame:
    return res.info["schedule"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["run-now", "threshold", "greedy", "milp"])
def test_no_look_ahead(name: str) -> None:
    """Perturbing the data from slot tau on leaves every decision up to tau unchanged."""
    hours = 72
    actual = history(hours, seed=3)
    jobs = [job("a", "A", 1, 5, 20), job("b", "B", 3, 4, 30, interruptible=False),
            job("c", "A", 10, 6, 24)]
    base = decisions(run_replay(Compiled(scenario(actual, jobs, hours)), get_policy(name),
                                record=True))
    t0 = HISTORY_H
    rng = np.random.default_rng(7)
    for tau in (t0 + 4, t0 + 12, t0 + 30):
        noisy = actual.copy()
        noisy.iloc[tau:] = noisy.iloc[tau:].to_numpy() * rng.uniform(0.2, 3.0,
                                                                     noisy.iloc[tau:].shape)
        other = decisions(run_replay(Compiled(scenario(noisy, jobs, hours)), get_policy(name),
                                     record=True))
        upto = base[base["slot"] <= tau].reset_index(drop=True)
        pd.testing.assert_frame_equal(upto, other[other["slot"] <= tau].reset_index(drop=True))


@pytest.mark.parametrize("interruptible", [True, False])
def test_deadline_guard_forces_running(interruptible: bool) -> None:
    actual = history(96)
    jobs = [job("a", "A", 0, 6, 30, interruptible=interruptible),
            job("b", "B", 4, 10.5, 12, interruptible=interruptible, overhead=0.5)]
    never = Threshold(threshold=0.0)  # intensity is never at or below 0: only the guard runs
    res = run_replay(Compiled(scenario(actual, jobs, 96)), never, record=True)
    assert not res.jobs["missed"].any()
    assert res.jobs["done"].all()
    sched = decisions(res)
    a = sched[sched["job"] == 0]["slot"].to_numpy() - HISTORY_H
    # waits as long as it can, then runs to the deadline
    assert a.tolist() == list(range(30, 36))


def test_threshold_hysteresis_and_min_run() -> None:
    idx_h = 48
    actual = history(idx_h)
    values = actual.copy()
    seq = [100, 400, 100, 100, 105, 120, 100, 300, 300, 300]
    values.iloc[HISTORY_H - 1 : HISTORY_H - 1 + len(seq), 0] = seq
    jobs = [job("a", "A", 0, 8, 30)]
    pol = Threshold(threshold=110.0, hysteresis=0.1, min_run_h=2.0)
    sched = decisions(run_replay(Compiled(scenario(values, jobs, idx_h)), pol, record=True))
    ran = (sched["slot"] - HISTORY_H).tolist()
    # live value = the last observed slot: 100 -> run slot 0; 400 but young -> run 1;
    # 100, 100, 105 (<= 121) run, 120 keeps (hysteresis), 100 run, 300 -> pause
    assert ran[:7] == [0, 1, 2, 3, 4, 5, 6]
    assert 7 not in ran or 8 not in ran


def test_greedy_picks_cheapest_forecast_slots() -> None:
    from greenepoch.planner.replay.policies import _greedy_runs_now

    f = np.array([5.0, 1.0, 9.0, 2.0, 7.0])
    assert not _greedy_runs_now(f, 2, True)
    assert _greedy_runs_now(f, 4, True)
    assert _greedy_runs_now(np.array([1.0, 2.0, 9.0, 0.5]), 2, False)  # 3.0 < 9.5, 11
    assert not _greedy_runs_now(np.array([9.0, 2.0, 1.0, 9.0]), 2, False)
    assert _greedy_runs_now(f, 5, False)


def _instance(draw: st.DrawFn) -> tuple[pd.DataFrame, list[ReplayJob], int, int]:
    hours = 48
    seed = draw(st.integers(0, 10_000))
    n = draw(st.integers(1, 4))
    jobs = []
    for i in range(n):
        dur = draw(st.sampled_from([1.0, 2.0, 3.0, 4.5, 6.0]))
        jobs.append(job(f"j{i}", draw(st.sampled_from(["A", "B"])), draw(st.integers(0, 20)),
                        dur, draw(st.integers(0, 16)), gpus=draw(st.sampled_from([4, 8, 16])),
                        interruptible=draw(st.booleans()),
                        overhead=draw(st.sampled_from([0.0, 0.0, 0.25]))))
    capacity = draw(st.sampled_from([16, 64]))
    return history(hours, seed=seed), jobs, hours, capacity


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.composite(_instance)())
def test_properties_on_random_instances(inst: tuple) -> None:
    actual, jobs, hours, capacity = inst
    c = Compiled(scenario(actual, jobs, hours, capacity=capacity))
    results = {name: run_replay(c, get_policy(name), record=True) for name in POLICIES}
    oracle = results["oracle"]
    # an over-subscribed draw (jobs that cannot all meet their deadlines within the
    # shared capacity) has no oracle optimum to compare against
    assume(oracle.info["fallbacks"] == 0)
    assert oracle.info["limited"] == 0
    best = float(oracle.jobs["emissions_kg"].sum())
    for name, res in results.items():
        f = res.jobs
        sched = res.info["schedule"]
        # capacity is never exceeded
        used = sched.assign(zone=c.zone[sched["job"]], gpus=c.gpus[sched["job"]]) \
            .groupby(["zone", "slot"])["gpus"].sum()
        assert (used <= capacity).all(), name
        # finished jobs did exactly their work plus the overhead they paid
        for j, row in enumerate(f.itertuples()):
            if row.done:
                ran = sched.loc[sched["job"] == j, "hours"].sum()
                assert ran == pytest.approx(c.work[j] + row.overhead_h, abs=1e-6), name
        if not f["missed"].any():
            # no policy beats the oracle (a lower bound over deadline-meeting schedules,
            # whether its components were planned alone or jointly by the MILP)
            assert f["emissions_kg"].sum() >= best * (1 - 1e-6) - 1e-9, name
        if capacity >= 64 and name != "run-now":  # ample room: nobody misses
            assert not f["missed"].any(), name
        # non-interruptible jobs run in one piece
        for j in np.flatnonzero(~c.interruptible).tolist():
            slots = np.sort(sched.loc[sched["job"] == j, "slot"].to_numpy())
            assert len(slots) == 0 or slots[-1] - slots[0] == len(slots) - 1, name


def test_oracle_planned_jointly_is_still_a_lower_bound() -> None:
    # three 8-GPU jobs with fractional work share 8 GPUs in zone A: their individual
    # optima collide, so the oracle plans them with the MILP; its last slots are only
    # partly run, as the engine charges them
    actual = history(48, seed=3)
    jobs = [job("a", "A", 0, 2.5, 20), job("b", "A", 1, 3.25, 19, overhead=0.25),
            job("c", "A", 2, 1.5, 18, interruptible=False)]
    c = Compiled(scenario(actual, jobs, 48, capacity=8))
    results = {name: run_replay(c, get_policy(name)) for name in POLICIES}
    oracle = results["oracle"]
    assert oracle.info["joint"] == 1 and oracle.info["limited"] == 0
    best = float(oracle.jobs["emissions_kg"].sum())
    compared = []
    for name, res in results.items():
        if not res.jobs["missed"].any():
            assert float(res.jobs["emissions_kg"].sum()) >= best * (1 - 1e-6), name
            compared.append(name)
    assert {"run-now", "threshold", "milp"} <= set(compared)


def test_summary_columns_and_oracle_share() -> None:
    actual = history(72)
    jobs = [job("a", "A", 0, 4, 24), job("b", "B", 2, 3, 30, interruptible=False)]
    res = run_policies(scenario(actual, jobs, 72), list(POLICIES))
    table = summary(res).set_index("policy")
    assert list(table.index) == list(POLICIES)
    assert table.loc["run-now", "saving_pct"] == 0
    assert table.loc["oracle", "oracle_share_pct"] == pytest.approx(100)
    assert (table["emissions_kg"] >= table.loc["oracle", "emissions_kg"] - 1e-9).all()
    assert table.loc["run-now", "delay_mean_h"] == 0


def test_capacity_is_shared() -> None:
    actual = history(48)
    jobs = [job("a", "A", 0, 3, 10, gpus=8), job("b", "A", 0, 3, 10, gpus=8)]
    res = run_replay(Compiled(scenario(actual, jobs, 48, capacity=8)), get_policy("run-now"))
    finish = res.jobs["completion"].sort_values()
    assert (finish - START).tolist() == [pd.Timedelta(hours=3), pd.Timedelta(hours=6)]


def test_epoch_of_several_slots() -> None:
    actual = history(48)
    jobs = [job("a", "A", 1, 3, 10)]
    res = run_replay(Compiled(scenario(actual, jobs, 48, epoch=pd.Timedelta("4h"))),
                     get_policy("run-now"))
    # submitted at 01:00, first decision at 04:00
    assert res.jobs.loc["a", "completion"] == START + pd.Timedelta(hours=7)


def test_forecast_model_is_pluggable() -> None:
    actual = history(48)
    jobs = [job("a", "A", 1, 3, 10)]
    sc = scenario(actual, jobs, 48, forecast="persistence")
    assert run_replay(Compiled(sc), Greedy()).jobs.loc["a", "done"]
    with pytest.raises(GreenEpochError, match="unknown forecast model"):
        run_replay(Compiled(scenario(actual, jobs, 48, forecast="nope")), Greedy())


def test_user_errors_say_what_to_do(tmp_path: object) -> None:
    actual = history(48)
    with pytest.raises(RequestError, match="raise `capacity`"):
        Compiled(scenario(actual, [job("a", "A", 0, 3, 10, gpus=128)], 48))
    with pytest.raises(RequestError, match="replay period"):
        Compiled(scenario(actual, [job("a", "A", 40, 3, 10)], 48))
    with pytest.raises(RequestError, match="add it to `zones`"):
        Compiled(scenario(actual, [job("a", "C", 0, 3, 10)], 48))
    with pytest.raises(RequestError, match="unknown replay policy"):
        get_policy("fastest")


def test_generator_spec() -> None:
    end = START + pd.Timedelta("30D")
    jobs = generate_jobs("n=50,dur=2-10,submit=weekdays09-17,slack=24h,gpus=8-16,seed=3,"
                         "interruptible=0.5", ["DE", "GB"], START, end)
    assert len(jobs) == 50
    for j in jobs:
        local = j.submit.tz_convert("Europe/Berlin" if j.zone == "DE" else "Europe/London")
        assert local.day_of_week < 5 and 9 <= local.hour < 17
        assert 2 <= j.duration_h <= 10 and 8 <= j.gpus <= 16 and j.deadline <= end
        assert j.deadline - j.submit == pd.Timedelta(hours=j.duration_h + 24)
    assert 5 < sum(j.interruptible for j in jobs) < 45
    again = generate_jobs("n=50,dur=2-10,submit=weekdays09-17,slack=24h,gpus=8-16,seed=3,"
                          "interruptible=0.5", ["DE", "GB"], START, end)
    assert again == jobs
    with pytest.raises(RequestError, match="unknown key 'durr'"):
        parse_spec("n=3,durr=2")
    with pytest.raises(RequestError, match="needs n="):
        parse_spec("dur=2")
    with pytest.raises(RequestError, match="weekdaysHH-HH"):
        generate_jobs("n=2,submit=mondays", ["DE"], START, end)


def test_jobs_csv(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "jobs.csv"
    path.write_text(
        "name,zone,submit,gpus,duration_h,slack_h,deadline,interruptible\n"
        "a,DE,2023-03-01T02:00Z,8,4,12,,true\n"
        "b,GB,2023-03-01T03:00Z,16,2.5,,2023-03-02T00:00Z,false\n"
    )
    a, b = read_jobs_csv(path)
    assert a.deadline == pd.Timestamp("2023-03-01T18:00Z")
    assert not b.interruptible and b.gpus == 16
    path.write_text("name,zone,submit,gpus,duration_h,slack_h\na,DE,2023-03-01,8,4,12\n")
    with pytest.raises(RequestError, match=r"row 2.*UTC offset"):
        read_jobs_csv(path)
    path.write_text("name,zone,submit\n")
    with pytest.raises(RequestError, match="expected columns"):
        read_jobs_csv(path)


class _EveryOtherSlot(Threshold):
    """Holds every other slot: a pause after each held slot until the job is done."""

    name = "every-other"

    def decide(self, view: object) -> np.ndarray:
        n = len(view.active)  # type: ignore[attr-defined]
        held = float((view.t - view.c.t0) % 2 == 0)  # type: ignore[attr-defined]
        return np.full((n, view.n_slots), held * view.slot_h)  # type: ignore[attr-defined]


def test_checkpoint_save_is_lost_at_every_pause() -> None:
    actual = history(48)
    saving = ReplayJob("a", "A", START, 8, 3.0, START + pd.Timedelta(hours=24),
                       checkpoint_overhead_h=0.25, checkpoint_save_h=0.5)
    res = run_replay(Compiled(scenario(actual, [saving], 48)), _EveryOtherSlot(), record=True)
    row = res.jobs.loc["a"]
    # each one-slot run progresses 1 - 0.25 h and loses 0.5 h at its pause: 0.25 h net
    # per paused run; 3 h of work take 9 paused runs (2.25 h) and a last run of 0.75 h
    assert row["done"] and row["interruptions"] == 9
    assert row["save_h"] == pytest.approx(0.5 * row["interruptions"])
    hours_run = float(decisions(res)["hours"].sum())
    assert hours_run == pytest.approx(3.0 + row["overhead_h"] + row["save_h"])
    assert row["energy_kwh"] == pytest.approx(hours_run * 8 * PUE)


def test_checkpoint_save_reaches_the_planner_and_the_oracle_counts_it() -> None:
    from greenepoch.planner.replay.policies import window_problem

    actual = history(48)
    cheap = [START + pd.Timedelta(hours=h) for h in (2, 6, 10, 14, 18)]
    actual.loc[actual.index >= START, "A"] = 500.0
    actual.loc[cheap, "A"] = 50.0  # five clean hours apart: worth pausing between them
    saving = ReplayJob("a", "A", START, 8, 3.0, START + pd.Timedelta(hours=30),
                       checkpoint_save_h=0.25)
    c = Compiled(scenario(actual, [saving], 48))
    problem = window_problem(c, c.t0, c.t0 + 30, c.intensity[:, c.t0:],
                             [(0, 3.0, c.t0 + 30)], np.zeros((2, 30), dtype=np.int64))
    assert problem.jobs[0].save_h == 0.25
    row = run_replay(c, get_policy("oracle")).jobs.loc["a"]
    # four clean hours, three saves: 4 - 3 x 0.25 >= 3 h of work (three would give 2.5)
    assert row["done"] and not row["missed"] and row["interruptions"] == 3
    assert row["save_h"] == pytest.approx(0.25 * 3)
    assert row["energy_kwh"] == pytest.approx((3.0 + 0.75) * 8 * PUE)


def test_checkpoint_save_csv_column_and_bounds(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "jobs.csv"
    path.write_text("name,zone,submit,gpus,duration_h,slack_h,checkpoint_save_h\n"
                    "a,DE,2023-03-01T02:00Z,8,4,12,0.25\nb,DE,2023-03-01T02:00Z,8,4,12,\n")
    a, b = read_jobs_csv(path)
    assert (a.checkpoint_save_h, b.checkpoint_save_h) == (0.25, 0.0)
    path.write_text("name,zone,submit,gpus,duration_h,slack_h,checkpoint_save_h\n"
                    "a,DE,2023-03-01T02:00Z,8,4,12,-1\n")
    with pytest.raises(RequestError, match=r"row 2.*checkpoint_save_h"):
        read_jobs_csv(path)
    long = ReplayJob("a", "A", START, 8, 3.0, START + pd.Timedelta(hours=24),
                     checkpoint_overhead_h=0.5, checkpoint_save_h=0.5)
    with pytest.raises(RequestError, match=r"overhead_h \+ checkpoint_save_h = 1 must be "
                                           "shorter than one slot"):
        Compiled(scenario(history(48), [long], 48))
