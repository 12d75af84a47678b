"""The report of a run log (planner/report/run_report.py), on a hand-written log.

The log: 1 GPU drawing 0.4 kW (0.1 kWh per 15 min), started 00:00 at 200 g/kWh, paused
at 00:15 (500), paused through 00:30 (450), resumed at 00:45 (100), a fallback to the
archive at 01:15 (300, stale), done at 01:30.  By hand:

* running 00:00-00:15 and 00:45-01:30: 1 h; paused 00:15-00:45: 0.5 h; 0.4 kWh;
* the run's emissions (the log's): 0.1 x (200 + 100 + 100 + 300) / 1000 = 0.07 kg;
* run now: 00:00-01:00 straight at 200, 500, 450, 100: 0.1 x 1250 / 1000 = 0.125 kg;
  saving (0.125 - 0.07) / 0.125 = 44 %; run-now done 01:00, delay 0.5 h; 1 pause.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.cli.main import cli
from greenepoch.planner.report.run_report import (
    is_run_log,
    read_run_log,
    run_report,
    state_spans,
    summarise,
)

DAY = "2023-06-01T"
ACTUAL = {"provider": "electricitymaps", "kind": "actual", "stale": False, "age_s": 300}
STALE = {"provider": "archive", "kind": "actual", "stale": True, "age_s": 9000}
FORECAST = {"provider": "electricitymaps", "kind": "forecast", "stale": False, "age_s": 0}
LINES: list[dict[str, Any]] = [
    {"time": DAY + "00:00:00Z", "event": "start", "state": "running", "intensity": 200,
     "provenance": ACTUAL, "reason": "intensity 200 <= resume level 300", "segment": 0,
     "policy": "threshold", "energy_kwh": 0.0, "emissions_kg": 0.0},
    {"time": DAY + "00:15:00Z", "event": "decision", "state": "running", "intensity": 500,
     "provenance": ACTUAL, "reason": "intensity 500 > pause level 400",
     "energy_kwh": 0.1, "emissions_kg": 0.02},
    {"time": DAY + "00:15:00Z", "event": "pause", "state": "paused", "intensity": 500,
     "provenance": ACTUAL, "reason": "intensity 500 > pause level 400", "segment": 0},
    {"time": DAY + "00:30:00Z", "event": "decision", "state": "paused", "intensity": 450,
     "provenance": FORECAST, "reason": "intensity 450 > resume level 300",
     "energy_kwh": 0.1, "emissions_kg": 0.02},
    {"time": DAY + "00:40:00Z", "event": "supervisor", "note": "an event the report "
     "does not know"},
    {"time": DAY + "00:45:00Z", "event": "resume", "state": "running", "intensity": 100,
     "provenance": ACTUAL, "reason": "intensity 100 <= resume level 300", "segment": 1,
     "redone_s": 120},
    {"time": DAY + "01:00:00Z", "event": "decision", "state": "running", "intensity": 100,
     "provenance": ACTUAL, "reason": "intensity 100 <= pause level 400",
     "energy_kwh": 0.2, "emissions_kg": 0.03},
    {"time": DAY + "01:15:00Z", "event": "fallback", "state": "running", "intensity": 300,
     "provenance": STALE, "reason": "electricitymaps unavailable; archive 2.5 h old",
     "energy_kwh": 0.3, "emissions_kg": 0.04},
    {"time": DAY + "01:30:00Z", "event": "done", "state": "running", "intensity": 300,
     "provenance": STALE, "reason": "the training exited 0", "progress": 1.0,
     "energy_kwh": 0.4, "emissions_kg": 0.07},
]


def write_log(path: Path, lines: list[dict[str, Any]] = LINES, tail: str = "") -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + tail,
                    encoding="utf-8")
    return path


def test_the_figures_are_the_hand_computed_ones(tmp_path: Path) -> None:
    log = read_run_log(write_log(tmp_path / "run.jsonl"))
    s = summarise(log)
    assert s.running_h == pytest.approx(1.0)
    assert s.paused_h == pytest.approx(0.5)
    assert s.energy_kwh == pytest.approx(0.4) and s.mean_kw == pytest.approx(0.4)
    assert s.emissions_kg == pytest.approx(0.07)
    # charged where running (the log's increments), seen while paused
    assert s.basis == "charged+seen" and s.run_kg == pytest.approx(0.07)
    assert s.run_now_kg == pytest.approx(0.125)
    assert s.saving_pct == pytest.approx(44.0)
    assert str(s.run_now_done) == "2023-06-01 01:00:00+00:00"
    assert s.delay_h == pytest.approx(0.5)
    assert (s.pauses, s.resumes, s.restarts, s.fallbacks, s.decisions) == (1, 1, 0, 1, 3)
    assert s.supervisor_restarts == 0
    assert s.redone_h == pytest.approx(120 / 3600)
    assert s.policy == "threshold"
    spans = state_spans(log)
    assert [(str(a.time()), str(b.time()), st) for a, b, st in spans.itertuples(index=False)] \
        == [("00:00:00", "00:15:00", "running"), ("00:15:00", "00:45:00", "paused"),
            ("00:45:00", "01:30:00", "running")]


def test_a_pause_takes_effect_when_the_training_stopped(tmp_path: Path) -> None:
    """The pause line is written at the decision (00:15); the training took pause_s = 5
    wall seconds to save and exit, at speed 60 five simulated minutes: it ran to 00:20."""
    first = {"time": DAY + "00:00:00Z", "event": "supervisor", "state": "paused",
             "simulate": True, "speed": 60}
    lines = [first, *(dict(line) for line in LINES)]
    lines[3]["pause_s"] = 5
    log = read_run_log(write_log(tmp_path / "run.jsonl", lines))
    spans = state_spans(log)
    assert [(str(a.time()), str(b.time()), st) for a, b, st in spans.itertuples(index=False)] \
        == [("00:00:00", "00:20:00", "running"), ("00:20:00", "00:45:00", "paused"),
            ("00:45:00", "01:30:00", "running")]
    assert summarise(log).running_h == pytest.approx(65 / 60)


def test_without_energy_the_intensities_seen(tmp_path: Path) -> None:
    """No energy in the log: nothing to charge, so no kg; the seen series is the basis."""
    lines = [{k: v for k, v in line.items() if k not in ("energy_kwh", "emissions_kg")}
             for line in LINES]
    s = summarise(read_run_log(write_log(tmp_path / "run.jsonl", lines)))
    assert s.basis == "seen" and s.run_kg is None and s.run_now_kg is None
    assert s.delay_h == pytest.approx(0.5)
    assert "the log holds no energy_kwh" in "\n".join(run_report(
        read_run_log(tmp_path / "run.jsonl")).text)


def test_the_charged_intensity_differs_from_the_one_seen(tmp_path: Path) -> None:
    """The decision at 01:15 saw 300 but the span 01:15-01:30 was charged at 500 (the
    log's increment: 0.1 kWh, 0.05 kg): run 0.02 + 0.01 + 0.01 + 0.05 = 0.09 kg; run now
    is on what was charged while running (200 over 00:00-00:15) and on what the lines saw
    while paused (500, 450), then 100: 0.125 kg as before."""
    lines = [dict(line) for line in LINES]
    lines[8]["emissions_kg"] = 0.09
    s = summarise(read_run_log(write_log(tmp_path / "run.jsonl", lines)))
    assert s.basis == "charged+seen"
    assert s.run_kg == pytest.approx(0.09) and s.emissions_kg == pytest.approx(0.09)
    assert s.run_now_kg == pytest.approx(0.125)


def test_a_span_charged_at_no_known_intensity_is_unknown_not_zero(tmp_path: Path) -> None:
    """No source knew the intensity of 00:45-01:00: the controller counted its 0.1 kWh and
    charged nothing (emissions stay 0.02 kg at 01:00).  That span is 0.25 h of unknown
    intensity, not a span at 0 g/kWh: run_kg leaves it out (0.02 + 0.01 + 0.03 = 0.06 kg,
    the log's own), and run now, which runs through 00:45-01:00 as well, has it unknown
    too (0.1 x (200 + 500 + 450) / 1000 = 0.115 kg over the rest)."""
    lines = [dict(line) for line in LINES]
    lines[6]["emissions_kg"], lines[7]["emissions_kg"] = 0.02, 0.03
    lines[8]["emissions_kg"] = 0.06
    s = summarise(read_run_log(write_log(tmp_path / "run.jsonl", lines)))
    assert s.run_kg == pytest.approx(0.06) and s.emissions_kg == pytest.approx(0.06)
    assert s.run_unknown_h == pytest.approx(0.25)
    assert s.run_now_unknown_h == pytest.approx(0.25)
    assert s.run_now_kg == pytest.approx(0.115)


def test_the_actual_intensities_when_the_log_has_them(tmp_path: Path) -> None:
    """Each line's actual_intensity charges the span since the line before (or since its
    actual_from): actual
    250 over 00:00-00:15 (running), 600 and 500 over the pause, then 100, 100, 200 over
    00:45-01:30.  Run: 0.1 x (250 + 100 + 100 + 200) / 1000 = 0.065 kg; run now over
    00:00-01:00: 0.1 x (250 + 600 + 500 + 100) / 1000 = 0.145 kg; saving 55.17 %."""
    actual = {1: 250, 2: 250, 3: 600, 5: 500, 6: 100, 7: 100, 8: 200}
    lines = [dict(line, actual_intensity=actual[i]) if i in actual else line
             for i, line in enumerate(LINES)]
    lines[4] = dict(lines[4], actual_intensity=999, actual_from=lines[4]["time"])  # 0 long
    lines[5] = dict(lines[5], actual_from=DAY + "00:30:00Z")  # across the supervisor line
    s = summarise(read_run_log(write_log(tmp_path / "run.jsonl", lines)))
    assert s.basis == "actual"
    assert s.run_kg == pytest.approx(0.065)
    assert s.run_now_kg == pytest.approx(0.145)
    assert s.saving_pct == pytest.approx(100 * 0.08 / 0.145)
    assert s.emissions_kg == pytest.approx(0.07)  # the log's own figure, shown as it is


def test_the_page_shows_them(tmp_path: Path) -> None:
    report = run_report(write_log(tmp_path / "run.jsonl"))
    page = report.html()
    assert report.figures == 1
    text = "\n".join(report.text)
    row = text.splitlines()
    header = next(i for i, line in enumerate(row) if line.lstrip().startswith("emissions_kg"))
    cells = dict(zip(row[header].split(), row[header + 2].split(), strict=False))
    assert (cells["emissions_kg"], cells["run_now_kg"], cells["saving_%"]) == \
        ("0.1", "0.1", "44.0")  # one decimal in the terminal
    assert ">0.07<" in page and (">0.12<" in page or ">0.13<" in page)
    assert ">44.00<" in page and ">0.50<" in page  # saving %, delay h (2 decimals in HTML)
    assert "electricitymaps unavailable" in page and "archive actual stale" in page
    assert "supervisor" in page  # unknown events are listed, not interpreted
    assert "done at 2023-06-01 01:30:00 UTC" in page


def test_a_run_in_progress_and_a_line_cut_by_a_killed_supervisor(tmp_path: Path) -> None:
    """A run not done yet; a line cut short, then the supervisor's restart (as the
    writer leaves them): the cut line is left out, the restart counted apart."""
    again = {"time": DAY + "00:30:00Z", "event": "restart", "supervisor": True,
             "state": "paused", "reason": "supervisor started again"}
    path = write_log(tmp_path / "run.jsonl", LINES[:4],
                     tail='{"time": "2023-06-01T00:3\n' + json.dumps(again) + "\n")
    log = read_run_log(path)
    assert [line.event for line in log.lines] == ["start", "decision", "pause", "decision",
                                                  "restart"]
    s = summarise(log)
    assert s.done is None and s.delay_h is None
    assert (s.restarts, s.supervisor_restarts, s.paused_h) == (0, 1, pytest.approx(0.25))
    page = run_report(log).html()
    assert "not done: the log ends at 2023-06-01 00:30:00 UTC" in page
    assert "restart (supervisor)" in page


def test_a_line_out_of_time_order_is_noted_and_adds_no_time(tmp_path: Path) -> None:
    back: dict[str, Any] = {"time": "2023-06-01T00:10:00Z", "event": "decision",
                            "state": "running"}
    log = read_run_log(write_log(tmp_path / "run.jsonl", [*LINES[:2], back, *LINES[2:]]))
    assert log.notes == ("entry 3 (decision at 2023-06-01T00:10:00Z) is dated before the "
                         "one above it (2023-06-01T00:15:00Z); it adds no time",)
    assert summarise(log).running_h == pytest.approx(1.0)


@pytest.mark.parametrize(("body", "message"), [
    ('{"time": "2023-06-01T00:20:00Z", "event": "decision"\n',
     r"run\.jsonl:3: not a JSON line"),
    ("[1, 2]\n", r"run\.jsonl:3: a run log line needs 'time' and 'event'"),
    ('{"event": "decision"}\n', r"run\.jsonl:3: a run log line needs"),
    ('{"time": "2023-06-01T00:20:00", "event": "x"}\n',
     r"run\.jsonl: entry 3 \('x' at '2023-06-01T00:20:00'\): the time has no UTC offset"),
    ('{"time": "yesterday", "event": "x"}\n', r"entry 3 .*: the time is not ISO 8601"),
    ('{"time": 5, "event": "x"}\n', r"entry 3 .*: 'time' and 'event' must be text"),
])
def test_a_bad_line_is_one_error_naming_it(tmp_path: Path, body: str, message: str) -> None:
    path = write_log(tmp_path / "run.jsonl", LINES[:2], tail=body + json.dumps(LINES[2]) + "\n")
    with pytest.raises(GreenEpochError, match=message):
        read_run_log(path)


def test_the_command_dispatches_run_logs(tmp_path: Path) -> None:
    path = write_log(tmp_path / "run.jsonl")
    assert is_run_log(path)
    out = tmp_path / "run.html"
    got = CliRunner().invoke(cli, ["report", str(path), "--out", str(out)])
    assert got.exit_code == 0, got.output
    assert "44.0" in got.output and out.read_text(encoding="utf-8").count("<img") == 1
    bad = write_log(tmp_path / "bad.jsonl", LINES[:3],
                    tail="not json\n" + json.dumps(LINES[3]) + "\n")
    got = CliRunner().invoke(cli, ["report", str(bad), "--out", str(tmp_path / "b.html")])
    assert got.exit_code == 2
    lines = got.output.strip().splitlines()
    assert len(lines) == 1 and re.match(r"greenepoch: error: .*bad\.jsonl:4: not a JSON line",
                                        lines[0]), got.output
    assert not (tmp_path / "b.html").exists()


@pytest.mark.browser
def test_run_report_renders_in_chromium(tmp_path: Path) -> None:
    from test_report_browser import chromium, render_checks

    browser = chromium()
    report = run_report(write_log(tmp_path / "run.jsonl"))
    page = tmp_path / "run.html"
    page.write_text(report.html(), encoding="utf-8")
    render_checks(browser, page, tmp_path, report.figures)


def test_only_run_logs_are_taken_for_run_logs(tmp_path: Path) -> None:
    from greenepoch.planner.whatif.results import KIND

    (tmp_path / "plan.json").write_text('{"schema_version": 1, "jobs": []}\n', encoding="utf-8")
    (tmp_path / "sweep.jsonl").write_text(json.dumps({"kind": KIND}) + "\n", encoding="utf-8")
    (tmp_path / "log.txt").write_text(json.dumps(LINES[0]) + "\n", encoding="utf-8")
    assert not is_run_log(tmp_path / "plan.json")
    assert not is_run_log(tmp_path / "sweep.jsonl")
    assert not is_run_log(tmp_path / "missing.jsonl")
    assert is_run_log(tmp_path / "log.txt")  # any name, by its first line


@pytest.mark.parametrize("body", ["", "\n\n", "not json\n", '{"time": "2023-06-01T00:00'])
def test_a_log_with_no_complete_line_says_so(tmp_path: Path, body: str) -> None:
    """A file whose only line is cut short (or unreadable, which a reader cannot tell
    from cut) is not 'a log with no lines': the error says the last line is left out."""
    path = tmp_path / "run.jsonl"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(GreenEpochError, match=r"run\.jsonl: the run log holds no complete "
                       r"line \(a last line cut short is left out\)"):
        read_run_log(path)
