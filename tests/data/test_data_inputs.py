"""Inputs the readers used to get wrong silently (issue 13 items 1-4, issue 21 a-c).

Units in the header, cut-off rows, a file holding another zone than its name
says, non-regular files named ``*.csv``, one reader for every command, where each
zone has data, and progress for ``data calibrate``.  Small files are written into
``tmp_path`` with the real export header; tests marked ``realdata`` rework a real
export (read from ``$GREENEPOCH_DATA``, never copied into the repository).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.readers import ALLOW_IMPLAUSIBLE_ENV, read_any, read_electricitymaps
from greenepoch.data.intensity.source import source_for
from greenepoch.planner.cli.main import cli

DIRECT = "Carbon Intensity gCO₂eq/kWh (direct)"
LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"


def header(direct: str = DIRECT, lca: str = LCA) -> str:
    return (f"Datetime (UTC),Country,Zone Name,Zone Id,{direct},{lca},Low Carbon Percentage,"
            "Renewable Percentage,Data Source,Data Estimated,Data Estimation Method")


def export_rows(zone: str, start: str, values: list[float] | list[str]) -> list[str]:
    times = pd.date_range(start, periods=len(values), freq="1h")
    return [f"{t:%Y-%m-%d %H:%M:%S},Country,{zone} grid,{zone},{v},{v},50.0,40.0,test,false,"
            for t, v in zip(times, values, strict=True)]


def write_export(path: Path, zone: str, values: list[float] | list[str],
                 start: str = "2023-01-01", direct: str = DIRECT, lca: str = LCA) -> Path:
    path.write_text("\n".join([header(direct, lca), *export_rows(zone, start, values)]) + "\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def no_allow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_IMPLAUSIBLE_ENV, raising=False)


def one_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error: "), result.stderr
    return lines[0]


# --- item 1: units --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "written", "grams"),
    [
        ("gCO₂eq/kWh", [300.0, 310.5], [300.0, 310.5]),
        ("kgCO₂eq/kWh", [0.3, 0.3105], [300.0, 310.5]),
        ("kgCO2eq/MWh", [300.0, 310.5], [300.0, 310.5]),
        ("tCO2/MWh", [0.3, 0.3105], [300.0, 310.5]),
        ("lbsCO₂eq/MWh", [661.387, 684.536], [300.0, 310.5]),
    ],
)
def test_signal_unit_is_read_from_the_header_and_converted(
    tmp_path: Path, unit: str, written: list[float], grams: list[float]
) -> None:
    file = write_export(tmp_path / "GB_2023_hourly.csv", "GB", written,
                        direct=f"Carbon Intensity {unit} (direct)")
    data = read_electricitymaps(file)
    assert data.values["GB"].tolist() == pytest.approx(grams, abs=0.001)


def test_lca_column_unit_is_converted_too(tmp_path: Path) -> None:
    file = write_export(tmp_path / "GB_2023_hourly.csv", "GB", [0.35, 0.36],
                        direct="Carbon Intensity kgCO₂eq/kWh (direct)",
                        lca="Carbon Intensity kgCO₂eq/kWh (LCA)")
    assert read_electricitymaps(file, signal="lca").values["GB"].tolist() == pytest.approx(
        [350.0, 360.0])


@pytest.mark.parametrize(("unit", "named"), [("mgCO₂eq/Wh", "unit 'mgCO₂eq/Wh'"),
                                             ("", "no unit"), ("%", "unit '%'")])
def test_other_units_are_refused_by_name(tmp_path: Path, unit: str, named: str) -> None:
    column = f"Carbon Intensity {unit} (direct)".replace("  ", " ")
    file = write_export(tmp_path / "GB_2023_hourly.csv", "GB", [300.0, 310.0], direct=column)
    with pytest.raises(DataError) as err:
        read_electricitymaps(file)
    msg = str(err.value)
    assert f"GB_2023_hourly.csv: row 1: column {column!r} has {named}" in msg
    assert "kgCO₂eq/kWh" in msg and "Write one of those units in the header" in msg


def test_kg_values_under_a_g_header_are_refused_with_the_reason(tmp_path: Path) -> None:
    # a kgCO2eq/kWh series labelled g/kWh: read as is it made every plan 1000x too low
    file = write_export(tmp_path / "GB_2023_hourly.csv", "GB", [0.21, 0.25, 0.19, 0.3])
    with pytest.raises(DataError) as err:
        read_electricitymaps(file)
    msg = str(err.value)
    assert "GB_2023_hourly.csv: zone GB: every value in" in msg
    assert "is under 5 gCO2eq/kWh (max 0.3)" in msg
    assert "not hydro/nuclear-only" in msg and "looks like kgCO2eq/kWh" in msg
    assert "pass `allow_implausible`" in msg and "GREENEPOCH_ALLOW_IMPLAUSIBLE=1" in msg
    allowed = read_electricitymaps(file, allow_implausible=True)
    assert allowed.values["GB"].tolist() == [0.21, 0.25, 0.19, 0.3]


def test_grams_under_a_kg_header_are_refused_as_absurd_naming_the_conversion(
    tmp_path: Path
) -> None:
    file = write_export(tmp_path / "GB_2023_hourly.csv", "GB", [300.0, 310.0],
                        direct="Carbon Intensity kgCO₂eq/kWh (direct)")
    with pytest.raises(DataError) as err:
        read_electricitymaps(file)
    assert ("GB_2023_hourly.csv: row 2: intensity 300000 gCO2eq/kWh (300.0 in the column's "
            "unit x 1000) is above 2,000") in str(err.value)


def test_the_environment_variable_allows_implausible_series(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = write_export(tmp_path / "GB_2023_hourly.csv", "GB", [0.21, 0.25])
    monkeypatch.setenv(ALLOW_IMPLAUSIBLE_ENV, "1")
    assert read_electricitymaps(file).values["GB"].tolist() == [0.21, 0.25]
    monkeypatch.setenv(ALLOW_IMPLAUSIBLE_ENV, "maybe")
    with pytest.raises(DataError, match=r"\$GREENEPOCH_ALLOW_IMPLAUSIBLE is 'maybe'; "
                                        "expected 1 or 0"):
        read_electricitymaps(file)


def test_a_hydro_grid_may_stay_under_5_g_but_no_grid_is_all_zeros(tmp_path: Path) -> None:
    low = write_export(tmp_path / "NO_2023_hourly.csv", "NO", [1.2, 0.9, 3.5])
    assert read_electricitymaps(low).values["NO"].tolist() == [1.2, 0.9, 3.5]
    zeros = write_export(tmp_path / "NO_2022_hourly.csv", "NO", [0, 0, 0], start="2022-01-01")
    with pytest.raises(DataError) as err:
        read_electricitymaps(zeros)
    assert "zone NO: every value in" in str(err.value)
    assert "is 0, which no grid sustains" in str(err.value)
    assert read_electricitymaps(zeros, allow_implausible=True).values["NO"].max() == 0


def test_data_check_refuses_then_accepts_with_allow_implausible(
    runner: CliRunner, tmp_path: Path
) -> None:
    file = write_export(tmp_path / "DE_2023_hourly.csv", "DE", [0.38, 0.41, 0.35])
    line = one_error(runner.invoke(cli, ["data", "check", str(file)]))
    assert "zone DE: every value in" in line and "--allow-implausible" in line
    ok = runner.invoke(cli, ["data", "check", str(file), "--allow-implausible", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)[0]["max_g_per_kwh"] == 0.4
    assert os.environ.get(ALLOW_IMPLAUSIBLE_ENV) is None  # the flag lasts one command


def test_kg_export_and_flag_reach_plan(runner: CliRunner, tmp_path: Path) -> None:
    """``plan --data`` reads the unit too, and takes ``--allow-implausible``."""
    hours = 48
    rng = np.random.default_rng(0)
    de = 300 + 50 * np.sin(np.arange(hours) / 24 * 2 * np.pi) + rng.normal(0, 5, hours)
    data = tmp_path / "data"
    data.mkdir()
    write_export(data / "DE_2023_hourly.csv", "DE", [f"{v / 1000:.6f}" for v in de],
                 start="2023-06-01", direct="Carbon Intensity kgCO₂eq/kWh (direct)")
    request = tmp_path / "r.toml"
    request.write_text(
        'start = "2023-06-01T00:00:00Z"\n[[jobs]]\nname = "j"\ngpus = 8\ngpu_hours = 32\n'
        'gpu_power_kw = 0.7\nrelease = "2023-06-01T00:00:00Z"\n'
        'deadline = "2023-06-02T00:00:00Z"\nzones = ["DE"]\n'
        '[[zones]]\nid = "DE"\ncapacity_gpus = 8\n[policy]\nobjective = "carbon"\n',
        encoding="utf-8")
    out = tmp_path / "p.json"
    result = runner.invoke(cli, ["plan", str(request), "--data", str(data), "--oracle",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    # g/kWh the plan ran at: inside the day's range in grams (kg read as g gave ~0.3)
    assert min(de[:24]) <= _g_per_kwh(out) <= max(de[:24])
    # the same values under a g/kWh header are refused, and accepted when allowed
    write_export(data / "DE_2023_hourly.csv", "DE", [f"{v / 1000:.6f}" for v in de],
                 start="2023-06-01")
    line = one_error(runner.invoke(cli, ["plan", str(request), "--data", str(data),
                                         "--oracle", "--out", str(out)]))
    assert "looks like kgCO2eq/kWh under a g/kWh header" in line
    allowed = runner.invoke(cli, ["plan", str(request), "--data", str(data), "--oracle",
                                  "--allow-implausible", "--out", str(out)])
    assert allowed.exit_code == 0, allowed.output
    assert min(de[:24]) / 1000 <= _g_per_kwh(out) <= max(de[:24]) / 1000
    assert os.environ.get(ALLOW_IMPLAUSIBLE_ENV) is None


def _g_per_kwh(plan_file: Path) -> float:
    """Emissions per energy of the plan's only job, in gCO2eq/kWh."""
    summary = json.loads(plan_file.read_text(encoding="utf-8"))["jobs"][0]["summary"]
    return 1000 * summary["emissions_kg"] / summary["energy_kwh"]


@pytest.mark.realdata
def test_real_export_rewritten_in_kg_reads_the_same(real_data: Path, tmp_path: Path) -> None:
    source = real_data / "electricitymaps" / "DE_2023_hourly.csv"
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    frame[DIRECT] = (frame[DIRECT].astype(float) / 1000).map(repr)
    frame = frame.rename(columns={DIRECT: "Carbon Intensity kgCO₂eq/kWh (direct)"})
    kg = tmp_path / "DE_2023_hourly.csv"
    frame.to_csv(kg, index=False)
    grams = read_electricitymaps(source).values["DE"]
    converted = read_electricitymaps(kg).values["DE"]
    assert converted.mean() == pytest.approx(307.7, abs=0.05)
    np.testing.assert_allclose(converted.to_numpy(), grams.to_numpy(), rtol=1e-12)


# --- item 2: truncated rows -----------------------------------------------------------


def test_last_export_row_cut_inside_the_value_is_refused(tmp_path: Path) -> None:
    file = write_export(tmp_path / "DE_2023_hourly.csv", "DE", [350.2, 349.08, 351.0])
    text = file.read_text(encoding="utf-8")
    file.write_text(text[: text.rindex(",DE,351.0") + 6], encoding="utf-8")  # '...,DE,35'
    with pytest.raises(DataError) as err:
        read_electricitymaps(file)
    msg = str(err.value)
    assert "DE_2023_hourly.csv: row 4: 5 field(s), fewer than the header's 11" in msg
    assert "the row looks cut off" in msg


def test_a_short_row_inside_the_file_is_named(tmp_path: Path) -> None:
    file = tmp_path / "DE_2023_hourly.csv"
    rows = export_rows("DE", "2023-01-01", [350.0, 351.0, 352.0])
    rows[1] = rows[1][: rows[1].index(",351.0")]
    file.write_text("\n".join([header(), *rows]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"DE_2023_hourly\.csv: row 3: 4 field\(s\), fewer"):
        read_electricitymaps(file)


def test_a_row_with_an_extra_field_is_named(tmp_path: Path) -> None:
    file = tmp_path / "DE_2023_hourly.csv"
    rows = export_rows("DE", "2023-01-01", [350.0, 351.0, 352.0])
    rows[2] += ",x"
    file.write_text("\n".join([header(), *rows]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row 4: 12 field\(s\), more than the header's 11"):
        read_electricitymaps(file)


def test_long_format_value_ending_the_file_without_newline_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "long.csv"
    file.write_text("time,zone,value\n2023-01-01T00:00Z,DE,350.1\n2023-01-01T01:00Z,DE,349.0\n"
                    "2023-01-01T02:00Z,DE,34", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_any(file)
    msg = str(err.value)
    assert "long.csv: row 4: the file ends inside the value '34' with no newline" in msg
    assert "looks cut off" in msg
    file.write_text(file.read_text(encoding="utf-8") + "9.08\n", encoding="utf-8")
    assert read_any(file).values["DE"].tolist() == [350.1, 349.0, 349.08]


def test_crlf_export_with_final_newline_reads(tmp_path: Path) -> None:
    file = tmp_path / "DE_2023_hourly.csv"
    rows = export_rows("DE", "2023-01-01", [350.0, 351.0])
    file.write_bytes(("\r\n".join([header(), *rows]) + "\r\n").encode("utf-8"))
    assert read_electricitymaps(file).values["DE"].tolist() == [350.0, 351.0]


@pytest.mark.realdata
def test_real_export_cut_inside_its_last_value(real_data: Path, tmp_path: Path) -> None:
    raw = (real_data / "electricitymaps" / "DE_2023_hourly.csv").read_bytes()
    last = raw.rstrip(b"\r\n").rsplit(b"\n", 1)[1]
    value = last.split(b",")[4]
    cut = raw[: raw.rindex(last) + last.index(b"," + value) + 3]  # ',3' of the last value
    file = tmp_path / "DE_2023_hourly.csv"
    file.write_bytes(cut)
    with pytest.raises(DataError, match=r"DE_2023_hourly\.csv: row 8761: 5 field\(s\)"):
        read_electricitymaps(file)


# --- item 3: a file holding another zone than its name --------------------------------


def test_file_named_for_one_zone_holding_another(runner: CliRunner, tmp_path: Path) -> None:
    write_export(tmp_path / "GB_2023_hourly.csv", "GB", [200.0, 210.0])
    write_export(tmp_path / "DE_2023_hourly.csv", "GB", [200.0, 210.0], start="2023-01-02")
    expected = ("DE_2023_hourly.csv: row 2: the file is named for zone DE but holds zone GB "
                "('Zone Id' column). Rename it to GB_2023_hourly.csv, or replace it with "
                "DE's export")
    line = one_error(runner.invoke(cli, ["data", "check", str(tmp_path)]))
    assert expected in line
    with pytest.raises(DataError) as err:  # what plan --zones DE reads
        read_electricitymaps(tmp_path, zones=["DE"])
    assert expected in str(err.value)


def test_export_mixing_zones_names_the_file_and_the_zones(tmp_path: Path) -> None:
    file = tmp_path / "DE_2023_hourly.csv"
    rows = export_rows("DE", "2023-01-01", [300.0, 301.0]) + export_rows(
        "FR", "2023-01-01", [50.0, 51.0])
    file.write_text("\n".join([header(), *rows]) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_electricitymaps(file)
    msg = str(err.value)
    assert "DE_2023_hourly.csv: mixes zones DE (first at row 2), FR (first at row 4)" in msg
    assert "Split it into one file per zone" in msg


# --- item 4: non-regular files named *.csv --------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_in_a_data_folder_is_named_and_skipped(tmp_path: Path) -> None:
    write_export(tmp_path / "DE_2023_hourly.csv", "DE", [300.0, 310.0])
    os.mkfifo(tmp_path / "GB_2023_hourly.csv")
    (tmp_path / "old.csv").mkdir()
    # a subprocess with a time limit: the old reader blocked forever opening the FIFO
    done = subprocess.run([sys.executable, "-m", "greenepoch.planner.cli.main", "data", "check",
                           str(tmp_path), "--json"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert [row["zone"] for row in json.loads(done.stdout)] == ["DE"]
    assert f"skipped {tmp_path / 'GB_2023_hourly.csv'}: a FIFO (named pipe), not a regular " \
           "file" in done.stderr
    assert f"skipped {tmp_path / 'old.csv'}: a folder, not a regular file" in done.stderr
    data = read_electricitymaps(tmp_path)
    assert len(data.skipped) == 2 and data.files == (str(tmp_path / "DE_2023_hourly.csv"),)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_in_the_data_folder_is_named_by_plan(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_export(data / "DE_2023_hourly.csv", "DE",
                 [300.0 + (h % 24) for h in range(48)], start="2023-06-01")
    os.mkfifo(data / "DE_2022_hourly.csv")
    request = tmp_path / "r.toml"
    request.write_text(
        'start = "2023-06-01T00:00:00Z"\n[[jobs]]\nname = "j"\ngpus = 8\ngpu_hours = 16\n'
        'gpu_power_kw = 0.7\nrelease = "2023-06-01T00:00:00Z"\n'
        'deadline = "2023-06-02T00:00:00Z"\nzones = ["DE"]\n'
        '[[zones]]\nid = "DE"\ncapacity_gpus = 8\n[policy]\nobjective = "carbon"\n',
        encoding="utf-8")
    done = subprocess.run([sys.executable, "-m",
        "greenepoch.planner.cli.main", "plan", str(request),
                           "--data", str(data), "--oracle", "--out", str(tmp_path / "p.json")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert f"greenepoch: skipped {data / 'DE_2022_hourly.csv'}: a FIFO (named pipe), not a " \
           "regular file" in done.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_given_as_the_path_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "DE_2023_hourly.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=re.escape(
            f"{fifo}: a FIFO (named pipe), not a regular file; GreenEpoch reads regular CSV "
            "files only")):
        read_electricitymaps(fifo)


# --- issue 21 (a): where each zone has data -------------------------------------------


def test_regions_says_where_each_zone_has_data(runner: CliRunner, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    rows = {r["id"]: r for r in json.loads(runner.invoke(cli, ["regions", "--json"]).output)}
    assert rows["DE"]["data"] == ["embedded"]
    assert rows["FR"]["data"] == []  # listed, but plan without --data refuses it
    write_export(tmp_path / "FR_2023_hourly.csv", "FR", [50.0, 55.0])
    long = tmp_path / "mixed.csv"
    long.write_text("time,zone,value\n2023-01-01T00:00Z,PL,700\n2023-01-01T01:00Z,PL,710\n",
                    encoding="utf-8")
    result = runner.invoke(cli, ["regions", "--json", "--data", str(tmp_path)])
    rows = {r["id"]: r for r in json.loads(result.output)}
    assert rows["FR"]["data"] == ["real"]
    assert rows["PL"]["data"] == ["real"]
    assert rows["DE"]["data"] == ["embedded"]
    table = runner.invoke(cli, ["regions", "--data", str(tmp_path)]).output
    assert re.search(r"^FR .* real$", table, re.MULTILINE), table
    assert f"with real data in {tmp_path}" in table


# --- issue 21 (b): every command reads what data check accepts ------------------------


def test_long_format_file_works_as_plan_data(runner: CliRunner, tmp_path: Path) -> None:
    times = pd.date_range("2023-06-01", periods=48, freq="1h", tz="UTC")
    lines = ["time,zone,value"] + [
        f"{t.isoformat()},{z},{v:.1f}" for t in times for z, v in
        (("DE", 300 + t.hour), ("GB", 200 + t.hour))
    ]
    long = tmp_path / "long.csv"
    long.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert runner.invoke(cli, ["data", "check", str(long)]).exit_code == 0
    got = source_for(long).load(["GB"], times[0], times[24])
    assert got.values["GB"].tolist() == [200.0 + h for h in range(24)]
    out = tmp_path / "p.json"
    request = tmp_path / "r.toml"
    request.write_text(
        'start = "2023-06-01T00:00:00Z"\n[[jobs]]\nname = "j"\ngpus = 8\ngpu_hours = 16\n'
        'gpu_power_kw = 0.7\nrelease = "2023-06-01T00:00:00Z"\n'
        'deadline = "2023-06-02T00:00:00Z"\nzones = ["DE", "GB"]\n'
        '[[zones]]\nid = "DE"\ncapacity_gpus = 8\n[[zones]]\nid = "GB"\ncapacity_gpus = 8\n'
        '[policy]\nobjective = "carbon"\n', encoding="utf-8")
    result = runner.invoke(cli, ["plan", str(request), "--data", str(long), "--oracle",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()


# --- issue 21 (c): calibrate shows progress -------------------------------------------


def test_calibrate_shows_progress_on_stderr(runner: CliRunner, tmp_path: Path) -> None:
    hours = pd.date_range("2023-01-01", "2023-12-31 23:00", freq="1h")
    rng = np.random.default_rng(1)
    values = 300 + 80 * np.sin(2 * np.pi * hours.hour / 24) + rng.normal(0, 10, len(hours))
    data = tmp_path / "data"
    data.mkdir()
    write_export(data / "DE_2023_hourly.csv", "DE", [round(v, 2) for v in values])
    out = tmp_path / "out"
    result = runner.invoke(cli, ["data", "calibrate", "--data", str(data), "--signal", "direct",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    # the bars stay on stderr when done, so their last state is there whatever the timing
    assert re.search(r"calibrate direct: read: 100%\S* *\| 1/1 ", result.stderr), result.stderr
    assert re.search(r"calibrate direct: fit: 100%\S* *\| 1/1 ", result.stderr), result.stderr
    assert "wrote" in result.stdout and "calibrate direct" not in result.stdout
    assert json.loads((out / "climatology_direct.json").read_text(encoding="utf-8"))
    quiet = runner.invoke(cli, ["data", "calibrate", "--data", str(data), "--signal", "direct",
                                "--out", str(out), "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_long_format_row_with_a_missing_or_extra_field_is_named(tmp_path: Path) -> None:
    file = tmp_path / "long.csv"
    file.write_text("time,zone,value\n2023-01-01T00:00Z,DE,350.1\n2023-01-01T01:00Z,DE\n"
                    "2023-01-01T02:00Z,DE,349.0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"long\.csv: row 3: 2 field\(s\), fewer than the "
                                        r"header's 3; the row looks cut off"):
        read_any(file)
    file.write_text("time,zone,value\n2023-01-01T00:00Z,DE,350.1\n2023-01-01T01:00Z,DE,3,49\n"
                    "2023-01-01T02:00Z,DE,349.0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"long\.csv: row 3: 4 field\(s\), more than the "
                                        r"header's 3; a value holds an unquoted comma"):
        read_any(file)


def test_a_folder_may_mix_exports_and_long_format_files(tmp_path: Path) -> None:
    write_export(tmp_path / "DE_2023_hourly.csv", "DE", [300.0, 310.0, 320.0])
    (tmp_path / "more.csv").write_text(
        "time,zone,value\n2023-01-01T00:00:00Z,GB,200\n2023-01-01T01:00:00Z,GB,210\n"
        "2023-01-01T02:00:00Z,GB,220\n", encoding="utf-8")
    data = read_electricitymaps(tmp_path)
    assert data.zones == ["DE", "GB"]
    assert data.values["GB"].tolist() == [200.0, 210.0, 220.0]
    assert read_electricitymaps(tmp_path, zones=["GB"]).zones == ["GB"]
