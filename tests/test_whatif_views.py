"""The averaging views compare like with like (paired scenarios), and the CLI tables
print ``none`` for no threshold and ``-`` for a missing value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from planner.cli.whatif_cmd import whatif_tables
from planner.whatif import best_zone_season, results_frame, slack_returns, threshold_curve

STARTS = {"2023-01": ["2023-01-01T00:00:00Z", "2023-01-16T00:00:00Z"],
          "2023-07": ["2023-07-01T00:00:00Z", "2023-07-16T00:00:00Z"]}


def row(i: int, emissions: float | None, *, zones: str = "DE", season: str = "2023-01",
        nth: int = 0, slack_h: float = 0.0, threshold: float | None = None,
        interruptions: int = 0) -> dict[str, Any]:
    """One row as the sweep writes it (``emissions`` None: infeasible)."""
    ok = emissions is not None
    run_now = 12.0
    return {
        "scenario_id": f"s{i:03d}", "index": i, "zones": zones, "season": season,
        "start": STARTS[season][nth], "slack_h": slack_h, "threshold": threshold,
        "overhead_min": None, "forecast": "oracle",
        "status": "ok" if ok else "infeasible",
        "message": "" if ok else "infeasible: the carbon threshold excludes every slot",
        "emissions_kg": emissions, "planned_emissions_kg": emissions,
        "run_now_kg": run_now if ok else None,
        "saving_kg": run_now - emissions if ok else None,
        "savings_pct": 100 * (run_now - emissions) / run_now if ok else None,
        "delay_mean_h": slack_h / 2 if ok else None, "delay_p95_h": slack_h / 2 if ok else None,
        "interruptions": interruptions if ok else None, "migrations": 0 if ok else None,
        "energy_kwh": 20.0 if ok else None, "cost_usd": None, "solver": "optimal" if ok else None,
        "segments": [], "seconds": 0.1,
    }


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
    assert lines[2][0] == "200.0" and lines[3][0] == "none"
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
    """A sweep outside the data: every row is an error and the table says so."""
    from test_whatif_inputs import write

    from planner.cli.main import cli

    path = write(tmp_path, 'zones = ["DE", "ES"]\nmonths = ["2019-01"]')
    res = CliRunner().invoke(cli, ["whatif", str(path), "--data", str(real_data), "--out",
                                   str(tmp_path / "r.jsonl"), "--workers", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "2 scenario(s) without a plan" in res.output
    body = res.output.split("scenarios\n\n")[1].split("\n\n")[0].splitlines()[2:]
    assert len(body) == 2
    for line in body:
        assert "None" not in line and "nan" not in line and " - " in line
