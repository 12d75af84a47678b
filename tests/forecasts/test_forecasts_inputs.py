"""Input validation of the forecast library and CLI: one-line errors that say what to do."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from greenepoch.forecasts.backtest import (
    METRICS,
    BacktestConfig,
    _window_scores,
    json_records,
    run_backtest,
)
from greenepoch.forecasts.base import ForecastError
from greenepoch.forecasts.data import history_before, parse_span
from greenepoch.forecasts.registry import get_model, models_taking

from tests.forecasts.test_forecasts import synthetic
from tests.forecasts.test_forecasts_backtest import _cli, write_exports

UTC = "UTC"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "forecasts.md"
#: the public JSON record of `forecast backtest --json`
RECORD_KEYS = ["zone", "model", "band", "n", "mae", "mape", "wape", "pinball",
               "coverage_p10_p90", "rank_corr_48h", "regret_pct", "saving_realised_pct"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exports of DE and NO, hourly, 2023-01-01 00:00 .. 2023-02-14 23:00 UTC."""
    path = tmp_path_factory.mktemp("exports")
    write_exports(path, synthetic(days=45))
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(_cli(), ["forecast", *args])


def one_line_error(res: Result) -> str:
    """The single ``greenepoch: error:`` line of a user error (exit 2, no traceback)."""
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error: "), res.output
    return lines[0]


def predict(folder: Path, *args: str) -> Result:
    return run("predict", "--data", str(folder), "--zone", "DE", "--model", "mean7d", *args)


def backtest(folder: Path, *args: str) -> Result:
    return run("backtest", "--data", str(folder), "--zones", "DE", "--model", "mean7d",
               "--train-until", "2023-01-20", *args)


# ---------------------------------------------------------------- backtest period
def test_backtest_past_the_data_end_is_refused_with_the_range(folder: Path) -> None:
    msg = one_line_error(backtest(folder, "--test-from", "2023-02-10",
                                  "--test-until", "2023-03-01"))
    assert "--test-until 2023-03-01 is after the data ends" in msg
    assert "2023-02-14T23:00:00+00:00" in msg and "--test-until 2023-02-14 or earlier" in msg
    msg = one_line_error(backtest(folder, "--test-from", "2023-03-01",
                                  "--test-until", "2023-03-05"))
    assert "--test-from 2023-03-01 is after the data ends" in msg
    # the last day with an issue inside the data still runs
    ok = backtest(folder, "--test-from", "2023-02-13", "--test-until", "2023-02-14", "--json")
    assert ok.exit_code == 0, ok.output


def test_backtest_library_refuses_issues_past_the_data() -> None:
    data = synthetic(days=45)
    cfg = BacktestConfig(pd.Timestamp("2023-01-21", tz=UTC), pd.Timestamp("2023-02-10", tz=UTC),
                         pd.Timestamp("2023-02-20", tz=UTC), refit=None)
    with pytest.raises(ForecastError, match="after the data ends"):
        run_backtest(data, "mean7d", cfg, baselines=(), progress=False)


def test_refit_must_be_positive(folder: Path) -> None:
    day = pd.Timestamp("2023-02-01", tz=UTC)
    for bad in (pd.Timedelta(0), pd.Timedelta("-1D")):
        with pytest.raises(ForecastError, match=r"must be positive.*'none'"):
            BacktestConfig(day, day, day, refit=bad)
    msg = one_line_error(backtest(folder, "--test-from", "2023-02-01",
                                  "--test-until", "2023-02-03", "--refit", "0D"))
    assert "--refit" in msg and "'none'" in msg


def test_backtest_errors_name_the_parameters() -> None:
    """The library names BacktestConfig's fields (the CLI shows its flags instead)."""
    def error(call: object) -> str:
        with pytest.raises(ForecastError) as info:
            call()  # type: ignore[operator]
        return str(info.value)

    day = pd.Timestamp
    msgs = [
        error(lambda: BacktestConfig(day("2023-01-11", tz=UTC), day("2023-01-01", tz=UTC),
                                     day("2023-01-05", tz=UTC))),
        error(lambda: BacktestConfig(day("2023-01-01", tz=UTC), day("2023-01-05", tz=UTC),
                                     day("2023-01-02", tz=UTC))),
        error(lambda: BacktestConfig(day("2023-01-01", tz=UTC), day("2023-01-05", tz=UTC),
                                     day("2023-01-06", tz=UTC), issue_hour=24)),
        error(lambda: run_backtest(synthetic(days=45), "mean7d", BacktestConfig(
            day("2023-01-05", tz=UTC), day("2023-01-05", tz=UTC), day("2023-01-06", tz=UTC)),
            progress=False)),
    ]
    # train_until 2023-01-10 is shown inclusive: training ends at 2023-01-11 00:00
    assert "`test_from` 2023-01-01" in msgs[0] and "`train_until` 2023-01-10" in msgs[0]
    assert "from 2023-01-11 on" in msgs[0]
    assert "`test_until` 2023-01-02 is before `test_from` 2023-01-05" in msgs[1]
    assert "`issue_hour` must be 0-23" in msgs[2]
    assert "leave at least 14 days of history before `test_from`" in msgs[3]
    for text in msgs:
        assert "--" not in text


# ------------------------------------------------------------------ predict issue
def test_issue_after_the_data_end_is_refused(folder: Path) -> None:
    msg = one_line_error(predict(folder, "--issue", "2024-04-01T00:00Z", "--horizon", "3h"))
    assert "after the data ends" in msg and "2023-02-14T23:00:00+00:00" in msg
    msg = one_line_error(predict(folder, "--issue", "2023-02-15T01:00Z", "--horizon", "3h"))
    assert "at or before 2023-02-15T00:00:00+00:00" in msg
    # one slot after the last observation is the latest issue with current history
    assert predict(folder, "--issue", "2023-02-15T00:00Z", "--horizon", "3h").exit_code == 0


def test_issue_off_the_slot_grid_is_refused(folder: Path) -> None:
    msg = one_line_error(predict(folder, "--issue", "2023-02-10T00:30Z", "--horizon", "3h"))
    assert "off the data's 1h slot grid" in msg
    assert "2023-02-10T00:00:00+00:00 or 2023-02-10T01:00:00+00:00" in msg
    values = synthetic(days=10)
    with pytest.raises(ForecastError, match="slot grid"):
        history_before(values, pd.Timestamp("2023-01-05T07:15Z"))


def test_issue_at_the_first_data_hour_has_no_data_before_it(folder: Path) -> None:
    msg = one_line_error(predict(folder, "--issue", "2023-01-01T00:00Z"))
    assert "has no data before it (the data starts at 2023-01-01T00:00:00+00:00)" in msg
    assert "before the data starts" not in msg
    msg = one_line_error(predict(folder, "--issue", "2022-12-01T00:00Z"))
    assert "has no data before it" in msg


def test_missing_zone_lists_the_zones_of_the_folder(folder: Path) -> None:
    msg = one_line_error(run("predict", "--data", str(folder), "--zone", "FR",
                             "--issue", "2023-02-10T00:00Z"))
    assert "FR" in msg and "available: DE, NO" in msg
    msg = one_line_error(run("backtest", "--data", str(folder), "--zones", "DE,FR",
                             "--train-until", "2023-01-20", "--test-from", "2023-02-01",
                             "--test-until", "2023-02-02"))
    assert "available: DE, NO" in msg


# ------------------------------------------------------------------------ horizon
def test_horizon_needs_a_unit(folder: Path) -> None:
    msg = one_line_error(predict(folder, "--issue", "2023-02-10T00:00Z", "--horizon", "96"))
    assert "--horizon: '96' has no unit; write e.g. '96h'" in msg and "days 00:" not in msg
    msg = one_line_error(predict(folder, "--issue", "2023-02-10T00:00Z", "--horizon", "0h"))
    assert "longer than zero" in msg and "days 00:" not in msg
    msg = one_line_error(predict(folder, "--issue", "2023-02-10T00:00Z", "--horizon", "30min"))
    assert "horizon 30min is shorter than one slot (1h)" in msg
    assert parse_span("4D", "--horizon") == pd.Timedelta("96h")
    assert parse_span("0", "--delay", positive=False) == pd.Timedelta(0)
    msg = one_line_error(backtest(folder, "--test-from", "2023-02-01",
                                  "--test-until", "2023-02-02", "--delay", "3"))
    assert "--delay: '3' has no unit" in msg


# ------------------------------------------------------------------------ options
def test_prices_with_a_model_without_it_names_the_models_that_take_it(folder: Path) -> None:
    assert models_taking("prices") == ["blend", "gbm"]
    with pytest.raises(ForecastError) as info:
        get_model("mean7d", prices=None)
    msg = str(info.value)
    assert "models that take prices: blend, gbm" in msg and "__init__" not in msg
    # refused before looking for a prices/ folder (there is none here)
    msg = one_line_error(predict(folder, "--issue", "2023-02-10T00:00Z", "--prices"))
    assert "models that take prices: blend, gbm" in msg and "keyword" not in msg


# ------------------------------------------------------------------ history needed
def test_gbm_and_blend_need_27_days_as_the_docs_say() -> None:
    data = synthetic(days=30)
    for name in ("gbm", "blend"):
        assert get_model(name).min_history_days() == 27
        with pytest.raises(ForecastError) as info:
            get_model(name).fit(data.iloc[: 27 * 24 - 1])
        msg = str(info.value)
        # the user's whole history is counted, not what is left after the hold-out
        assert f"model '{name}' needs at least 27 days" in msg and "got 26.9 days" in msg
    out = get_model("gbm").fit(data.iloc[: 27 * 24]).predict(data.index[27 * 24],
                                                              pd.Timedelta("3h"))
    assert len(out) == 3
    text = " ".join(DOCS.read_text().split())
    assert "`gbm` and `blend` need 27 days" in text
    assert "need at least 27 days of history" in text and "14 days of history" not in text


def test_too_little_history_to_calibrate_quantiles_is_refused() -> None:
    data = synthetic(days=10)
    with pytest.raises(ForecastError, match=r"'mean7d' needs at least 4 days.*got 0\.2 days"):
        get_model("mean7d").fit(data.iloc[:5])
    # 3 days from 05:00: the hold-out held no 00:00 issue, so P10 = P50 = P90 before
    with pytest.raises(ForecastError, match="at least 4 days"):
        get_model("persistence").fit(data.iloc[5: 5 + 72])
    out = get_model("mean7d").fit(data.iloc[5: 5 + 96]).predict(data.index[101],
                                                                 pd.Timedelta("24h"))
    p10, p90 = out.xs("p10", axis=1, level=1), out.xs("p90", axis=1, level=1)
    assert (p90.to_numpy() > p10.to_numpy()).all()


def test_no_traceback_for_a_short_history_in_the_cli(folder: Path) -> None:
    msg = one_line_error(predict(folder, "--issue", "2023-01-01T05:00Z"))
    assert "at least 4 days" in msg


# ------------------------------------------------------------------------- output
def test_rank_correlation_of_a_constant_forecast_warns_nothing() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(50, 500, size=(6, 48))
    constant = np.full_like(truth, 300.0)
    mixed = np.vstack([constant[:3], truth[3:] + rng.normal(0, 30, size=(3, 48))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rho, _, _, n = _window_scores(constant, truth)
        assert np.isnan(rho) and n == 6
        rho_mixed, _, _, _ = _window_scores(mixed, truth)
    # the mean over the windows that can be ranked, as before
    expected = np.mean([pd.Series(mixed[i]).corr(pd.Series(truth[i]), method="spearman")
                        for i in range(3, 6)])
    assert rho_mixed == pytest.approx(expected)


def test_backtest_runs_without_runtime_warnings() -> None:
    cfg = BacktestConfig(pd.Timestamp("2023-01-21", tz=UTC), pd.Timestamp("2023-02-01", tz=UTC),
                         pd.Timestamp("2023-02-03", tz=UTC), refit=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        m = run_backtest(synthetic(days=45), "persistence", cfg, baselines=(),
                         progress=False).metrics()
    assert m["rank_corr_48h"].isna().all()


def test_json_floats_are_rounded_and_keys_unchanged(folder: Path) -> None:
    frame = pd.DataFrame({"zone": ["DE"], "n": [np.int64(3)], "mae": [95.99999999999999],
                          "mape": [np.nan], "wape": [np.float64(1 / 3)]})
    assert json_records(frame) == [{"zone": "DE", "n": 3, "mae": 96.0, "mape": None,
                                    "wape": 0.333333}]
    res = backtest(folder, "--test-from", "2023-02-01", "--test-until", "2023-02-03", "--json")
    assert res.exit_code == 0, res.output
    records = json.loads(res.stdout)
    assert all(list(r) == RECORD_KEYS for r in records) and RECORD_KEYS[3:] == list(METRICS)
    floats = [v for r in records for v in r.values() if isinstance(v, float)]
    assert floats and all(v == round(v, 6) for v in floats)
    res = predict(folder, "--issue", "2023-02-10T00:00Z", "--horizon", "3h", "--json")
    rows = json.loads(res.stdout)
    assert list(rows[0]) == ["time", "zone", "mean", "p10", "p50", "p90"]
    assert all(r[k] == round(r[k], 6) for r in rows for k in ("mean", "p10", "p50", "p90"))


def test_tables_show_correlation_to_2_decimals_and_utc_times(folder: Path) -> None:
    res = backtest(folder, "--test-from", "2023-02-01", "--test-until", "2023-02-03")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    header = lines[0].split()
    col = header.index("rank_corr_48h")
    rows = [line.split() for line in lines[2:] if line.startswith(("DE ", "NO "))]
    cells = [r[col] for r in rows if r[1] != "persistence"]
    assert cells and all(len(c.split(".")[1]) == 2 for c in cells)
    assert {r[col] for r in rows if r[1] == "persistence"} == {"nan"}
    res = predict(folder, "--issue", "2023-02-10T00:00Z", "--horizon", "3h")
    assert res.stdout.splitlines()[0].startswith("time (UTC)")


def test_backtest_says_when_training_is_too_short_for_the_model() -> None:
    values = synthetic(days=60)
    t0 = values.index[0]
    config = BacktestConfig(t0 + pd.Timedelta("20D"), t0 + pd.Timedelta("20D"),
                            t0 + pd.Timedelta("22D"), refit=None)
    with pytest.raises(ForecastError) as info:
        run_backtest(values, "gbm", config, baselines=(), progress=False)
    assert "model 'gbm' needs at least 27 days of history for its first fit, but the data " \
           f"from {t0:%Y-%m-%d} to `train_until`" in str(info.value)
    assert "holds 20.0: move `train_until` (and the test dates) later" in str(info.value)
