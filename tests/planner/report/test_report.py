"""Reports of plans and what-if sweeps: one offline HTML page with its figures."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.report import build_report

IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">')

SWEEP = """
start = "2023-02-06T00:00:00Z"

[[jobs]]
name = "ft"
gpus = 8
duration = "3h"
deadline = "2023-02-07T00:00:00Z"
zones = ["DE"]

[[zones]]
id = "DE"
capacity_gpus = 16

[policy]
time_limit = "5s"

[sweep]
zones = ["DE", "ES"]
months = ["2023-02", "2023-08"]
slack = ["0h", "24h"]
threshold = ["none", 250]
forecast = ["oracle"]
"""

PLAN = """
start = "2023-06-01T00:00:00Z"

[[jobs]]
name = "pretrain"
gpus = 16
duration = "10h"
deadline = "2023-06-03T00:00:00Z"
zones = ["DE", "GB"]

[[jobs]]
name = "eval"
gpus = 8
duration = "4h"
deadline = "2023-06-02T12:00:00Z"
zones = ["GB"]

[[zones]]
id = "DE"
capacity_gpus = 32

[[zones]]
id = "GB"
capacity_gpus = 32

[policy]
time_limit = "5s"
"""


def figures(page: str) -> list[tuple[bytes, str]]:
    return [(base64.b64decode(data), alt) for data, alt in IMG.findall(page)]


def check_png(png: bytes) -> tuple[int, int]:
    from PIL import Image

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.width > 200 and image.height > 100
    return image.size


def check_offline(page: str) -> None:
    # nothing fetched from elsewhere: no external scripts, styles, images or fonts
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "@import" not in page and "url(" not in page


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> tuple[Path, Path]:
    from greenepoch.planner.whatif import load_spec, run_sweep

    root = real_data
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "spec.toml").write_text(SWEEP, encoding="utf-8")
    out = tmp / "sweep.jsonl"
    run_sweep(load_spec(tmp / "spec.toml"), out, data=str(root), workers=2, progress=False)
    return out, root


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> tuple[Path, Path]:
    from greenepoch.planner.pipeline import plan
    from greenepoch.planner.request import load_request

    root = real_data
    tmp = tmp_path_factory.mktemp("plan")
    (tmp / "req.toml").write_text(PLAN, encoding="utf-8")
    out = tmp / "plan.json"
    plan(load_request(tmp / "req.toml"), data=root, oracle=True).to_json(out)
    return out, root


@pytest.mark.realdata
def test_plan_report_contents(plan_file: tuple[Path, Path]) -> None:
    path, root = plan_file
    report = build_report(path, data=str(root))
    page = report.html()
    check_offline(page)
    figs = figures(page)
    assert report.figures == len(figs) == 2
    for png, _ in figs:
        check_png(png)
    alts = [alt for _, alt in figs]
    assert alts[0].startswith("segments over the real direct intensity")
    assert alts[1] == "mean direct intensity, 2023, real data, hour of day in UTC"
    for heading in ("Savings", "Plan across zones", "Segments",
                    "Carbon intensity by hour of day and month"):
        assert f"<h2>{heading}</h2>" in page
    assert page.count('<td class="text">pretrain</td>') >= 1
    assert '<td class="text">eval</td>' in page
    text = "\n".join(report.text)
    assert "run_now_home_kg" in text and "pretrain" in text and "eval" in text
    assert 'data-figures-loaded="pending"' in page


@pytest.mark.realdata
def test_result_report_contents(sweep_file: tuple[Path, Path]) -> None:
    path, root = sweep_file
    report = build_report(path, data=str(root))
    page = report.html()
    check_offline(page)
    figs = figures(page)
    assert report.figures == len(figs) == 6
    for png, _ in figs:
        check_png(png)
    for heading in ("Best scenario", "Plan across zones", "Best zone and season",
                    "Carbon threshold trade-off", "Diminishing returns of slack",
                    "Carbon-time-cost Pareto front",
                    "Carbon intensity by hour of day and month", "All scenarios"):
        assert f"<h2>{heading}</h2>" in page, heading
    assert "16 scenarios" in page
    text = "\n".join(report.text)
    for title in ("best zone and season", "carbon threshold trade-off",
                  "diminishing returns of slack", "Pareto front"):
        assert title in text
    # the heatmap covers every zone of the sweep
    heat = next(png for png, alt in figs if alt.startswith("mean direct intensity"))
    width, _ = check_png(heat)
    assert width > 600  # two panels side by side


def test_report_refuses_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"schema_version": "0.1"}')
    with pytest.raises(GreenEpochError, match="schema_version"):
        build_report(bad)
    with pytest.raises(GreenEpochError, match="no such file"):
        build_report(tmp_path / "missing.json")


@pytest.mark.realdata
@pytest.mark.parametrize(("drop", "field"), [
    (("solver",), "missing 'solver'"),
    (("intensity", "mode"), "intensity: missing 'mode'"),
    (("jobs", 0, "summary"), "jobs[0]: missing 'summary'"),
    (("jobs", 0, "baselines", "run_now_best_zone"),
     "jobs[0].baselines: missing 'run_now_best_zone'"),
])
def test_plan_without_what_the_report_reads_names_the_field(
        plan_file: tuple[Path, Path], tmp_path: Path, drop: tuple, field: str) -> None:
    doc = json.loads(plan_file[0].read_text(encoding="utf-8"))
    part = doc
    for key in drop[:-1]:
        part = part[key]
    del part[drop[-1]]
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(GreenEpochError, match=re.escape(field)) as info:
        build_report(bad)
    assert "not a plan document" in str(info.value) and "\n" not in str(info.value)


def _cli():
    from greenepoch.planner.cli.main import cli

    if "report" not in cli.commands:  # until planner/cli/main.py registers it
        from greenepoch.planner.cli.report_cmd import report

        cli.add_command(report)
    return cli


@pytest.mark.realdata
def test_report_cli_writes_html_and_prints_tables(sweep_file: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    path, root = sweep_file
    out = tmp_path / "r.html"
    res = CliRunner().invoke(_cli(), ["report", str(path), "--data", str(root), "--out",
                                      str(out)])
    assert res.exit_code == 0, res.output
    assert "best zone and season" in res.output and "----" in res.output
    assert f"wrote {out} (6 figures" in res.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    bad = CliRunner().invoke(_cli(), ["report", str(tmp_path / "nope.json"), "--out",
                                      str(out)])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1


def _all_scenarios(page: str) -> list[list[str]]:
    """The cells of the report's "All scenarios" table, header first."""
    table = page.split("<h2>All scenarios</h2>")[1]
    head = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    return [head] + [re.findall(r"<td[^>]*>([^<]*)</td>", r)
                     for r in re.findall(r"<tr>(.*?)</tr>", table)[1:]]


@pytest.mark.parametrize("with_error", [False, True])
def test_result_report_counts_are_whole_numbers(with_error: bool) -> None:
    """Interruptions are whole numbers in every report, whether or not some row has
    no plan (a null); views' means have 2 decimals, no threshold prints ``none``."""
    from greenepoch.planner.report import result_report
    from whatif_rows import row

    rows = [row(0, 10.0, zones="DE", threshold=None, interruptions=2),
            row(1, 9.0, zones="DE", threshold=200.0, interruptions=1),
            row(2, 4.0, zones="GB", threshold=None),
            row(3, None if with_error else 4.0, zones="GB", threshold=200.0)]
    header = {"kind": "greenepoch-whatif", "version": 1, "data": None, "signal": "direct"}
    page = result_report(header, {r["scenario_id"]: r for r in rows}).html()
    table = _all_scenarios(page)
    column = table[0].index("interruptions")
    expect = ["2", "1", "0", "-" if with_error else "0"]
    assert [r[column] for r in table[1:]] == expect
    thresholds = [r[table[0].index("threshold")] for r in table[1:]]
    assert thresholds == ["none", "200.00", "none", "200.00"]
    assert "planned on oracle (perfect foresight) 4" in page
    curve = page.split("<h2>Carbon threshold trade-off</h2>")[1].split("<h2>")[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", curve)
    assert "none" in cells and "nan" not in cells
    assert "every row averages the same" in curve


def test_report_html_is_written_atomically(tmp_path: Path) -> None:
    """A report write that fails half way (file size cap, as on a full disk) leaves the
    previous report whole (it used to leave the first bytes of the new page)."""
    import subprocess
    import sys

    from whatif_rows import row

    source = _results_file(tmp_path, [row(0, 10.0, zones="DE"), row(1, 4.0, zones="GB")])
    out = tmp_path / "r.html"
    out.write_text("<!DOCTYPE html>old report\n", encoding="utf-8")
    runner = ("import resource, signal, sys\nimport matplotlib.pyplot\n"
              "from greenepoch.planner.cli.main import cli\n"
              "from greenepoch.planner.cli.report_cmd import report\n"
              "if 'report' not in cli.commands: cli.add_command(report)\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
              "sys.argv[0] = 'greenepoch'; cli()")
    res = subprocess.run([sys.executable, "-c", runner, "report", str(source), "--out",
                          str(out), "--quiet"], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert out.read_text(encoding="utf-8") == "<!DOCTYPE html>old report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "sweep.jsonl"]
    ok = subprocess.run([sys.executable, "-c", runner.replace("20000", "10**9"), "report",
                         str(source), "--out", str(out), "--quiet"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>\n<html")


def test_threshold_figure_starts_at_zero_and_splits_forecast_modes() -> None:
    """Emissions of 4.1705-4.1725 kg filled the whole axis (a 0.05 % difference drawn as
    a cliff); the figure also drew oracle and forecast plans as one curve."""
    import pandas as pd
    from greenepoch.planner.report.figures import to_png, tradeoff_figure

    curve = pd.DataFrame({
        "forecast": ["oracle"] * 3 + ["seasonal"] * 3,
        "threshold": [150.0, 250.0, float("nan")] * 2,
        "emissions_kg": [4.1705, 4.1725, 4.1725, 4.6, 4.9, 4.9],
        "delay_mean_h": [9.0, 8.1, 8.1, 7.0, 6.5, 6.5],
    })
    fig = tradeoff_figure(curve, "delay_mean_h", "emissions_kg", "threshold",
                          "completion delay, mean (h)", "emissions (kg CO2eq)",
                          "threshold: emissions vs delay", "kg")
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0 and 4.9 < ax.get_ylim()[1] < 5.5
    assert ax.get_xlim()[0] == 0
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "oracle (perfect foresight)", "seasonal forecast"]
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [3, 3]
    assert "oracle 0.002 kg (0.0479 %)" in ax.get_title()
    # coinciding points get one label naming every threshold there
    texts = [t.get_text() for t in ax.texts]
    assert "250, none" in texts and "150" in texts
    check_png(to_png(fig))


def test_pareto_figure_counts_ties_per_mode() -> None:
    from greenepoch.planner.report.figures import pareto_figure, to_png
    from greenepoch.planner.whatif import pareto_front, results_frame
    from whatif_rows import row

    rows = [row(i, 4.0, zones="GB", slack_h=12.0 * i, delay_h=1.0, cost=3.0)
            for i in range(6)]
    rows += [row(6, 5.0, zones="DE", delay_h=0.0, cost=2.0),
             row(7, 4.5, zones="GB", delay_h=1.5, cost=3.0, forecast="seasonal"),
             row(8, 4.5, zones="GB", slack_h=12.0, delay_h=1.5, cost=3.0, forecast="seasonal")]
    frame = results_frame(rows)
    fig = pareto_figure(frame, pareto_front(frame), ["emissions_kg", "delay_mean_h", "cost_usd"])
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["×2", "×6"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["scenario, oracle (perfect foresight)",
                      "Pareto front, oracle (perfect foresight)",
                      "scenario, seasonal forecast", "Pareto front, seasonal forecast"]
    assert ax.get_ylim()[0] == 0
    check_png(to_png(fig))


def test_gantt_has_deadlines_a_readable_colour_bar_and_the_forecast_lane() -> None:
    """The colour bar was a sliver beside a 2-lane chart, deadlines were not drawn, and a
    forecast plan showed only what happened, not the forecast it was planned on."""
    import matplotlib.dates as mdates
    import pandas as pd
    from greenepoch.planner.report.figures import gantt_figure, to_png

    times = pd.date_range("2023-08-01", periods=24, freq="1h", tz="UTC", name="time")
    actual = pd.DataFrame({"ES": range(100, 124), "DE": range(300, 324)}, index=times,
                          dtype=float)
    forecast = actual + 40.0
    segments = pd.DataFrame({"job": ["ft", "ft"], "zone": ["ES", "ES"],
                             "start": ["2023-08-01T10:00:00Z", "2023-08-01T13:00:00Z"],
                             "end": ["2023-08-01T12:00:00Z", "2023-08-01T14:00:00Z"],
                             "gpus": [8, 8]})
    deadline = pd.Timestamp("2023-08-01T15:00:00Z")
    fig = gantt_figure(segments, actual, "t", deadlines={"ft": deadline}, forecast=forecast)
    ax, bar = fig.axes
    lanes = [t.get_text() for t in ax.get_yticklabels()]
    assert lanes == ["ES · forecast planned on", "ES · ft (actual)",
                     "DE · forecast planned on", "DE (actual)"]
    # the forecast lane is drawn from the forecast, the job lane from what happened
    strips = [m.get_array().ravel() for m in ax.collections]
    assert strips[0].tolist() == forecast["ES"].tolist()
    assert strips[1].tolist() == actual["ES"].tolist()
    marks = [line for line in ax.get_lines() if line.get_label() == "deadline"]
    assert len(marks) == 1
    assert marks[0].get_xdata()[0] == mdates.date2num(deadline.tz_convert(None))
    box = bar.get_position()
    assert box.width > 5 * box.height  # a horizontal bar under the chart
    assert bar.get_position().y1 < ax.get_position().y0
    assert bar.get_xlim() == (0.0, 363.0)  # one scale for forecast and actual
    assert "forecast lanes" in bar.get_xlabel()
    check_png(to_png(fig))


@pytest.mark.realdata
def test_forecast_lane_is_the_forecast_the_plan_was_made_on(real_data: Path,
                                                             tmp_path: Path) -> None:
    """The report issues the forecast again: it must equal what the planner judged the
    plan on (the segment emissions are energy x that forecast)."""
    import numpy as np
    from greenepoch.planner.pipeline import load_intensities, plan
    from greenepoch.planner.report.build import plan_report, planned_forecast
    from greenepoch.planner.request import load_request

    (tmp_path / "req.toml").write_text(PLAN, encoding="utf-8")
    request = load_request(tmp_path / "req.toml")
    judged = load_intensities(request, data=real_data, model="seasonal").judged.values
    again = planned_forecast(["DE", "GB"], request.start, request.end + pd.Timedelta("6h"),
                             model="seasonal", slot="1h", data=str(real_data),
                             signal="direct")
    assert np.allclose(again.loc[judged.index, judged.columns].to_numpy(),
                       judged.to_numpy())
    doc = plan(request, data=real_data, model="seasonal").to_dict()
    report = plan_report(doc, data=str(real_data))
    alts = [alt for _, alt in figures(report.html())]
    assert "the seasonal forecast issued at 2023-06-01 00:00 UTC" in alts[0]


def test_result_report_shows_the_best_plan_of_each_forecast_mode() -> None:
    """The best scenario was the lowest emissions over every mode (an oracle plan, which
    no forecast user can choose); now each mode has its own, and the forecast one is
    drawn over the forecast it was planned on, with its deadline."""
    from greenepoch.planner.report import result_report
    from whatif_rows import row

    rows = []
    for i, (mode, kg) in enumerate([("oracle", 4.0), ("oracle", 5.0), ("seasonal", 4.5),
                                    ("seasonal", 6.0)]):
        r = row(i, kg, zones="DE", forecast=mode, slack_h=float(i))
        r["segments"] = [["ft", "DE", "2023-01-01T02:00:00Z", "2023-01-01T05:00:00Z", 8]]
        r["deadlines"] = {"ft": "2023-01-01T08:00:00Z"}
        r["slot"] = "1h"
        rows.append(r)
    header = {"kind": "greenepoch-whatif", "version": 1, "data": None, "signal": "direct",
              "seed": 0}
    page = result_report(header, {r["scenario_id"]: r for r in rows}).html()
    assert "<h2>Best scenario of each forecast mode</h2>" in page
    best = page.split("<h2>Best scenario of each forecast mode</h2>")[1].split("<h2>")[0]
    assert re.findall(r'<td class="text">(oracle|seasonal)</td>', best) == ["oracle",
                                                                             "seasonal"]
    alts = [alt for _, alt in figures(page)]
    assert alts[0].endswith("red ticks: deadlines")
    assert "the seasonal forecast issued at 2023-01-01 00:00 UTC" in alts[1]


def _results_file(tmp_path: Path, rows: list[dict]) -> Path:
    header = {"kind": "greenepoch-whatif", "version": 1, "base": "b", "data": None,
              "signal": "direct", "seed": 0}
    path = tmp_path / "sweep.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [header, *rows]), encoding="utf-8")
    return path


@pytest.mark.parametrize(("key", "value", "message"), [
    ("savings_pct", "12.5", "savings_pct = '12.5': expected a number or null, found text"),
    ("emissions_kg", "abc", "emissions_kg = 'abc': expected a number or null, found text"),
    ("interruptions", True, "interruptions = true: expected a number or null, found a boolean"),
    ("zones", 5, "zones = 5: expected text or null, found a whole number"),
    ("segments", "none", "segments = 'none': expected a list of segments or null, found text"),
])
def test_result_rows_of_the_wrong_type_are_one_error_naming_row_and_key(
        tmp_path: Path, key: str, value: object, message: str) -> None:
    """A quoted number in a row ("savings_pct": "12.5") was coerced silently, and text
    that is no number was reported as a missing key."""
    from whatif_rows import row

    rows = [row(0, 10.0), row(1, 9.0, zones="GB")]
    rows[1][key] = value
    path = _results_file(tmp_path, rows)
    out = tmp_path / "r.html"
    res = CliRunner().invoke(_cli(), ["report", str(path), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output == (f"greenepoch: error: {path}: line 3 (scenario 's001'): {message}; "
                          "rerun the sweep (greenepoch whatif) to rewrite the row\n")
    assert not out.exists()
    rows[1][key] = row(1, 9.0, zones="GB")[key]  # the same file, typed as written: reported
    good = CliRunner().invoke(_cli(), ["report", str(_results_file(tmp_path, rows)),
                                       "--out", str(out)])
    assert good.exit_code == 0, good.output


def test_result_report_has_the_outcomes_table(tmp_path: Path) -> None:
    """Rows without a plan by why, as the terminal lists them: the HTML report said only
    "2 without a plan", not that one was proved infeasible and one ran out of time."""
    from whatif_rows import row

    rows = [row(0, 10.0), row(1, 9.0, zones="GB"), row(2, None, zones="ES"),
            row(3, None, zones="DE", nth=1), row(4, None, zones="GB", nth=1)]
    rows[3].update(status="no_solution", message="no plan within the time limit of 5 s")
    rows[4].update(status="no_solution", message="no plan within the time limit of 5 s")
    report = build_report(_results_file(tmp_path, rows))
    page = report.html()
    assert "5 scenarios (2 planned, 3 without a plan)" in page
    section = page.split("<h2>Scenarios without a plan</h2>")[1].split("<h2>")[0]
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", r)
             for r in re.findall(r"<tr>(.*?)</tr>", section)[1:]]
    assert [c[:3] for c in cells] == [
        ["infeasible", "proved infeasible: no plan exists", "1"],
        ["no_solution", "no plan within the time limit (none proved impossible)", "2"]]
    assert cells[0][3:] == ["ES 2023-01-01T00:00:00Z",
                            "infeasible: the carbon threshold excludes every slot"]
    assert cells[1][3] == "DE 2023-01-16T00:00:00Z"
    assert "3 scenario(s) without a plan, by why" in section
    assert "scenarios without a plan" in "\n".join(report.text)  # printed as well


def test_result_report_without_any_plan_says_why(tmp_path: Path) -> None:
    from whatif_rows import row

    rows = [row(0, None), row(1, None, zones="GB")]
    rows[1].update(status="data_missing", message="no data")
    with pytest.raises(GreenEpochError, match=r"no scenario of the results file has a plan "
                                              r"\(infeasible 1, data_missing 1\)"):
        build_report(_results_file(tmp_path, rows))
