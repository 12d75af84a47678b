"""Replays on 15- and 30-minute slots (issue 16: the UK's and Let's Wait Awhile's step).

Where the intensities are the same (an hourly trace repeated on half or quarter hours,
which is what the energy-weighted rule gives going finer), a policy that decides on the
hour must do what it does on hourly slots; finer slots can only help the oracle; and
30-minute data averaged back to hours replays as the hourly data it averages to.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.data.errors import RequestError
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.data.intensity.resample import resample
from greenepoch.data.intensity.source import ExportFolderSource
from greenepoch.planner.cli.main import cli
from greenepoch.planner.replay.engine import Scenario
from greenepoch.planner.replay.jobs import generate_jobs
from greenepoch.planner.replay.runner import replay_slot, run_policies
from greenepoch.planner.replay.scenario import build_scenario

START = pd.Timestamp("2023-03-01", tz="UTC")
HOURS = 6 * 24
SPEC = "n=12,dur=2-10,slack=6-30,gpus=8-32,interruptible=0.6,submit=any,seed=4"


def hourly(zones: tuple[str, ...] = ("A", "B"), seed: int = 1) -> pd.DataFrame:
    """A daily cycle plus noise, 8 days of history before START and HOURS after."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(START - pd.Timedelta("8D"), START + pd.Timedelta(hours=HOURS),
                        freq="1h", inclusive="left", name="time")
    hour = idx.hour.to_numpy()
    return pd.DataFrame({z: np.clip(300 + 150 * np.sin(2 * np.pi * (hour - 5 * k) / 24)
                                    + rng.normal(0, 40, len(idx)), 5, None)
                         for k, z in enumerate(zones)}, index=idx)


def on_slot(values: pd.DataFrame, slot: str) -> pd.DataFrame:
    """``values`` on ``slot`` slots by the resampling rule (finer: each slot repeats its hour)."""
    flags = pd.DataFrame(False, index=values.index, columns=values.columns)
    return resample(IntensityData(values, flags, flags.copy()), slot).values


def replay(actual: pd.DataFrame, policies: list[str]) -> dict[str, pd.DataFrame]:
    zones = [str(z) for z in actual.columns]
    end = START + pd.Timedelta(hours=HOURS)
    sc = Scenario(actual, START, end, generate_jobs(SPEC, zones, START, end,
                                                   timezones={z: "UTC" for z in zones}),
                  {z: 4096 for z in zones}, forecast="seasonal")
    settings = {"threshold": {"threshold": 300.0, "min_run_h": 2.0}}
    return {name: res.jobs for name, res in run_policies(sc, policies, settings=settings).items()}


# greedy is left out: the seasonal forecast repeats each day exactly, so its cheapest
# windows tie day to day and float rounding of the window sums (which differs with
# the number of slots summed) picks the day
POLICIES = ["run-now", "threshold", "oracle"]


@pytest.mark.parametrize("slot", ["30min", "15min"])
def test_same_intensities_on_finer_slots_replay_as_hourly(slot: str) -> None:
    base = hourly()
    hour = replay(base, POLICIES)
    fine = replay(on_slot(base, slot), POLICIES)
    for name in POLICIES:
        a, b = hour[name], fine[name]
        assert np.allclose(b["emissions_kg"], a["emissions_kg"], rtol=1e-9, atol=0), name
        assert np.allclose(b["energy_kwh"], a["energy_kwh"], rtol=1e-12), name
        if name != "oracle":  # the oracle may split a tie differently; it costs the same
            assert (b["completion"] == a["completion"]).all(), name
            assert (b["interruptions"] == a["interruptions"]).all(), name


def test_finer_information_only_helps_the_oracle() -> None:
    """Half-hours that differ inside each hour (same hourly means): run-now emits the
    same, the oracle at 30 min at most what it emits on hours."""
    base = hourly(seed=7)
    half = on_slot(base, "30min")
    swing = np.tile([-30.0, 30.0], len(half) // 2)[:, None]
    half = half + swing  # each hour keeps its mean
    hour = replay(base, ["run-now", "oracle"])
    fine = replay(half, ["run-now", "oracle"])
    assert fine["run-now"]["emissions_kg"].sum() == pytest.approx(
        hour["run-now"]["emissions_kg"].sum(), rel=1e-9)
    assert fine["oracle"]["emissions_kg"].sum() < hour["oracle"]["emissions_kg"].sum()


def test_replay_slot_rule() -> None:
    assert replay_slot(pd.Timedelta("30min")) == "30min"
    assert replay_slot(pd.Timedelta("5min")) == "15min"
    assert replay_slot(pd.Timedelta("1h")) == "1h"
    assert replay_slot(pd.Timedelta("5min"), "1h") == "1h"
    with pytest.raises(RequestError, match="`slot` '2h'"):
        replay_slot(pd.Timedelta("1h"), "2h")


# ---- on the shared real data, through files and the CLI --------------------------

ZONES = ["DE", "GB"]
FROM, UNTIL = pd.Timestamp("2023-02-01", tz="UTC"), pd.Timestamp("2023-02-08", tz="UTC")
CLI_SPEC = "n=20,dur=2-12,slack=6-24,gpus=8-32,seed=2"


def write_long(values: pd.DataFrame, file: Path) -> None:
    rows = [f"{t.isoformat()},{z},{v!r}" for z in values.columns
            for t, v in values[z].items()]
    file.write_text("time,zone,value\n" + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def real_hourly(real_data: Path) -> pd.DataFrame:
    return ExportFolderSource(real_data).load(
        ZONES, FROM - pd.Timedelta("30D"), UNTIL).values


@pytest.fixture(scope="module")
def half_hour_folder(real_hourly: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
                     ) -> Path:
    """The real hourly data as 30-minute files whose halves differ (x - 20, x + 20
    g/kWh where x >= 20; x itself elsewhere) and average back to x."""
    half = on_slot(real_hourly, "30min")
    swing = np.where(half >= 20.0, np.tile([-20.0, 20.0], len(half) // 2)[:, None], 0.0)
    folder = tmp_path_factory.mktemp("half-hours")
    write_long(half + swing, folder / "real_30min.csv")
    return folder


def cli_replay(folder: Path, *extra: str) -> dict:
    out = CliRunner().invoke(cli, [
        "replay", "--data", str(folder), "--zones", ",".join(ZONES),
        "--from", FROM.isoformat(), "--until", UNTIL.isoformat(), "--generate", CLI_SPEC,
        "--policies", "run-now,oracle", "--forecast", "seasonal", "--json", *extra])
    assert out.exit_code == 0, out.output
    return json.loads(out.output[out.output.index("{"):])


def emissions(doc: dict) -> dict[str, float]:
    return {row["policy"]: row["emissions_kg"] for row in doc["summary"]}


def test_a_30min_replay_of_real_data_end_to_end(half_hour_folder: Path,
                                                real_data: Path) -> None:
    hourly_doc = cli_replay(real_data)
    half_doc = cli_replay(half_hour_folder)
    assert (hourly_doc["slot"], half_doc["slot"]) == ("1h", "30min")
    assert half_doc["source"] == "real" and half_doc["n_jobs"] == hourly_doc["n_jobs"]
    got, want = emissions(half_doc), emissions(hourly_doc)
    assert got["run-now"] == pytest.approx(want["run-now"], rel=1e-9)
    assert got["oracle"] < want["oracle"]  # the half-hours tell it more
    # averaged back to hours (--slot 1h), the 30-minute files replay as the hourly data
    back = emissions(cli_replay(half_hour_folder, "--slot", "1h"))
    assert back == pytest.approx(want, rel=1e-9)


def test_hourly_data_replays_on_15min_slots(real_data: Path) -> None:
    quarter = cli_replay(real_data, "--slot", "15min")
    assert quarter["slot"] == "15min"
    assert emissions(quarter) == pytest.approx(emissions(cli_replay(real_data)), rel=1e-9)


def test_build_scenario_takes_a_slot(half_hour_folder: Path) -> None:
    for slot, step in (("30min", "30min"), ("1h", "1h"), ("15min", "15min"), (None, "30min")):
        assembled = build_scenario(ZONES, FROM, UNTIL, generate=CLI_SPEC,
                                   data=half_hour_folder, slot=slot)
        index = assembled.scenario.actual.index
        assert index[1] - index[0] == pd.Timedelta(step)
        assert assembled.slot == step


def test_a_bad_slot_is_one_error_line(half_hour_folder: Path) -> None:
    out = CliRunner().invoke(cli, [
        "replay", "--data", str(half_hour_folder), "--zones", "DE", "--from",
        FROM.isoformat(), "--until", UNTIL.isoformat(), "--generate", CLI_SPEC,
        "--slot", "5min"])
    assert out.exit_code == 2 and "5min" in out.output
