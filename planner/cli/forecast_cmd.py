"""``greenepoch forecast``: backtest forecast models and forecast one or more zones."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click
from greenepoch.planner.cli.options import (
    archive_option,
    forecast_option,
    json_option,
    live_archive_url,
    measured_data_option,
    missing_sqlite_file,
    signal_option,
    zones_option,
)
from greenepoch.planner.report.table import render

if TYPE_CHECKING:
    import pandas as pd
    from greenepoch.forecasts.backtest import BacktestResult

prices_option = click.option(
    "--prices", "use_prices", is_flag=True,
    help="Give 'gbm'/'blend' the published day-ahead prices in DIR/prices as known "
    "covariates (each hour only once its auction result was public; off by default: "
    "measured to lower 1-24 h WAPE but not the saving realised, see docs/forecasts.md of "
    "the source repository).",
)


def _model_options(use_prices: bool, data_dir: str | None, zones: list[str],
                   model: str) -> dict:
    """Constructor options for the model: ``prices=`` when ``--prices`` is given."""
    if not use_prices:
        return {}
    from greenepoch.forecasts.base import ForecastError
    from greenepoch.forecasts.prices import load_prices
    from greenepoch.forecasts.registry import get_model

    get_model(model, prices=None)  # a model without the option fails before loading
    if not data_dir:
        raise ForecastError("--prices needs --data DIR (or GREENEPOCH_DATA) with a prices/ "
                            "folder")
    return {"prices": load_prices(data_dir, zones)}


@click.group()
def forecast() -> None:
    """Forecast carbon intensity per zone and measure forecast accuracy."""


@forecast.command()
@measured_data_option
@zones_option(default="all", show_default=True,
              help="Comma-separated zone ids or cloud regions, or 'all' (every zone in --data).")
@click.option("--train-until", required=True,
              help="Last day of training history (inclusive), e.g. 2022-12-31.")
@click.option("--test-from", required=True, help="First issue day, e.g. 2023-01-01.")
@click.option("--test-until", required=True, help="Last issue day (inclusive), e.g. 2023-12-31.")
@forecast_option
@signal_option
@prices_option
@click.option("--issue-hour", default=0, show_default=True, type=int,
              help="UTC hour at which the daily forecasts are issued.")
@click.option("--refit", default="28D", show_default=True,
              help="Refit cadence during the test (e.g. 7D, 28D), or 'none' to fit once.")
@click.option("--delay", default="0h", show_default=True,
              help="Reporting delay: each issue reads only data older than this.")
@archive_option
@click.option("--provider-forecasts/--no-provider-forecasts", "provider_forecasts",
              default=None,
              help="Score the forecast each provider had issued by each issue time, from "
              "the archive, as rows named after the provider [default: when the archive "
              "exists and holds forecasts for the zones].")
@json_option
def backtest(data_dir: str | None, zones: str, train_until: str, test_from: str,
             test_until: str, model: str, signal: str, use_prices: bool, issue_hour: int,
             refit: str, delay: str, archive_url: str | None,
             provider_forecasts: bool | None, as_json: bool) -> None:
    """Rolling-origin backtest of a model beside the four baselines, per zone and band
    (and the archived provider forecasts, see --provider-forecasts)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from greenepoch.forecasts.backtest import BacktestConfig, json_records, run_backtest
    from greenepoch.forecasts.data import load_values, parse_day, parse_span
    from greenepoch.forecasts.registry import DEFAULT_MODEL, get_model

    config = BacktestConfig(
        train_until=parse_day(train_until, "--train-until", end_of_day=True),
        test_from=parse_day(test_from, "--test-from"),
        test_until=parse_day(test_until, "--test-until"),
        issue_hour=issue_hour,
        refit=(None if refit.strip().lower() == "none"
               else parse_span(refit, "--refit", positive=False)),
        delay=parse_span(delay, "--delay", positive=False),
    )
    name = DEFAULT_MODEL if model == "default" else model
    get_model(name)  # an unknown model fails before the data is read
    values = load_values(data_dir, signal, zones)
    options = _model_options(use_prices, data_dir, [str(c) for c in values.columns], name)
    result = run_backtest(values, name, config, progress=True,
                          factory=lambda n: get_model(n, **options) if n == name
                          else get_model(n))
    _add_provider_rows(result, archive_url, provider_forecasts, signal)
    metrics = result.metrics()
    if as_json:
        click.echo(json.dumps(json_records(metrics), indent=2))
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        return
    click.echo(render(_corr_2dp(metrics.drop(columns=["n", "pinball"]))))
    summary = (metrics.groupby(["model", "band"], sort=False)
               [["wape", "mape", "coverage_p10_p90", "rank_corr_48h", "regret_pct",
                 "saving_realised_pct"]].median().reset_index())
    click.echo("\nMedian across zones:")
    click.echo(render(_corr_2dp(summary)))
    click.echo(f"\n{len(result.zones)} zone(s), {len(result.issues)} issue(s); fit+predict "
               + ", ".join(f"{k} {v:.0f}s" for k, v in result.seconds.items()))
    if result.providers:
        click.echo(f"Provider rows ({', '.join(result.providers)}): the forecast each had "
                   "issued by the issue time, from the archive; a point forecast (no "
                   "pinball, no P10-P90 coverage), scored on the leads it covers.")
    for note in result.notes:
        click.echo(f"Note: {note}")


def _add_provider_rows(result: BacktestResult, url: str | None, wanted: bool | None,
                       signal: str) -> None:
    """Score the archived provider forecasts into ``result`` (``url``: --archive;
    ``wanted`` None: only when the archive exists; never create one by reading it)."""
    if wanted is False:
        return
    from greenepoch.data.archive.store import Archive
    from greenepoch.data.errors import DataError, GreenEpochError
    from greenepoch.forecasts.backtest import add_provider_forecasts

    try:
        url = live_archive_url(url)
        missing = missing_sqlite_file(url)
        if missing is not None:
            if wanted:
                raise DataError(f"--provider-forecasts: no archive at {missing}; fill one "
                                "with 'greenepoch data pull' or name it with --archive")
            return
        archive = Archive(url)
    except GreenEpochError as exc:
        if wanted:
            raise
        # not asked for: a broken config or an unreachable archive does not stop the models
        click.echo(f"greenepoch: warning: provider forecasts not scored: {exc}", err=True)
        return
    add_provider_forecasts(result, archive, signal)
    if wanted and not result.providers and not result.notes:
        result.notes.append(f"the archive {archive.shown} holds no {signal} provider "
                            f"forecasts for {', '.join(result.zones)}")


def _corr_2dp(frame: pd.DataFrame) -> pd.DataFrame:
    """``rank_corr_48h`` as text with 2 decimals (the table's 1 is too coarse for it),
    right-aligned under its header."""
    col = "rank_corr_48h"
    out = frame.copy()
    out[col] = out[col].map(lambda v: f"{v:.2f}").str.rjust(len(col))
    return out


@forecast.command()
@measured_data_option
@click.option("--zone", "zone", required=True,
              help="Zone id or cloud region (comma-separate several).")
@click.option("--issue", required=True,
              help="Issue time, ISO 8601 with offset, on the data's slot grid, e.g. "
              "2023-06-01T00:00:00Z. Only data before it is used.")
@click.option("--horizon", default="96h", show_default=True,
              help="How far ahead to forecast, with a unit, e.g. 96h or 14D.")
@forecast_option
@signal_option
@prices_option
@json_option
def predict(data_dir: str | None, zone: str, issue: str, horizon: str, model: str,
            signal: str, use_prices: bool, as_json: bool) -> None:
    """Forecast mean and P10/P50/P90 for the slots from ISSUE over HORIZON."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from greenepoch.data.timeparse import utc
    from greenepoch.forecasts.backtest import json_records
    from greenepoch.forecasts.data import history_before, load_values, parse_span
    from greenepoch.forecasts.registry import get_model

    issue_time = utc(issue, "--issue")
    span = parse_span(horizon, "--horizon")
    get_model(model)  # an unknown model fails before the data is read
    values = load_values(data_dir, signal, zone)
    history = history_before(values, issue_time, "--issue")
    options = _model_options(use_prices, data_dir, [str(c) for c in values.columns], model)
    predicted = get_model(model, **options).fit(history).predict(issue_time, span)
    long = predicted.stack(level=0, future_stack=True).rename_axis(["time", "zone"])
    long = long[["mean", "p10", "p50", "p90"]].reset_index()
    if as_json:
        long["time"] = long["time"].map(lambda t: t.isoformat())
        click.echo(json.dumps(json_records(long), indent=2))
        return
    long["time"] = long["time"].dt.strftime("%Y-%m-%d %H:%M")
    click.echo(render(long.rename(columns={"time": "time (UTC)"})))
    covariates = " and the day-ahead prices published by then" if use_prices else ""
    click.echo(f"\ngCO2eq/kWh, {signal}; model {get_model(model).name}, issued "
               f"{issue_time.isoformat()}, using data before it{covariates}.")


from greenepoch.planner.cli.forecast_show import show  # noqa: E402 (registers below)

forecast.add_command(show)
