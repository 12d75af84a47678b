"""Provider forecasts in the backtest: "the forecast that was available then", scored
against what happened beside the models (forecasts/backtest.add_provider_forecasts and
``forecast backtest --archive``).

The archive is a real SQLite one in tmp_path, filled with provider forecasts built from
the real shared data (GREENEPOCH_DATA) plus a hand-chosen error per lead, so every
expected MAE is known by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.data.archive.store import Archive
from greenepoch.data.providers.records import Fetched, fetched_series
from greenepoch.forecasts.backtest import (
    ISSUES,
    METRICS,
    BacktestConfig,
    BacktestResult,
    _on_slots,
    add_provider_forecasts,
    run_backtest,
)

from tests.forecasts.test_forecasts_backtest import _cli

UTC = "UTC"
ZONE = "DE"
HOUR = pd.Timedelta("1h")
QUARTER = pd.Timedelta("15min")
#: the provider's error by lead (hours after the backtest's issue): 1-24, 25-48, 49+
ERRORS = ((24, 10.0), (48, -30.0), (10**6, 50.0))
#: periods inside an hour wiggle by up to this around the hour's value (mean zero: only
#: the energy-weighted mean of an hour scores the hand-chosen error)
WIGGLE = 6.0
CONFIG = BacktestConfig(train_until=pd.Timestamp("2023-02-01", tz=UTC),
                        test_from=pd.Timestamp("2023-02-01", tz=UTC),
                        test_until=pd.Timestamp("2023-02-06", tz=UTC), refit=None)


# every test but the last reads the real data (the ``real_data`` fixture skips without it)
@pytest.fixture(scope="module")
def truth(real_data: Path) -> pd.Series:
    """DE's hourly direct intensity, 2023-01-01 .. 2023-02-28 (real data)."""
    from greenepoch.forecasts.data import load_values

    values = load_values(str(real_data), "direct", ZONE)
    return values[(values.index >= "2023-01-01") & (values.index < "2023-03-01")][ZONE]


@pytest.fixture(scope="module")
def models(truth: pd.Series) -> BacktestResult:
    return run_backtest(truth.to_frame(), "mean7d", CONFIG, progress=False)


def fresh(result: BacktestResult) -> BacktestResult:
    """The models' result without provider rows (each test adds its own)."""
    return BacktestResult(result.zones, result.issues, result.step, result.truth,
                          dict(result.forecasts), dict(result.seconds))


def error_at(lead_h: int) -> float:
    return next(err for last, err in ERRORS if lead_h <= last)


def forecast(truth: pd.Series, provider: str, issued: pd.Timestamp, hours: int, *,
             lead_from: pd.Timestamp, step: pd.Timedelta = QUARTER,
             error: float | None = None, signal: str = "direct") -> Fetched:
    """A forecast issued at ``issued`` for ``hours`` hours from then: the real value of
    each hour plus :func:`error_at` its lead after ``lead_from`` (or a fixed ``error``),
    split into periods of ``step`` that wiggle around it."""
    parts = int(HOUR / step)
    wiggle = np.linspace(-WIGGLE, WIGGLE, parts) if parts > 1 else np.zeros(1)
    points = []
    for h in range(hours):
        start = issued + h * HOUR
        lead = int((start - lead_from) / HOUR) + 1
        value = truth[start] + (error_at(lead) if error is None else error)
        points += [(start + k * step, value + wiggle[k], False) for k in range(parts)]
    return fetched_series(provider, ZONE, signal, "forecast", step, points,
                          issued + pd.Timedelta("5min"), issued)


def archive_of(tmp_path: Path, *series: Fetched, name: str = "archive.sqlite") -> Archive:
    archive = Archive(f"sqlite:///{tmp_path / name}")
    for one in series:
        archive.put(one)
    return archive


def available_then(truth: pd.Series, issues: pd.DatetimeIndex) -> list[Fetched]:
    """Per issue: the right forecast (issued 2 h before it, 72 h) and a later one
    (1 h after it, far off: scoring it would be look-ahead)."""
    out = []
    for t in issues:
        out.append(forecast(truth, "electricitymaps", t - 2 * HOUR, 72, lead_from=t))
        out.append(forecast(truth, "electricitymaps", t + HOUR, 72, lead_from=t, error=400.0))
    return out


def rows(metrics: pd.DataFrame, model: str) -> pd.DataFrame:
    return metrics[metrics["model"] == model].set_index("band")


@pytest.mark.realdata
def test_the_newest_forecast_before_each_issue_is_scored_by_lead(
        tmp_path: Path, truth: pd.Series, models: BacktestResult) -> None:
    """MAE per band is the hand-chosen error: the 15-min periods are averaged to hours,
    leads count from the backtest's issue, and neither the later forecast (+400) nor the
    previous day's (its leads shifted by 24 h: -30 where 10 is expected) is used."""
    result = fresh(models)
    add_provider_forecasts(result, archive_of(tmp_path, *available_then(truth, result.issues)),
                           "direct")
    m = result.metrics()
    assert list(m.columns) == ["zone", "model", "band", ISSUES, *METRICS]
    em = rows(m, "electricitymaps")
    # issued 2 h before: 70 hours after the issue, leads 1..70
    assert list(em.index) == ["1-24h", "25-48h", "49-96h"]
    assert em["mae"].to_dict() == pytest.approx({"1-24h": 10, "25-48h": 30, "49-96h": 50})
    assert em["n"].tolist() == [6 * 24, 6 * 24, 6 * 22]
    assert (em[ISSUES] == 6).all() and (rows(m, "mean7d")[ISSUES] == 6).all()
    day1 = truth[(truth.index >= "2023-02-01") & (truth.index < "2023-02-07")]  # leads 1-24
    assert em.loc["1-24h", "wape"] == pytest.approx(100 * 10 * len(day1) / day1.sum())
    # a point forecast: no quantile scores; the 48 h decision window fits inside 70 h
    assert em[["pinball", "coverage_p10_p90"]].isna().all().all()
    assert np.isfinite(em.loc["1-24h", ["rank_corr_48h", "regret_pct"]].astype(float)).all()
    assert np.isnan(em.loc["49-96h", "rank_corr_48h"])
    # the models' rows are those of a backtest without providers
    plain = models.metrics()
    mine = m[m["model"] != "electricitymaps"].drop(columns=ISSUES).reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, plain)
    assert result.notes == []


@pytest.mark.realdata
def test_a_look_ahead_would_fail(tmp_path: Path, truth: pd.Series,
                                 models: BacktestResult) -> None:
    """Forecasts issued an hour after each issue time (and over by the next one) are
    never available then: nothing is scored."""
    result = fresh(models)
    late = [forecast(truth, "electricitymaps", t + HOUR, 20, lead_from=t)
            for t in result.issues]
    add_provider_forecasts(result, archive_of(tmp_path, *late), "direct")
    assert result.providers == {}
    assert result.notes == ["electricitymaps: no direct forecast of it was available at any "
                            "issue time of the test (none scored)"]


@pytest.mark.realdata
def test_a_forecast_issued_at_the_issue_time_serves_until_a_newer_one(
        tmp_path: Path, truth: pd.Series, models: BacktestResult) -> None:
    """Issued exactly at the first issue (available then), 48 h long: the second issue
    still reads it (the newest by then), its hours 25-48 as leads 1-24; the third has
    nothing left of it."""
    at_issue = forecast(truth, "electricitymaps", models.issues[0], 48,
                        lead_from=models.issues[0])
    result = fresh(models)
    add_provider_forecasts(result, archive_of(tmp_path, at_issue), "direct")
    em = rows(result.metrics(), "electricitymaps")
    assert em.loc["1-24h", ISSUES] == 2 and em.loc["1-24h", "n"] == 48
    assert em.loc["1-24h", "mae"] == pytest.approx((24 * 10 + 24 * 30) / 48)
    assert em.loc["25-48h", ISSUES] == 1 and em.loc["25-48h", "mae"] == pytest.approx(30)


@pytest.mark.realdata
def test_partial_coverage_is_counted_and_said(tmp_path: Path, truth: pd.Series,
                                             models: BacktestResult) -> None:
    """UK-CI style 30-minute forecasts (48 h) issued at the first three issues only: the
    fourth issue still reads the third one's second day, the last two nothing.  The rows
    say on how many issues they stand (the models': all 6), and a note says so."""
    result = fresh(models)
    first = [forecast(truth, "ukci", t, 48, lead_from=t, step=pd.Timedelta("30min"))
             for t in result.issues[:3]]
    add_provider_forecasts(result, archive_of(tmp_path, *first), "direct")
    m = result.metrics()
    uk = rows(m, "ukci")
    assert uk.loc["1-24h", ISSUES] == 4 and uk.loc["1-24h", "n"] == 4 * 24
    assert uk.loc["1-24h", "mae"] == pytest.approx((3 * 24 * 10 + 24 * 30) / (4 * 24))
    assert uk.loc["25-48h", ISSUES] == 3 and uk.loc["25-48h", "mae"] == pytest.approx(30)
    assert rows(m, "mean7d")[ISSUES].eq(6).all()
    assert len(result.notes) == 1
    note = result.notes[0]
    assert note.startswith("ukci:") and "only part of the 6 issues" in note and "DE 4" in note


@pytest.mark.realdata
def test_marginal_forecasts_are_left_out_against_average_actuals(
        tmp_path: Path, truth: pd.Series, models: BacktestResult) -> None:
    wt = [forecast(truth, "watttime", t - HOUR, 24, lead_from=t, step=pd.Timedelta("5min"),
                   signal="marginal", error=0.0) for t in models.issues]
    archive = archive_of(tmp_path, *wt)
    result = fresh(models)
    add_provider_forecasts(result, archive, "direct")
    assert result.providers == {} and "watttime" not in set(result.metrics()["model"])
    assert result.notes == [
        "watttime: left out: its archived forecasts are marginal, the actuals direct "
        "(marginal forecasts are only scored against marginal actuals)"]
    result = fresh(models)  # against marginal actuals they are scored
    add_provider_forecasts(result, archive, "marginal")
    wt_rows = rows(result.metrics(), "watttime")
    assert wt_rows.loc["1-24h", "mae"] == pytest.approx(0, abs=1e-9)
    assert wt_rows.loc["1-24h", "n"] == 6 * 23


@pytest.mark.realdata
def test_no_provider_forecasts_change_nothing(tmp_path: Path, models: BacktestResult) -> None:
    result = fresh(models)
    add_provider_forecasts(result, archive_of(tmp_path), "direct")
    assert result.providers == {} and result.notes == []
    pd.testing.assert_frame_equal(result.metrics(), models.metrics())


# ----------------------------------------------------------------------------- the CLI
def backtest_cli(data: Path, *extra: str, env: dict[str, str] | None = None
                 ) -> tuple[int, str, str]:
    res = CliRunner(env=env).invoke(_cli(), [
        "forecast", "backtest", "--data", str(data), "--zones", ZONE,
        "--train-until", "2023-01-31", "--test-from", "2023-02-01",
        "--test-until", "2023-02-03", "--forecast", "mean7d", "--refit", "none", *extra])
    return res.exit_code, res.stdout, res.stderr


@pytest.mark.realdata
def test_cli_json_has_provider_rows(tmp_path: Path, real_data: Path, truth: pd.Series) -> None:
    issues = CONFIG.issues()[:3]
    archive_of(tmp_path, *available_then(truth, issues))
    url = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    code, out, err = backtest_cli(real_data, "--archive", url, "--json")
    assert code == 0, err
    records = json.loads(out)
    em = {r["band"]: r for r in records if r["model"] == "electricitymaps"}
    assert em["1-24h"]["mae"] == pytest.approx(10) and em["1-24h"][ISSUES] == 3
    assert em["1-24h"]["pinball"] is None and em["25-48h"]["mae"] == pytest.approx(30)
    assert all(list(r) == ["zone", "model", "band", ISSUES, *METRICS] for r in records)
    assert all(r[ISSUES] == 3 for r in records if r["model"] == "mean7d")
    code, text, err = backtest_cli(real_data, "--archive", url)
    assert code == 0, err
    assert "electricitymaps" in text and "Provider rows (electricitymaps)" in text
    code, plain, err = backtest_cli(real_data, "--archive", url, "--no-provider-forecasts",
                                    "--json")
    assert code == 0 and "electricitymaps" not in plain


@pytest.mark.realdata
def test_cli_without_provider_forecasts_is_unchanged(tmp_path: Path, real_data: Path) -> None:
    """An empty archive, or none at all, prints what the backtest printed before; a
    missing SQLite archive is not created by the backtest."""
    code, before, err = backtest_cli(real_data, "--no-provider-forecasts")
    assert code == 0, err
    archive_of(tmp_path)  # tables, no forecasts
    code, empty, _ = backtest_cli(real_data, "--archive",
                                  f"sqlite:///{tmp_path / 'archive.sqlite'}")
    assert code == 0 and empty == before
    absent = tmp_path / "none" / "absent.sqlite"
    code, none, _ = backtest_cli(real_data, env={"GREENEPOCH_ARCHIVE": f"sqlite:///{absent}"})
    assert code == 0 and none == before and not absent.exists()
    code, out, err = backtest_cli(real_data, "--provider-forecasts",
                                  env={"GREENEPOCH_ARCHIVE": f"sqlite:///{absent}"})
    assert code == 2 and not absent.exists()
    assert "greenepoch: error: --provider-forecasts: no archive at" in out + err


def test_a_gap_in_a_provider_forecast_stays_a_gap() -> None:
    """15-minute periods to hours: an hour missing one period is not scored (never
    filled across the gap); an hourly forecast on 15-minute slots repeats each hour."""
    index = pd.date_range("2023-02-01", periods=12, freq="15min", tz=UTC, name="time")
    values = pd.Series(np.arange(12.0), index=index).drop(index[5])
    hourly = _on_slots(values, QUARTER, HOUR)
    assert hourly.to_dict() == {index[0]: 1.5, index[8]: 9.5}
    fine = _on_slots(hourly, HOUR, QUARTER)
    assert list(fine) == [1.5] * 4 + [9.5] * 4 and fine.index[4] == index[8]
