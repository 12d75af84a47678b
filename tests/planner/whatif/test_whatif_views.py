"""The averaging views compare like with like (paired scenarios), and the CLI tables
print ``none`` for no threshold and ``-`` for a missing value."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.planner.cli.whatif_cmd import whatif_tables
from greenepoch.planner.whatif import (
    best_zone_season,
    pareto_front,
    results_frame,
    slack_returns,
    threshold_curve,
)
from whatif_rows import row


def threshold_rows() -> pd.DataFrame:
    """DE is dirty: a 200 g threshold makes it infeasible.  GB is clean: the threshold
    changes nothing there."""
    return results_frame([
        row(0, 10.0, zones="DE", threshold=None),
        row(1, None, zones="DE", threshold=200.0),
        row(2, 4.0, zones="GB", threshold=None, interruptions=1),
        row(3, 4.0, zones="GB", threshold=200.0, interruptions=1),
    ])


def test_threshold_view_compares_the_same_scenarios() -> None:
    curve = threshold_curve(threshold_rows())
    assert curve["threshold"].isna().tolist() == [False, True]  # 200, then none
    # only GB planned under both thresholds: the threshold buys nothing there
    assert curve["emissions_kg"].tolist() == [4.0, 4.0]
    assert curve["savings_pct"].tolist() == [pytest.approx(100 * 8 / 12)] * 2
    assert curve["scenarios"].tolist() == [1, 1]
    assert curve["no_plan"].tolist() == [1, 0]  # DE infeasible at 200
    assert curve["left_out"].tolist() == [1, 1]  # DE left out of both rows
    assert curve["interruptions"].tolist() == [1.0, 1.0]


def zone_season_rows() -> pd.DataFrame:
    """DE and GB over two months, two starts each, slack 0 and 24 h; DE cannot plan
    the first January start with no slack."""
    rows, i = [], 0
    base = {("DE", "2023-01"): 20.0, ("DE", "2023-07"): 12.0, ("GB", "2023-01"): 8.0,
            ("GB", "2023-07"): 6.0}
    for (zones, season), kg in base.items():
        for nth in (0, 1):
            for slack_h in (0.0, 24.0):
                emissions = kg - nth - slack_h / 24
                if (zones, season, nth, slack_h) == ("DE", "2023-01", 0, 0.0):
                    emissions = None  # would be the dirtiest of all
                rows.append(row(i, emissions, zones=zones, season=season, nth=nth,
                                slack_h=slack_h))
                i += 1
    return results_frame(rows)


def test_best_zone_and_season_compares_the_same_scenarios() -> None:
    ranked = best_zone_season(zone_season_rows())
    # the (n-th start, slack) pairs planned in every zone and month: 3 of 4
    assert ranked["scenarios"].tolist() == [3, 3, 3, 3]
    assert ranked["left_out"].tolist() == [1, 1, 1, 1]
    got = ranked.set_index(["zones", "season"])
    assert got.loc[("DE", "2023-01"), "no_plan"] == 1
    # means over (nth, slack) = (0, 24h), (1, 0h), (1, 24h): kg - (1 + 1 + 2) / 3
    expect = {("GB", "2023-07"): 6 - 4 / 3, ("GB", "2023-01"): 8 - 4 / 3,
              ("DE", "2023-07"): 12 - 4 / 3, ("DE", "2023-01"): 20 - 4 / 3}
    assert list(got.index) == list(expect)  # ranked cleanest first
    assert got["emissions_kg"].to_dict() == pytest.approx(expect)
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    # how much cleaner the best row is than each: kg and % of the row's emissions
    best = 6 - 4 / 3
    assert got["best_cleaner_kg"].to_dict() == pytest.approx(
        {k: v - best for k, v in expect.items()})
    assert got.loc[("DE", "2023-01"), "best_cleaner_pct"] == pytest.approx(
        100 * (20 - 6) / (20 - 4 / 3))


def test_slack_view_compares_the_same_scenarios() -> None:
    slack = slack_returns(zone_season_rows())
    assert slack["scenarios"].tolist() == [7, 7]
    assert slack["no_plan"].tolist() == [1, 0]
    # every pair saves exactly 1 kg with 24 h more slack
    diff = slack["emissions_kg"].iloc[0] - slack["emissions_kg"].iloc[1]
    assert diff == pytest.approx(1.0)


def test_cli_tables_print_none_and_a_dash() -> None:
    text = whatif_tables(threshold_rows())
    table = text.split("carbon threshold trade-off")[1]
    lines = [line.split() for line in table.strip().splitlines()]
    assert lines[2][:2] == ["oracle", "200.0"] and lines[3][:2] == ["oracle", "none"]
    assert "nan" not in text.lower()
    assert "every row averages the same 1 scenarios" in text


def test_all_error_table_prints_a_dash_for_every_missing_value() -> None:
    frame = results_frame([row(0, None, zones="DE"), row(1, None, zones="GB")])
    frame["status"] = "error"
    text = whatif_tables(frame)
    table = text.split("scenarios\n\n")[1].split("\n\n")[0]
    header, _rule, *body = table.splitlines()
    assert "interruptions" in header and len(body) == 2
    for line in body:
        cells = line.split()
        assert "None" not in cells and "nan" not in cells
        assert cells.count("-") >= 8  # every metric, interruptions included
    assert "none" in body[0].split()  # no threshold


@pytest.mark.realdata
def test_cli_all_error_sweep_prints_dashes(real_data: Path, tmp_path: Path) -> None:
    """A sweep outside the data: every row is data_missing (not infeasible: nothing was
    proved about the request) and the table says so."""
    from greenepoch.planner.cli.main import cli
    from test_whatif_inputs import write

    path = write(tmp_path, 'zones = ["DE", "ES"]\nmonths = ["2019-01"]')
    res = CliRunner().invoke(cli, ["whatif", str(path), "--data", str(real_data), "--out",
                                   str(tmp_path / "r.jsonl"), "--workers", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "2 scenario(s) without a plan" in res.output
    reasons = res.output.split("2 scenario(s) without a plan:\n")[1].splitlines()
    assert reasons[0].split()[:2] == ["data_missing", "2"] and len(reasons) == 1
    body = res.output.split("scenarios\n\n")[1].split("\n\n")[0].splitlines()[2:]
    assert len(body) == 2
    for line in body:
        assert "None" not in line and "nan" not in line and " - " in line


def two_mode_rows() -> pd.DataFrame:
    """Oracle plans save more with more slack; plans on a forecast save less (the
    forecast misses the clean hours further out).  Averaged together the slack view
    said more slack saves less."""
    kg = {"oracle": {0.0: 9.0, 12.0: 7.0, 36.0: 6.0},
          "seasonal": {0.0: 9.0, 12.0: 10.0, 36.0: 11.5}}
    rows, i = [], 0
    for forecast, by_slack in kg.items():
        for zones, extra in (("DE", 0.0), ("GB", -3.0)):
            for slack_h, emissions in by_slack.items():
                for threshold in (None, 300.0):
                    rows.append(row(i, emissions + extra, zones=zones, slack_h=slack_h,
                                    threshold=threshold, forecast=forecast))
                    i += 1
    return results_frame(rows)


def test_every_view_is_split_by_forecast_mode() -> None:
    frame = two_mode_rows()
    slack = slack_returns(frame)
    assert slack["forecast"].tolist() == ["oracle"] * 3 + ["seasonal"] * 3
    oracle = slack[slack["forecast"] == "oracle"]
    forecast = slack[slack["forecast"] == "seasonal"]
    # each mode's own curve: oracle saves more with slack, the forecast less
    assert oracle["emissions_kg"].tolist() == pytest.approx([7.5, 5.5, 4.5])
    assert forecast["emissions_kg"].tolist() == pytest.approx([7.5, 8.5, 10.0])
    assert oracle["savings_pct"].is_monotonic_increasing
    assert forecast["savings_pct"].is_monotonic_decreasing
    # the marginal saving is taken within a mode, never across the mode boundary
    assert pd.isna(forecast["marginal_pct_per_h"].iloc[0])
    assert oracle["marginal_pct_per_h"].iloc[1] == pytest.approx(100 * 2 / 12 / 12)
    assert slack["scenarios"].tolist() == [4] * 6  # 2 zones x 2 thresholds per mode

    curve = threshold_curve(frame)
    assert curve["forecast"].tolist() == ["oracle", "oracle", "seasonal", "seasonal"]
    assert curve["emissions_kg"].tolist() == pytest.approx(
        [(9 + 7 + 6 + 6 + 4 + 3) / 6] * 2 + [(9 + 10 + 11.5 + 6 + 7 + 8.5) / 6] * 2)

    ranked = best_zone_season(frame)
    assert list(ranked.columns[:3]) == ["forecast", "rank", "zones"]
    assert ranked["forecast"].tolist() == ["oracle", "oracle", "seasonal", "seasonal"]
    assert ranked["rank"].tolist() == [1, 2, 1, 2]  # ranked within each mode
    assert ranked["zones"].tolist() == ["GB", "DE", "GB", "DE"]
    # how much cleaner the mode's own best is: 3 kg in both modes
    assert ranked["best_cleaner_kg"].tolist() == pytest.approx([0.0, 3.0, 0.0, 3.0])

    text = whatif_tables(frame)
    assert "within each forecast mode (never averaged together)" in text
    assert "oracle: the same 4 scenarios" in text and "seasonal: the same 4 scenarios" in text


def test_pareto_front_collapses_exact_ties_within_each_mode() -> None:
    """Many scenarios with the same (emissions, delay, cost) are one point of the
    front, counted in ``ties``; an oracle plan does not knock forecast plans off
    theirs (perfect foresight is not a plan one could choose)."""
    rows = []
    for i in range(6):  # six oracle scenarios at one point (slack does not matter)
        rows.append(row(i, 4.0, zones="GB", slack_h=12.0 * i, delay_h=1.0, cost=3.0))
    rows.append(row(6, 5.0, zones="DE", delay_h=0.0, cost=3.0))  # faster, dirtier
    rows.append(row(7, 6.0, zones="DE", delay_h=2.0, cost=3.0))  # beaten
    for i in range(8, 11):  # three forecast scenarios tied, all beaten by the oracle
        rows.append(row(i, 4.5, zones="GB", slack_h=12.0 * i, delay_h=1.5, cost=3.0,
                        forecast="seasonal"))
    front = pareto_front(results_frame(rows))
    assert front["forecast"].tolist() == ["oracle", "oracle", "seasonal"]
    assert front["emissions_kg"].tolist() == [4.0, 5.0, 4.5]
    assert front["ties"].tolist() == [6, 1, 3]
    assert list(front.index) == ["s000", "s006", "s008"]  # labels of the first tied row
    assert not front.duplicated(subset=["forecast", "emissions_kg", "delay_mean_h",
                                        "cost_usd"]).any()
