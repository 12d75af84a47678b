"""Plans on 15-, 30- and 60-minute slots (issue 16), through ``greenepoch plan``.

Hourly data planned on finer slots is the same intensities (each slot repeats its
hour: the resampling rule going finer), so the optimum is the same; 30-minute data
whose halves differ inside each hour can only let a 30-minute plan do better than an
hourly plan on the hours it averages to.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.data.errors import RequestError
from greenepoch.planner.cli.main import cli
from greenepoch.planner.model import Policy

START = pd.Timestamp("2023-03-01", tz="UTC")
REQUEST = """
start = "2023-03-20T00:00:00Z"

[[jobs]]
name = "ft"
gpus = 8
gpu_hours = 48
deadline = "2023-03-22T00:00:00Z"
zones = ["DE", "GB"]

[[jobs]]
name = "rigid"
gpus = 4
gpu_hours = 20
max_interruptions = 0
deadline = "2023-03-21T12:00:00Z"
zones = ["DE"]

[[zones]]
id = "DE"
capacity_gpus = 16

[[zones]]
id = "GB"
capacity_gpus = 16

[policy]
slot = "{slot}"
"""


def hourly(days: int = 24) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    idx = pd.date_range(START, periods=24 * days, freq="1h", name="time")
    hour = idx.hour.to_numpy()
    return pd.DataFrame({z: np.round(320 + 140 * np.sin(2 * np.pi * (hour - 7 * k) / 24)
                                     + rng.normal(0, 30, len(idx)), 2)
                         for k, z in enumerate(("DE", "GB"))}, index=idx)


def write_long(values: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{t.isoformat()},{z},{v!r}" for z in values.columns
            for t, v in values[z].items()]
    (folder / "long.csv").write_text("time,zone,value\n" + "\n".join(rows) + "\n",
                                     encoding="utf-8")
    return folder


def halves(values: pd.DataFrame, swing: float = 40.0) -> pd.DataFrame:
    idx = pd.date_range(values.index[0], periods=2 * len(values), freq="30min", name="time")
    signs = np.tile([-1.0, 1.0], len(values))[:, None]
    return pd.DataFrame(np.repeat(values.to_numpy(), 2, axis=0) + swing * signs, index=idx,
                        columns=values.columns)


def plan(tmp_path: Path, data: Path, slot: str, *extra: str) -> dict:
    request = tmp_path / f"request_{slot}.toml"
    request.write_text(REQUEST.replace("{slot}", slot), encoding="utf-8")
    out = tmp_path / f"plan_{slot}_{len(extra)}.json"
    res = CliRunner().invoke(cli, ["plan", str(request), "--data", str(data),
                                   "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text(encoding="utf-8"))


def planned_kg(doc: dict) -> float:
    return sum(job["summary"]["emissions_kg"] for job in doc["jobs"])


def segment_edges(doc: dict) -> list[pd.Timestamp]:
    return [pd.Timestamp(seg[key]) for job in doc["jobs"] for seg in job["segments"]
            for key in ("start", "end")]


def test_policy_slots() -> None:
    for slot in ("15min", "30min", "1h"):
        assert Policy(slot=slot).slot_length == pd.Timedelta(slot)
    with pytest.raises(RequestError, match="'15min', '30min', '1h'"):
        Policy(slot="2h")
    with pytest.raises(RequestError, match=r"policy\.slot = '5min'"):
        Policy(slot="5min")


def test_hourly_data_plans_the_same_on_finer_slots(tmp_path: Path) -> None:
    data = write_long(hourly(), tmp_path / "hourly")
    docs = {slot: plan(tmp_path, data, slot, "--oracle") for slot in ("1h", "30min", "15min")}
    assert [d["slot"] for d in docs.values()] == ["1h", "30min", "15min"]
    want = planned_kg(docs["1h"])
    for slot in ("30min", "15min"):
        assert planned_kg(docs[slot]) == pytest.approx(want, rel=1e-3)
        baseline = [j["baselines"]["run_now_home"]["emissions_kg"] for j in docs[slot]["jobs"]]
        assert baseline == pytest.approx(
            [j["baselines"]["run_now_home"]["emissions_kg"] for j in docs["1h"]["jobs"]],
            rel=1e-9)


def test_a_plan_on_30min_data_and_slots(tmp_path: Path) -> None:
    base = hourly()
    data = write_long(halves(base), tmp_path / "half")
    half = plan(tmp_path, data, "30min", "--oracle")
    hour = plan(tmp_path, data, "1h", "--oracle")  # the same files averaged to hours
    assert (half["slot"], hour["slot"]) == ("30min", "1h")
    assert {t.minute for t in segment_edges(half)} <= {0, 30}
    assert any(t.minute == 30 for t in segment_edges(half))  # it uses the half-hours
    assert {t.minute for t in segment_edges(hour)} == {0}
    # the half-hours tell the plan more than their hourly means
    assert planned_kg(half) < planned_kg(hour)
    # run-now at home is the same energy over the same whole hours either way
    for a, b in zip(half["jobs"], hour["jobs"], strict=True):
        assert a["baselines"]["run_now_home"]["emissions_kg"] == pytest.approx(
            b["baselines"]["run_now_home"]["emissions_kg"], rel=1e-3)


def test_a_forecast_plan_on_30min_slots(tmp_path: Path) -> None:
    data = write_long(halves(hourly()), tmp_path / "half")
    doc = plan(tmp_path, data, "30min", "--forecast", "seasonal")
    assert doc["slot"] == "30min"
    assert doc["intensity"]["mode"] == "forecast"
    assert {t.minute for t in segment_edges(doc)} <= {0, 30}
    assert all(j["summary"]["realised_emissions_kg"] > 0 for j in doc["jobs"])
