"""``forecast backtest`` on 30-minute data (issue 16): the models run on hours, so a
folder of 30-minute long-format CSVs is brought to hours by the energy-weighted rule
(forecasts.data.load_values), and scores exactly as the hourly data it averages to."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.forecasts.data import load_values
from greenepoch.planner.cli.main import cli

START = pd.Timestamp("2023-01-01", tz="UTC")


def hourly(days: int = 45) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    idx = pd.date_range(START, periods=24 * days, freq="1h", name="time")
    hour = idx.hour.to_numpy()
    return pd.DataFrame({z: np.round(300 + 120 * np.sin(2 * np.pi * (hour - 4 * k) / 24)
                                     + rng.normal(0, 25, len(idx)), 2)
                         for k, z in enumerate(("DE", "GB"))}, index=idx)


def write_long(values: pd.DataFrame, file: Path) -> None:
    rows = [f"{t.isoformat()},{z},{v!r}" for z in values.columns
            for t, v in values[z].items()]
    file.write_text("time,zone,value\n" + "\n".join(rows) + "\n", encoding="utf-8")


def halves(values: pd.DataFrame, swing: float = 15.0) -> pd.DataFrame:
    """Each hour as two 30-minute periods, ``swing`` below and above its value."""
    idx = pd.date_range(values.index[0], periods=2 * len(values), freq="30min", name="time")
    signs = np.tile([-1.0, 1.0], len(values))[:, None]
    return pd.DataFrame(np.repeat(values.to_numpy(), 2, axis=0) + swing * signs, index=idx,
                        columns=values.columns)


def backtest(folder: Path) -> list[dict]:
    out = CliRunner().invoke(cli, [
        "forecast", "backtest", "--data", str(folder), "--zones", "all",
        "--train-until", "2023-01-31", "--test-from", "2023-02-01",
        "--test-until", "2023-02-03", "--forecast", "climatology",
        "--no-provider-forecasts", "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_load_values_brings_30min_data_to_hours(tmp_path: Path) -> None:
    base = hourly(3)
    write_long(halves(base), tmp_path / "half.csv")
    got = load_values(str(tmp_path), "direct", "all")
    assert got.index[1] - got.index[0] == pd.Timedelta("1h")
    assert np.allclose(got.to_numpy(), base.to_numpy(), rtol=1e-12)


def test_backtest_on_30min_files_scores_as_the_hourly_data(tmp_path: Path) -> None:
    base = hourly()
    (tmp_path / "half").mkdir()
    (tmp_path / "hour").mkdir()
    write_long(halves(base), tmp_path / "half" / "half.csv")
    write_long(base, tmp_path / "hour" / "hour.csv")
    half, hour = backtest(tmp_path / "half"), backtest(tmp_path / "hour")
    assert [(r["zone"], r["model"], r["band"]) for r in half] == \
        [(r["zone"], r["model"], r["band"]) for r in hour]
    assert {r["model"] for r in half} >= {"climatology"}
    for a, b in zip(half, hour, strict=True):
        for key, value in b.items():
            if isinstance(value, float) and key != "seconds":
                assert a[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, b)
