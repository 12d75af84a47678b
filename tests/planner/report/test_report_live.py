"""``greenepoch report`` of live plans (``intensity.live``), direct and marginal, made
against the fake Electricity Maps and WattTime servers on 127.0.0.1: the report shows
what the plan JSON holds (the forecast planned on, per slot; the providers, fetch and
issue times; stale and synthetic warnings) and fetches nothing: no request reaches a
server while reporting, and no other data (climatology, --data) is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fake_electricitymaps as fem
import fake_watttime as fwt
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from greenepoch.data.providers.records import G_PER_KWH_PER_LBS_PER_MWH
from greenepoch.planner.cli.main import cli
from greenepoch.planner.cli.report import plan_summary
from greenepoch.planner.plan import Plan
from greenepoch.planner.report import build_report

# the fake Electricity Maps and WattTime servers at the real "now", a private config,
# the archive in tmp_path, no forecast cache, no data folder; a one-job DE request
from tests.planner import test_plan_live as plan_live
from tests.planner.test_plan_live import TOKEN, _request

live_env = plan_live.live_env  # the fixture, shared (not copied)


def _plan(env: dict[str, Any], hours: int, *extra: str) -> tuple[Result, Path]:
    out = env["dir"] / "p.json"
    result = CliRunner().invoke(cli, ["plan", str(_request(env["dir"] / "r.toml", hours)),
                                      "--live", "--forecast", "yesterday", "--out", str(out),
                                      *extra])
    assert result.exit_code == 0, result.output
    return result, out


def _report(env: dict[str, Any], plan: Path, *extra: str) -> tuple[Result, str]:
    """The report of ``plan``; asserts that no request reached either server."""
    before = len(env["em"].requests), len(env["wt"].requests)
    html_file = env["dir"] / "r.html"
    result = CliRunner().invoke(cli, ["report", str(plan), "--out", str(html_file), *extra])
    assert result.exit_code == 0, result.output
    assert (len(env["em"].requests), len(env["wt"].requests)) == before  # nothing fetched
    return result, html_file.read_text()


def _no_other_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the climatology or re-issuing a forecast fails the test."""
    from greenepoch.data.intensity import source
    from greenepoch.planner.report import build

    def refused(*_: object, **__: object) -> None:
        raise AssertionError("a live plan's report loaded intensities from elsewhere")

    monkeypatch.setattr(source.ClimatologySource, "load", refused)
    monkeypatch.setattr(build, "planned_forecast", refused)
    monkeypatch.setattr(build, "load_backdrop", refused)


def test_direct_live_plan_report_shows_what_the_plan_holds(
        live_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _, plan_file = _plan(live_env, hours=30)
    doc = json.loads(plan_file.read_text())
    series = doc["intensity"]["live"]["series"]
    assert series["first"] == doc["start"] and series["slot"] == "1h"
    assert len(series["p50"]["DE"]) == len(series["p10"]["DE"]) == 30
    # the first hours are the provider's forecast: the fake's trace, as planned on
    first = pd.Timestamp(doc["start"])
    assert series["p50"]["DE"][0] == pytest.approx(fem.value_at("DE", first, "direct"),
                                                   abs=0.01)
    assert Plan.from_json(plan_file.read_text()).to_json() == plan_file.read_text()

    _no_other_source(monkeypatch)
    (live_env["dir"] / "data").mkdir()  # a --data folder is not read either
    result, page = _report(live_env, plan_file, "--data", str(live_env["dir"] / "data"))
    assert "Live inputs" in page and "electricitymaps" in page
    issued = fem.issued(live_env["now"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert issued in page  # the forecast's issue time, from the plan JSON
    assert "the live forecast&#x27;s P50 (direct) the plan was made on" in page
    assert "forecast planned on" not in page  # no forecast re-issued
    assert "by hour of day and month" not in page  # no year of other data
    assert "synthetic data" not in page
    # the band came from the own model fitted on the synthetic default: said loudly
    assert '<p class="warn">WARNING: the P10/P90 band came from the own model fitted on ' \
        "the embedded synthetic default" in page
    assert "live: DE electricitymaps forecast issued" in result.output
    assert "30 h provider; own model fitted on default history" in result.output
    assert "realised" not in result.output
    assert 'data-figures="0/1"' in page  # one figure: the Gantt chart


def test_marginal_live_plan_report_is_labelled_watttime_moer(
        live_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _, plan_file = _plan(live_env, 20, "--signal", "marginal", "--provider", "watttime")
    doc = json.loads(plan_file.read_text())
    series = doc["intensity"]["live"]["series"]
    first = pd.Timestamp(doc["start"])
    hour = fwt.trace("DE", first, first + pd.Timedelta("1h")).mean()  # 12 five-minute MOERs
    assert series["p50"]["DE"][0] == pytest.approx(hour * G_PER_KWH_PER_LBS_PER_MWH, abs=0.05)

    _no_other_source(monkeypatch)
    result, page = _report(live_env, plan_file)
    assert "real marginal (WattTime MOER) intensities" in page
    assert "marginal (WattTime MOER)" in result.output
    assert "watttime" in page and "electricitymaps" not in page
    assert "None history" not in page and "None history" not in result.output  # no model
    assert "the live forecast&#x27;s P50 (marginal (WattTime MOER)) the plan was made on" \
        in page
    assert fwt.PASSWORD not in page and TOKEN not in page


def test_a_live_plan_without_its_series_says_why_there_is_no_backdrop(
        live_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A live plan written before ``intensity.live.series`` existed: no backdrop, and the
    caption says why; still nothing fetched or loaded."""
    _, plan_file = _plan(live_env, hours=24)
    doc = json.loads(plan_file.read_text())
    del doc["intensity"]["live"]["series"]
    plan_file.write_text(json.dumps(doc))
    _no_other_source(monkeypatch)
    _, page = _report(live_env, plan_file)
    assert "without an intensity backdrop" in page
    assert "cannot be issued again" in page


def test_summary_of_a_live_plan_has_no_realised_columns_and_one_live_line(
        live_env: dict[str, Any]) -> None:
    made, plan_file = _plan(live_env, hours=24)
    assert made.output.count("live: DE electricitymaps forecast issued") == 1
    assert "realised" not in made.output
    summary = plan_summary(Plan.from_json(plan_file))
    assert "realised" not in summary and "what happened" not in summary
    assert "live: DE electricitymaps forecast issued" in summary
    report = build_report(plan_file)
    assert any(text.startswith("live: DE") for text in report.text)


def test_a_malformed_series_is_one_plan_error(live_env: dict[str, Any]) -> None:
    from greenepoch.planner.plan import PlanError

    _, plan_file = _plan(live_env, hours=24)
    doc = json.loads(plan_file.read_text())
    doc["intensity"]["live"]["series"]["p10"]["DE"].pop()
    with pytest.raises(PlanError, match=r"intensity\.live\.series: p10\.DE has 23 slots"):
        Plan.from_dict(doc)
