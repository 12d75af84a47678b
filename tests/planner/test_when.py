"""planner/when.py's choice of start and zone, on hand-computed traces, and the
``greenepoch when`` command on recorded data (the live path: test_forecast_show.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.data.errors import DataError
from greenepoch.planner.cli.main import cli
from greenepoch.planner.when import (
    at_time,
    best_start,
    candidate_starts,
    pct_less,
    sbatch_begin,
)

from tests.support.source_fixtures import write_exports

T0 = pd.Timestamp("2026-01-01T00:00Z")
H = pd.Timedelta("1h")


def frame(step: str, **zones: list[float]) -> pd.DataFrame:
    n = len(next(iter(zones.values())))
    index = pd.date_range(T0, periods=n, freq=step, name="time")
    return pd.DataFrame(zones, index=index, dtype=float)


# A: 4 3 2 1 5 6 per hour; B: 3 throughout
TRACE = frame("1h", A=[4, 3, 2, 1, 5, 6], B=[3, 3, 3, 3, 3, 3])


def test_best_window_on_the_hour() -> None:
    # 2 h runs starting 00..03: A means 3.5, 2.5, 1.5, 3.0; B 3 everywhere
    choice = best_start(TRACE, 2 * H, 3 * H, T0)
    assert (choice.best.zone, choice.best.start, choice.best.end) == ("A", T0 + 2 * H, T0 + 4 * H)
    assert choice.best.p50 == pytest.approx(1.5)
    assert [r.p50 for r in choice.now] == pytest.approx([3.5, 3.0])
    assert choice.saving_pct("A") == pytest.approx(100 * 2 / 3.5)
    assert choice.saving_pct("B") == pytest.approx(50.0)
    assert [(r.zone, r.start) for r in choice.by_zone] == [("A", T0 + 2 * H), ("B", T0)]
    assert choice.best.p10 is None and choice.best.p90 is None


def test_now_between_boundaries_counts_the_part_slot() -> None:
    # now 00:30: starts 00:30, 01, 02, 03; from 00:30 A runs 1/2 h at 4, 1 h at 3, 1/2 h at 2
    now = T0 + H / 2
    starts = candidate_starts(now, 3 * H, T0, H)
    assert list(starts) == [now, T0 + H, T0 + 2 * H, T0 + 3 * H]
    choice = best_start(TRACE, 2 * H, 3 * H, now)
    assert choice.now_in("A").p50 == pytest.approx((0.5 * 4 + 3 + 0.5 * 2) / 2)
    assert choice.now_in("A").end == now + 2 * H
    assert choice.best.start == T0 + 2 * H


def test_duration_off_the_slot_grid() -> None:
    # 90 min from 02:00 in A: 1 h at 2, 1/2 h at 1 -> 2.5 / 1.5; from 03:00: 1, 5 -> 3.5/1.5
    choice = best_start(TRACE[["A"]], pd.Timedelta("90min"), 2 * H, T0 + 2 * H)
    assert choice.now_in("A").p50 == pytest.approx(2.5 / 1.5)
    assert choice.best.start == T0 + 2 * H


def test_ties_go_to_the_earliest_start_then_the_first_zone() -> None:
    flat = frame("1h", X=[5, 5, 5, 5], Y=[5, 5, 5, 5])
    choice = best_start(flat, H, 2 * H, T0)
    assert (choice.best.zone, choice.best.start) == ("X", T0)
    dips = frame("1h", X=[2, 1, 1, 2], Y=[3, 1, 3, 3])
    choice = best_start(dips, H, 3 * H, T0)
    assert (choice.best.zone, choice.best.start) == ("X", T0 + H)  # X and Y tie at 01:00


@pytest.mark.parametrize(("step", "values", "best"), [
    ("15min", [9, 9, 9, 1, 1, 1, 1, 9, 9, 9, 9, 9], pd.Timedelta("45min")),
    ("30min", [9, 1, 1, 9, 9, 9], pd.Timedelta("30min")),
    ("1h", [9, 1, 9, 9], pd.Timedelta("1h")),
])
def test_starts_on_boundaries_of_every_slot_length(step: str, values: list[float],
                                                    best: pd.Timedelta) -> None:
    choice = best_start(frame(step, A=values), H, 2 * H, T0)
    assert choice.best.start == T0 + best
    assert choice.best.p50 == pytest.approx(1.0)
    assert len(choice.starts) == 2 * H // pd.Timedelta(step) + 1


def test_quantiles_are_the_means_of_their_paths() -> None:
    p10 = TRACE - 1
    p90 = TRACE * 2
    choice = best_start(TRACE, 2 * H, 3 * H, T0, p10=p10, p90=p90)
    assert (choice.best.p10, choice.best.p90) == pytest.approx((0.5, 3.0))


def test_window_longer_than_the_data_is_refused() -> None:
    # the last start (03:00 + 4 h) would run to 07:00; the data ends at 06:00
    with pytest.raises(DataError, match=r"cover 2026-01-01T00:00:00\+00:00 .. "
                       r"2026-01-01T06:00:00\+00:00.*needs .* 2026-01-01T07:00:00"):
        best_start(TRACE, 4 * H, 3 * H, T0)
    with pytest.raises(DataError, match="cover"):
        best_start(TRACE, H, H, T0 - H)  # now before the data


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(DataError, match="duration"):
        best_start(TRACE, pd.Timedelta(0), H, T0)
    with pytest.raises(DataError, match="same times"):
        best_start(TRACE, H, H, T0, p10=TRACE.iloc[:-1])
    gap = TRACE.copy()
    gap.iloc[1, 0] = float("nan")
    with pytest.raises(DataError, match="gaps"):
        best_start(gap, H, H, T0)


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_sbatch_and_at_are_in_local_time(berlin: None) -> None:
    summer = pd.Timestamp("2026-07-01T12:00Z")  # CEST, UTC+2
    winter = pd.Timestamp("2026-01-15T23:30:45Z")  # CET, UTC+1: the next day locally
    assert sbatch_begin(summer) == "--begin=2026-07-01T14:00:00"
    assert at_time(summer) == "202607011400.00"
    assert sbatch_begin(winter) == "--begin=2026-01-16T00:30:45"
    assert at_time(winter) == "202601160030.45"


# the CLI, on recorded data


@pytest.fixture
def exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    return write_exports(tmp_path / "data")


def test_cli_json_on_measured_data(exports: Path) -> None:
    # GB = 190 + 60 sin(2 pi h / 24) is lowest at 18:00; the 2 h runs from 17:00 and 18:00
    # tie by symmetry: the earlier wins, mean (132.04 + 130.00) / 2
    result = CliRunner().invoke(cli, [
        "when", "--duration", "2h", "--within", "24h", "--zones", "DE,GB",
        "--data", str(exports), "--from", "2023-03-02T00:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert (got["zone"], got["start"], got["end"]) == (
        "GB", "2023-03-02T17:00:00+00:00", "2023-03-02T19:00:00+00:00")
    assert got["intensity"]["p50"] == pytest.approx((132.04 + 130.00) / 2)
    assert got["intensity"]["p10"] is None  # measured values: no forecast band
    now_gb = (190.0 + 190.0 + 60 * 0.258819) / 2  # 00:00 and 01:00 (rounded to 0.01)
    assert got["now"][1]["p50"] == pytest.approx(now_gb, abs=0.01)
    assert got["saving_pct_vs_now"]["GB"] == pytest.approx(
        100 * (now_gb - got["intensity"]["p50"]) / now_gb, abs=0.01)
    assert got["live"] is False and "hindsight" in got["basis"]


def test_cli_formats_print_only_the_time(exports: Path, berlin: None) -> None:
    args = ["when", "--duration", "2h", "--zones", "GB", "--data", str(exports),
            "--from", "2023-03-02T00:00:00Z"]
    sbatch = CliRunner().invoke(cli, [*args, "--format", "sbatch"])
    assert sbatch.exit_code == 0, sbatch.output
    assert sbatch.stdout == "--begin=2023-03-02T18:00:00\n"  # 17:00 UTC in CET
    assert "Best start" in sbatch.stderr
    at = CliRunner().invoke(cli, [*args, "--format", "at"])
    assert at.stdout == "202303021800.00\n"


def test_cli_text_says_what_it_is_on(exports: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, [
        "when", "--duration", "2h", "--zones", "DE,GB", "--data", str(exports),
        "--from", "2023-03-02T00:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "Best start: 2023-03-02 17:00 UTC in GB" in result.output
    assert "measured in" in result.output and "hindsight" in result.output
    synthetic = CliRunner().invoke(cli, [
        "when", "--duration", "2h", "--zones", "DE", "--from", "2023-03-02T00:00:00Z"])
    assert synthetic.exit_code == 0, synthetic.output
    assert "embedded synthetic default" in synthetic.output


def test_cli_data_not_covering_the_window_is_one_line(exports: Path) -> None:
    result = CliRunner().invoke(cli, [
        "when", "--duration", "6h", "--within", "24h", "--zones", "DE,GB",
        "--data", str(exports)])  # from now: years after the data
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("greenepoch: error: the data in")
    assert "--live" in result.output and "--from" in result.output


@pytest.mark.parametrize("args", [
    ["--format", "at", "--json"],
    ["--live", "--from", "2023-03-02T00:00:00Z"],
    ["--live", "--within", "14D"],
    ["--duration", "0h"],
])
def test_cli_bad_options_are_one_line(exports: Path, args: list[str]) -> None:
    base = ["when", "--zones", "GB", "--data", str(exports)]
    if "--duration" not in args:
        base += ["--duration", "2h"]
    result = CliRunner().invoke(cli, [*base, *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("greenepoch: error:")
    assert result.output.count("\n") == 1


def test_savings_are_in_percent_of_the_base_and_zero_on_a_zero_base() -> None:
    assert pct_less(200.0, 150.0) == pytest.approx(25.0)
    assert pct_less(200.0, 250.0) == pytest.approx(-25.0)  # worse: a negative saving
    assert pct_less(0.0, 10.0) == 0.0
