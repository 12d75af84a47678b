"""The rolling-origin backtest, its metrics and the ``forecast`` CLI."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.forecasts.backtest import (
    METRICS,
    BacktestConfig,
    BacktestResult,
    _window_scores,
    run_backtest,
    score,
)
from greenepoch.forecasts.base import BANDS, ForecastError
from greenepoch.forecasts.registry import BASELINES, get_model
from greenepoch.planner.cli.forecast_cmd import forecast
from greenepoch.planner.cli.main import _Group

from tests.forecasts.test_forecasts import synthetic

UTC = "UTC"


def config(**kw: object) -> BacktestConfig:
    base = dict(train_until=pd.Timestamp("2023-02-01", tz=UTC),
                test_from=pd.Timestamp("2023-02-01", tz=UTC),
                test_until=pd.Timestamp("2023-02-10", tz=UTC), refit=pd.Timedelta("5D"))
    base.update(kw)
    return BacktestConfig(**base)  # type: ignore[arg-type]


def test_backtest_records_and_baselines() -> None:
    data = synthetic(days=60)
    result = run_backtest(data, "climatology", config(), progress=False)
    m = result.metrics()
    assert list(m.columns) == ["zone", "model", "band", *METRICS]
    assert set(m["model"]) == {"climatology", *BASELINES}
    assert set(m["band"]) == set(BANDS)
    assert set(m["zone"]) == {"DE", "NO"}
    assert (m["coverage_p10_p90"].between(0, 100)).all()
    assert len(result.issues) == 10


def test_backtest_equals_refit_and_predict_by_hand() -> None:
    data = synthetic(days=60)
    cfg = config(refit=None, delay=pd.Timedelta("3h"))
    result = run_backtest(data, "mean7d", cfg, baselines=(), progress=False)
    issue = pd.Timestamp("2023-02-05", tz=UTC)
    model = get_model("mean7d").fit(data[data.index < cfg.train_until - cfg.delay])
    by_hand = model.predict(issue, pd.Timedelta("14D"), data=data, delay=cfg.delay)
    i = list(result.issues).index(issue)
    got = result.forecasts["mean7d"][i]
    expect = by_hand.xs("mean", axis=1, level=1).to_numpy()
    n = min(len(expect), got.shape[0])
    np.testing.assert_allclose(got[:n, :, 0], expect[:n])


def test_perfect_forecast_scores() -> None:
    rng = np.random.default_rng(1)
    truth = rng.uniform(50, 500, size=(5, 336, 1))
    fc = np.repeat(truth[..., None], 4, axis=3)
    rows = score("oracle", fc, truth, ["X"], pd.Timedelta("1h"))
    for row in rows:
        assert row["wape"] == 0 and row["mae"] == 0 and row["regret_pct"] == 0
        assert row["saving_realised_pct"] == pytest.approx(100)
        assert row["rank_corr_48h"] == pytest.approx(1)
        assert row["coverage_p10_p90"] == 100


def test_window_scores_by_hand() -> None:
    truth = np.arange(48, dtype=float)[None, :] + 100  # lowest 8: the first 8 hours
    worst = -truth  # ranks reversed: picks the highest 8
    rho, regret, saving, n = _window_scores(worst, truth)
    assert n == 1 and rho == pytest.approx(-1)
    best = (100 + np.arange(8)).sum()
    picked = (100 + np.arange(40, 48)).sum()
    assert regret == pytest.approx(100 * (picked - best) / best)
    assert saving == pytest.approx(100 * (123.5 * 8 - picked) / (123.5 * 8 - best))


def test_config_errors() -> None:
    with pytest.raises(ForecastError, match="before the end of training"):
        config(test_from=pd.Timestamp("2023-01-20", tz=UTC))
    with pytest.raises(ForecastError, match="swap"):
        config(test_until=pd.Timestamp("2023-01-20", tz=UTC),
               train_until=pd.Timestamp("2023-01-01", tz=UTC),
               test_from=pd.Timestamp("2023-01-25", tz=UTC))


def _cli() -> click.Group:
    @click.group(cls=_Group)
    def root() -> None:
        pass

    root.add_command(forecast)
    return root


def write_exports(folder: Path, data: pd.DataFrame) -> None:
    for zone in data.columns:
        frame = pd.DataFrame({
            "Datetime (UTC)": data.index.strftime("%Y-%m-%d %H:%M:%S"),
            "Zone Id": zone,
            "Carbon Intensity gCO₂eq/kWh (direct)": data[zone].round(2),
            "Carbon Intensity gCO₂eq/kWh (LCA)": (data[zone] * 1.2).round(2),
            "Data Estimated": "false",
        })
        frame.to_csv(folder / f"{zone}_2023_hourly.csv", index=False)


def test_cli_backtest_json_and_predict(tmp_path: Path) -> None:
    write_exports(tmp_path, synthetic(days=45))
    runner = CliRunner()
    res = runner.invoke(_cli(), [
        "forecast", "backtest", "--data", str(tmp_path), "--zones", "all",
        "--train-until", "2023-01-31", "--test-from", "2023-02-01",
        "--test-until", "2023-02-03", "--model", "climatology", "--json"])
    assert res.exit_code == 0, res.output
    records = json.loads(res.stdout)
    assert set(records[0]) == {"zone", "model", "band", *METRICS}
    assert {r["model"] for r in records} == {"climatology", *BASELINES}
    res = runner.invoke(_cli(), [
        "forecast", "predict", "--data", str(tmp_path), "--zone", "DE",
        "--issue", "2023-02-10T00:00:00Z", "--horizon", "12h", "--model", "mean7d",
        "--signal", "lca"])
    assert res.exit_code == 0, res.output
    assert "p90" in res.output and "2023-02-10 11:00" in res.output


def test_cli_user_errors_exit_2(tmp_path: Path) -> None:
    write_exports(tmp_path, synthetic(days=20))
    runner = CliRunner(env={"GREENEPOCH_DATA": ""})
    res = runner.invoke(_cli(), ["forecast", "predict", "--zone", "DE",
                                 "--issue", "2023-01-10T00:00:00Z"])
    assert res.exit_code == 2 and "--data" in res.output
    res = runner.invoke(_cli(), ["forecast", "predict", "--data", str(tmp_path), "--zone", "DE",
                                 "--issue", "2023-01-10T00:00:00Z", "--model", "nope"])
    assert res.exit_code == 2 and "available" in res.output
    res = runner.invoke(_cli(), ["forecast", "backtest", "--data", str(tmp_path),
                                 "--train-until", "2023-01-15", "--test-from", "2023-01-10",
                                 "--test-until", "2023-01-12"])
    assert res.exit_code == 2 and "before the end of training" in res.output


@pytest.mark.realdata
def test_real_data_short_backtest(real_data: Path) -> None:
    from greenepoch.forecasts.data import load_values

    values = load_values(str(real_data), "direct", "US-MIDA-PJM,JP-TK")
    values = values[(values.index >= "2022-09-01") & (values.index < "2023-02-01")]
    cfg = BacktestConfig(pd.Timestamp("2023-01-01", tz=UTC), pd.Timestamp("2023-01-01", tz=UTC),
                         pd.Timestamp("2023-01-14", tz=UTC), refit=None)
    m = run_backtest(values, "gbm", cfg, progress=False).metrics()
    day1 = m[m["band"] == "1-24h"].set_index(["zone", "model"])
    # sanity on a short real window (accuracy claims live in benchmarks/)
    assert day1["wape"].lt(30).all()
    assert m["coverage_p10_p90"].between(20, 100).all()
    assert day1.loc[[("US-MIDA-PJM", "gbm"), ("JP-TK", "gbm")], "saving_realised_pct"].gt(0).all()


# ------------------------------------------- the metrics against their reference definitions
def _assert_reference_metrics(result: BacktestResult) -> None:
    """``mae``/``pinball`` (scikit-learn's) equal the textbook formulas, and the rank
    correlation (ours, vectorised) equals scipy.stats.spearmanr window by window, to 1e-12."""
    from scipy.stats import ConstantInputWarning, spearmanr

    metrics = result.metrics().set_index(["zone", "model", "band"])
    lead = np.arange(1, result.truth.shape[1] + 1)
    checked = 0
    for name, fc in result.forecasts.items():
        for z, zone in enumerate(result.zones):
            for band, (lo, hi) in BANDS.items():
                sel = (lead > lo - 1) & (lead <= hi)
                y = result.truth[:, sel, z].ravel()
                f = fc[:, sel, z, :].reshape(-1, 4)
                y, f = y[~np.isnan(y)], f[~np.isnan(y)]
                row = metrics.loc[(zone, name, band)]
                assert abs(row["mae"] - np.abs(f[:, 0] - y).mean()) <= 1e-12 * row["mae"]
                pinball = np.mean([np.mean(np.maximum(q * (y - f[:, i]), (q - 1) * (y - f[:, i])))
                                   for i, q in ((1, 0.1), (2, 0.5), (3, 0.9))])
                assert abs(row["pinball"] - pinball) <= 1e-12 * pinball
            window_f, window_t = fc[:, :48, z, 0], result.truth[:, :48, z]
            rho, _, _, _ = _window_scores(window_f, window_t)
            with warnings.catch_warnings():  # a flat window has no rank correlation: NaN
                warnings.simplefilter("ignore", ConstantInputWarning)
                each = [spearmanr(window_f[i], window_t[i]).statistic
                        for i in range(len(window_t)) if not np.isnan(window_t[i]).any()]
            if np.isnan(each).all():
                assert np.isnan(rho)
            else:  # the mean over the windows that can be ranked
                assert abs(rho - np.nanmean(each)) <= 1e-12
            checked += 1
    assert checked == len(result.forecasts) * len(result.zones)


def test_metrics_equal_their_reference_definitions() -> None:
    data = synthetic(days=60).round(0)  # whole numbers: ties in the ranks too
    _assert_reference_metrics(run_backtest(data, "seasonal", config(), progress=False))


@pytest.mark.realdata
def test_metrics_equal_their_reference_definitions_on_real_data(real_data: Path) -> None:
    from greenepoch.forecasts.data import load_values

    values = load_values(str(real_data), "direct", "DE,ES,JP-TK")
    values = values[(values.index >= "2022-10-01") & (values.index < "2023-03-01")]
    cfg = BacktestConfig(pd.Timestamp("2023-01-01", tz=UTC), pd.Timestamp("2023-01-01", tz=UTC),
                         pd.Timestamp("2023-02-01", tz=UTC), refit=None)
    _assert_reference_metrics(run_backtest(values, "seasonal", cfg, progress=False))


def test_a_forecast_holding_nan_is_one_error_naming_the_model() -> None:
    """scikit-learn's metrics refuse NaN (a traceback); the backtest says which model,
    zone and issue instead."""
    class Broken:
        def fit(self, history: pd.DataFrame) -> Broken:
            return self

        def predict_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                          offset: int, horizon: int) -> np.ndarray:
            out = np.full((len(last), horizon, values.shape[1], 4), 300.0)
            out[2:, 5, 1, 3] = np.nan  # NO's P90, from the third issue on
            return out

    with pytest.raises(ForecastError, match=r"model 'broken' .* zone NO .* 2023-02-03"):
        run_backtest(synthetic(days=60), "broken", config(refit=None), baselines=(),
                     progress=False, factory=lambda name: Broken())
