"""Published day-ahead prices as known covariates: publication masking and no leakage."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest
from greenepoch.forecasts.base import STATS, ForecastError
from greenepoch.forecasts.prices import MARKETS, DayAheadPrices, load_prices, publication_times
from greenepoch.forecasts.registry import get_model

ISSUE = pd.Timestamp("2023-03-10T00:00:00Z")


def synthetic(days: int = 120, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DE intensity driven by a random daily 'wind' level that the DE price also carries;
    NO has no market.  Returns (intensity gCO2eq/kWh, prices USD/MWh)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2022-12-01", periods=days * 24, freq="1h", tz="UTC", name="time")
    hour = index.hour.to_numpy()
    wind = np.repeat(rng.normal(0, 1, days), 24)
    de = 350 + 60 * np.sin(2 * np.pi * (hour - 6) / 24) - 90 * wind + rng.normal(0, 5, len(index))
    no = 20 + 3 * np.cos(2 * np.pi * hour / 24) + rng.normal(0, 0.5, len(index))
    values = pd.DataFrame({"DE": np.maximum(de, 5), "NO": np.maximum(no, 1)}, index=index)
    noise = rng.normal(0, 3, len(index))
    price = 120 + 40 * np.sin(2 * np.pi * (hour - 6) / 24) - 50 * wind + noise
    return values, pd.DataFrame({"DE": price}, index=index)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic()


@pytest.fixture(scope="module")
def fitted(data: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, object]:
    values, prices = data
    covariates = DayAheadPrices.from_frame(prices)
    history = values[values.index < ISSUE]
    return {name: get_model(name, prices=covariates).fit(history) for name in ("gbm", "blend")}


def test_publication_time_of_a_day_ahead_and_a_real_time_market() -> None:
    index = pd.date_range("2023-07-20", periods=48, freq="1h", tz="UTC")
    pub = publication_times(index, MARKETS["DE"])
    # delivery day 2023-07-20 CEST starts 2023-07-19 22:00 UTC; published 14:00 CEST the day before
    assert pub[0] == pd.Timestamp("2023-07-19T12:00Z")
    assert pub[22] == pd.Timestamp("2023-07-20T12:00Z")  # 22:00 UTC = 00:00 CEST next day
    rt = publication_times(index, MARKETS["AU-NSW"])
    assert (rt == index + pd.Timedelta("1h")).all()


def test_features_are_nan_unless_published_by_the_issue(
        data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    values, prices = data
    cov = DayAheadPrices.from_frame(prices)
    t0 = values.index[0]
    step = pd.Timedelta("1h")
    issue = np.array([int((ISSUE - t0) / step), int((ISSUE - t0) / step) + 13])
    pos = issue[:, None] + np.arange(48)[None, :]
    f = cov.features("DE", t0, step, issue, pos)
    # winter: day D (CET) ends 23:00 UTC; at 13:00 UTC (14:00 CET) D+1 is published too
    assert f[0, :, 0].sum() == 23 and f[1, :, 0].sum() == 10 + 24
    assert np.isnan(f[0, 23:, 1:]).all() and not np.isnan(f[0, :23, 1:]).any()
    nothing = cov.features("NO", t0, step, issue, pos)
    assert (nothing[..., 0] == 0).all() and np.isnan(nothing[..., 1:]).all()


def _published_after(prices: pd.DataFrame, issue: pd.Timestamp) -> np.ndarray:
    return np.asarray(publication_times(prices.index, MARKETS["DE"]) > issue)


@pytest.mark.parametrize("name", ["gbm", "blend"])
def test_prices_published_after_the_issue_do_not_change_the_forecast(
        name: str, fitted: dict, data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    values, prices = data
    model = fitted[name]
    before = model.predict(ISSUE, pd.Timedelta("96h"), data=values)
    later = _published_after(prices, ISSUE)
    altered = prices.copy()
    altered.loc[later, "DE"] = altered.loc[later, "DE"] * 3 + 500
    model.prices = DayAheadPrices.from_frame(altered)
    if name == "blend":
        model.members_[0].prices = model.prices
    try:
        after = model.predict(ISSUE, pd.Timedelta("96h"), data=values)
        pd.testing.assert_frame_equal(before, after)
        # ... while a price already published at the issue time does change it
        known = prices.copy()
        first = np.flatnonzero(~later & (prices.index >= ISSUE))
        assert len(first) == 23
        known.iloc[first, 0] = known.iloc[first, 0] - 300
        model.prices = DayAheadPrices.from_frame(known)
        if name == "blend":
            model.members_[0].prices = model.prices
        changed = model.predict(ISSUE, pd.Timedelta("96h"), data=values)
        de = changed[("DE", "mean")].to_numpy()
        assert not np.allclose(de[:23], before[("DE", "mean")].to_numpy()[:23])
        np.testing.assert_array_equal(de[23:], before[("DE", "mean")].to_numpy()[23:])
        pd.testing.assert_frame_equal(changed["NO"], before["NO"])
    finally:
        model.prices = DayAheadPrices.from_frame(prices)
        if name == "blend":
            model.members_[0].prices = model.prices


@pytest.mark.parametrize("name", ["gbm", "blend"])
def test_contract_with_prices(name: str, fitted: dict,
                              data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    values, _ = data
    model = fitted[name]
    out = model.predict(ISSUE, pd.Timedelta("96h"), data=values)
    assert list(out.columns) == [(z, s) for z in ["DE", "NO"] for s in STATS]
    assert not out.isna().to_numpy().any() and (out.to_numpy() >= 0).all()
    # no look-ahead in the intensity data either, and the batch form agrees
    altered = values.copy()
    altered.loc[altered.index >= ISSUE] *= 3.0
    pd.testing.assert_frame_equal(out, model.predict(ISSUE, pd.Timedelta("96h"), data=altered))
    issue = int((ISSUE - values.index[0]) / pd.Timedelta("1h"))
    batch = model.predict_batch(values.to_numpy(), values.index[0], np.array([issue - 1]), 1,
                                96)[0]
    np.testing.assert_allclose(batch[:, :, 0], out.xs("mean", axis=1, level=1).to_numpy())


def test_options_only_for_models_that_take_them(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    cov = DayAheadPrices.from_frame(data[1])
    with pytest.raises(ForecastError, match="does not take option"):
        get_model("mean7d", prices=cov)
    assert get_model("default", prices=cov).prices is cov  # type: ignore[attr-defined]
    assert get_model("blend").prices is None  # type: ignore[attr-defined]


@pytest.mark.realdata
def test_real_prices_are_masked_at_a_midnight_issue(real_data) -> None:  # type: ignore[no-untyped-def]
    cov = load_prices(real_data, zones=["DE", "US-CAL-CISO", "AU-NSW"])
    t0 = pd.Timestamp("2023-01-01", tz="UTC")
    issue = np.array([24 * 30])  # 2023-01-31 00:00 UTC
    pos = issue[:, None] + np.arange(72)[None, :]
    known = {z: int(cov.features(z, t0, pd.Timedelta("1h"), issue, pos)[0, :, 0].sum())
             for z in ("DE", "US-CAL-CISO", "AU-NSW")}
    # DE: the rest of 31 Jan CET (23 h); CAISO: 30 Jan PST remainder + 31 Jan PST (32 h)
    assert known == {"DE": 23, "US-CAL-CISO": 32, "AU-NSW": 0}


def _write_folder(folder: Path, values: pd.DataFrame, prices: pd.DataFrame) -> None:
    """Electricity Maps exports of ``values`` and a DE-LU price file of ``prices``."""
    from tests.forecasts.test_forecasts_backtest import write_exports

    write_exports(folder, values)
    (folder / "prices").mkdir()
    local = prices.index.tz_convert("Europe/Berlin")
    pd.DataFrame({"Datetime (UTC)": prices.index.strftime("%Y-%m-%d %H:%M:%S+00:00"),
                  "Datetime (Local)": local.strftime("%Y-%m-%d %H:%M:%S%z"),
                  "Price (USD/MWh)": prices["DE"].round(3)}).to_csv(
        folder / "prices" / "DE-LU_2023_prices.csv", index=False)


def test_cli_prices_flag_reaches_the_model(tmp_path: Path,
                                           data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from click.testing import CliRunner

    from tests.forecasts.test_forecasts_backtest import _cli

    values, prices = data
    _write_folder(tmp_path, values, prices)
    args = ["forecast", "predict", "--data", str(tmp_path), "--zone", "DE", "--issue",
            "2023-03-10T00:00:00Z", "--horizon", "24h", "--model", "gbm", "--json"]
    runner = CliRunner()
    plain = runner.invoke(_cli(), args)
    priced = runner.invoke(_cli(), [*args, "--prices"])
    assert plain.exit_code == 0 and priced.exit_code == 0, plain.output + priced.output
    a = pd.DataFrame(json.loads(plain.stdout))
    b = pd.DataFrame(json.loads(priced.stdout))
    assert list(a["time"]) == list(b["time"]) and len(a) == 24
    # the issue day's prices were published the day before: the forecast uses them
    assert not np.allclose(a["mean"][:23], b["mean"][:23])
    # 23:00 UTC is the next delivery day (CET), whose prices come out at 12:00 UTC that day
    assert np.isclose(a["mean"].iloc[23], b["mean"].iloc[23])
    table = runner.invoke(_cli(), [*args[:-1], "--prices"])
    assert table.exit_code == 0 and "day-ahead prices published by then" in table.stdout


def test_cli_prices_flag_errors(tmp_path: Path, data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from click.testing import CliRunner

    from tests.forecasts.test_forecasts_backtest import _cli, write_exports

    values, prices = data
    bare = tmp_path / "bare"
    bare.mkdir()
    write_exports(bare, values)
    runner = CliRunner()
    base = ["forecast", "predict", "--zone", "DE", "--issue", "2023-03-10T00:00:00Z",
            "--horizon", "12h", "--prices"]
    res = runner.invoke(_cli(), [*base, "--data", str(bare)])
    assert res.exit_code == 2 and "no prices/ folder" in res.output
    full = tmp_path / "full"
    full.mkdir()
    _write_folder(full, values, prices)
    res = runner.invoke(_cli(), [*base, "--data", str(full), "--model", "mean7d"])
    assert res.exit_code == 2 and "does not take option(s) prices" in res.output
    res = runner.invoke(_cli(), ["forecast", "backtest", "--data", str(full), "--zones", "DE",
                                 "--train-until", "2023-03-01", "--test-from", "2023-03-02",
                                 "--test-until", "2023-03-03", "--model", "climatology",
                                 "--prices"])
    assert res.exit_code == 2 and "does not take option(s) prices" in res.output
