"""Tests for planner.intensity.readers and planner.intensity.validate.

Every malformed-input case is a small hand-made file in ``fixtures/malformed/``
(realistic Electricity Maps header); each error message must name the file,
the row (its line in the file, header = line 1) and the fix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.data.intensity.readers import read_any, read_electricitymaps, read_long_csv

MALFORMED = Path(__file__).parents[1] / "fixtures" / "malformed"

EM_HEADER = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
    "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method"
)


def write_em(
    path: Path, zone: str, start: str, direct: list[float], estimated: list[bool] | None = None
) -> Path:
    """Write a small hourly Electricity Maps export; LCA = direct + 50."""
    times = pd.date_range(start, periods=len(direct), freq="1h")
    flags = estimated or [False] * len(direct)
    lines = [EM_HEADER] + [
        f"{t:%Y-%m-%d %H:%M:%S},Country,{zone} grid,{zone},{v},{v + 50},50.0,40.0,"
        f"test,{str(e).lower()},{'TIME_SLICER_AVERAGE' if e else ''}"
        for t, v, e in zip(times, direct, flags, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_message(err: pytest.ExceptionInfo, file: str, row: int | None, *fix: str) -> None:
    """The message names the file, the 1-based line ``row N`` and the fix words."""
    msg = str(err.value)
    assert file in msg, msg
    if row is not None:
        assert re.search(rf"{re.escape(file)}: row {row}\b", msg), msg
    for words in fix:
        assert words in msg, msg


# --- malformed inputs -----------------------------------------------------------------

# (fixture, row, fix words): each one is read with read_electricitymaps (defaults).
MALFORMED_EM = [
    ("missing_zone_id.csv", 1, ["missing column(s) 'Zone Id'", "original header"]),
    ("missing_direct.csv", 1,
     ["missing column(s) 'Carbon Intensity gCO₂eq/kWh (direct)'", "original header"]),
    ("bad_timestamp.csv", 4, ["cannot parse timestamp '01/01/2023 02:00'", "Use ISO 8601"]),
    ("duplicate_time.csv", 4,
     ["duplicate timestamp 2023-01-01T01:00:00+00:00", "row 3)", "Remove one of the two rows"]),
    ("non_monotonic.csv", 5,
     ["2023-01-01T02:00:00+00:00 comes before the previous row's 2023-01-01T03:00:00+00:00",
      "Sort the file by time"]),
    ("negative_value.csv", 4, ["intensity -12.5 gCO2eq/kWh is negative", "fix the value"]),
    ("non_numeric_value.csv", 3, ["intensity 'n/a' is not a number", "Fix or remove the row"]),
    ("absurd_value.csv", 5,
     ["intensity 2500 gCO2eq/kWh is above 2,000", "Check the unit (g/kWh expected)"]),
    ("bad_estimated.csv", 4, ["'Data Estimated' is 'yes'", "expected true or false"]),
    ("off_grid.csv", 5,
     ["2023-01-01T02:30:00+00:00 is off the 0 days 01:00:00 grid", "Align it to the slot start"]),
    ("mixed_resolution.csv", 6,
     ["2023-01-01T03:15:00+00:00 is off the 0 days 01:00:00 grid",
      "Align it to the slot start"]),
    ("single_row.csv", 2, ["zone DE has 1 row(s)", "add rows"]),
    ("gap_5h.csv", 3,
     ["gap of 5 h from 2023-01-01T02:00:00+00:00 to 2023-01-01T06:00:00+00:00",
      "at most 3 h are filled", "allow gaps explicitly (`allow_gaps`)"]),
    ("all_empty_cells.csv", 2, ["has no intensity values", "Fill in the intensity column"]),
    ("header_only.csv", 2, ["no data rows below the header", "Export it again"]),
    ("empty.csv", None, ["the file is empty", "Export it again"]),
]


@pytest.mark.parametrize(
    ("name", "row", "fix"), MALFORMED_EM, ids=[case[0] for case in MALFORMED_EM]
)
def test_malformed_export_is_refused_with_file_row_and_fix(
    name: str, row: int | None, fix: list[str]
) -> None:
    with pytest.raises(DataError) as err:
        read_electricitymaps(MALFORMED / name)
    assert_message(err, name, row, *fix)


def test_missing_direct_column_still_reads_lca() -> None:
    data = read_electricitymaps(MALFORMED / "missing_direct.csv", signal="lca")
    assert data.signal == "lca"
    assert data.values["DE"].tolist() == [457.3, 450.8, 443.1, 435.6]


def test_naive_timestamp_in_long_format_is_refused() -> None:
    with pytest.raises(DataError) as err:
        read_long_csv(MALFORMED / "long_naive_time.csv")
    assert_message(err, "long_naive_time.csv", 3, "'2023-01-01 01:00:00' has no UTC offset",
                   "Write times with an offset")


def test_bad_estimated_flag_in_long_format_names_its_own_line() -> None:
    # zones are interleaved: the bad cell is line 5 of the file, the 2nd row of zone FR
    with pytest.raises(DataError) as err:
        read_long_csv(MALFORMED / "long_bad_estimated.csv")
    assert_message(err, "long_bad_estimated.csv", 5, "'estimated' is 'maybe'",
                   "expected true or false")


def test_duplicate_across_files_names_both_files() -> None:
    folder = MALFORMED / "overlap"
    with pytest.raises(DataError) as err:
        read_electricitymaps(folder)
    msg = str(err.value)
    assert re.search(r"DE_2023_hourly\.csv: row 2: duplicate timestamp 2022-12-31T23:00:00", msg)
    assert re.search(r"first seen at \S*DE_2022_hourly\.csv: row 5\)", msg), msg
    assert "Remove one of the two rows" in msg


def test_bad_estimated_flag_in_second_file_names_that_file(tmp_path: Path) -> None:
    write_em(tmp_path / "DE_2022_hourly.csv", "DE", "2022-12-31 22:00", [300.0, 310.0])
    bad = write_em(tmp_path / "DE_2023_hourly.csv", "DE", "2023-01-01 00:00", [320.0, 330.0])
    bad.write_text(bad.read_text(encoding="utf-8").replace(",false,", ",maybe,", 1),
                   encoding="utf-8")
    # file names sort as 2022 < 2023; the 2023 file's line 2 holds the bad flag
    with pytest.raises(DataError) as err:
        read_electricitymaps(tmp_path)
    assert_message(err, "DE_2023_hourly.csv", 2, "'Data Estimated' is 'maybe'")


def test_folder_without_csv_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no exports here\n")
    with pytest.raises(DataError) as err:
        read_electricitymaps(tmp_path)
    assert_message(err, str(tmp_path), None, "no .csv files found",
                   "Point at a folder of Electricity Maps exports")


def test_missing_path() -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        read_electricitymaps(MALFORMED / "does_not_exist")


def test_unknown_signal() -> None:
    with pytest.raises(DataError, match="use one of direct, lca, marginal"):
        read_electricitymaps(MALFORMED / "gap_2h.csv", signal="scope3")


def test_an_export_holds_no_marginal_signal() -> None:
    with pytest.raises(DataError, match=r"not 'marginal'.*long-format CSV") as info:
        read_electricitymaps(MALFORMED / "gap_2h.csv", signal="marginal")
    assert "gap_2h.csv" in str(info.value)


def test_marginal_values_come_from_a_long_csv(tmp_path: Path) -> None:
    file = write_long(tmp_path / "moer.csv", "CAISO_NORTH", "2024-05-01T00:00Z", "5min",
                      [400.0 + i for i in range(24)])
    data = read_electricitymaps(file, signal="marginal")
    assert data.signal == "marginal" and data.step == pd.Timedelta("5min")


# --- steps: 5, 15, 30 or 60 minutes ---------------------------------------------------


def write_long(path: Path, zone: str, start: str, step: str, values: list[float],
               estimated: list[bool] | None = None) -> Path:
    """A long-format CSV (time,zone,value,estimated) of one zone at ``step``."""
    times = pd.date_range(start, periods=len(values), freq=step)
    flags = estimated or [False] * len(values)
    rows = [f"{t.isoformat()},{zone},{v},{str(e).lower()}"
            for t, v, e in zip(times, values, flags, strict=True)]
    path.write_text("time,zone,value,estimated\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_30min_export_reads_at_its_own_step() -> None:
    data = read_electricitymaps(MALFORMED / "step_30min.csv")
    assert data.step == pd.Timedelta("30min")
    assert data.values["DE"].tolist() == [412.3, 405.8, 398.1, 390.6, 384.2]


@pytest.mark.parametrize("step", ["5min", "15min", "30min", "1h"])
def test_long_files_at_every_provider_step(tmp_path: Path, step: str) -> None:
    values = [300.0 + 7 * i for i in range(12)]
    data = read_electricitymaps(write_long(tmp_path / "x.csv", "GB", "2024-01-01T00:00Z",
                                           step, values))
    assert data.step == pd.Timedelta(step)
    assert data.values["GB"].tolist() == values


def test_a_20min_step_is_refused_naming_the_steps_read(tmp_path: Path) -> None:
    file = write_long(tmp_path / "x.csv", "GB", "2024-01-01T00:00Z", "20min", [300.0] * 6)
    with pytest.raises(DataError, match=r"time step of 0 days 00:20:00.*5, 15, 30 or 60"):
        read_electricitymaps(file)


def test_zones_of_different_steps_meet_at_the_coarsest(tmp_path: Path) -> None:
    """GB at 30 min beside DE hourly: GB is averaged to hours (energy-weighted), its
    flags carried to the hours they fall in."""
    gb = [200.0, 300.0, 100.0, 120.0, 50.0, 70.0, 10.0, 30.0]
    write_long(tmp_path / "gb.csv", "GB", "2024-01-01T00:00Z", "30min", gb,
               [False, False, False, True, False, False, False, False])
    write_em(tmp_path / "DE_2024_hourly.csv", "DE", "2024-01-01 00:00", [400.0] * 4)
    data = read_electricitymaps(tmp_path)
    assert data.step == pd.Timedelta("1h")
    assert data.values["GB"].tolist() == [250.0, 110.0, 60.0, 20.0]
    assert data.estimated["GB"].tolist() == [False, True, False, False]
    assert data.values["DE"].tolist() == [400.0] * 4


# --- gaps -----------------------------------------------------------------------------


def _hour(h: int) -> pd.Timestamp:
    return pd.Timestamp("2023-01-01", tz="UTC") + pd.Timedelta(hours=h)


def test_gap_of_2h_is_filled_by_time_interpolation_and_recorded() -> None:
    data = read_electricitymaps(MALFORMED / "gap_2h.csv")
    series = data.values["DE"]
    assert list(series.index) == [_hour(h) for h in range(6)]
    # 110 at 01:00 and 140 at 04:00: linear in time gives 120 and 130
    assert series[_hour(2)] == pytest.approx(120.0)
    assert series[_hour(3)] == pytest.approx(130.0)
    filled = data.filled["DE"]
    assert list(filled[filled].index) == [_hour(2), _hour(3)]
    gaps = data.filled_gaps()
    assert len(gaps) == 1
    assert gaps.iloc[0].to_dict() == {"zone": "DE", "start": _hour(2), "end": _hour(4),
                                      "slots": 2}
    assert not data.estimated["DE"].any()


def test_gap_of_5h_is_accepted_when_gaps_are_allowed() -> None:
    data = read_electricitymaps(MALFORMED / "gap_5h.csv", allow_gaps=True)
    series = data.values["DE"]
    assert not series.isna().any()
    # 110 at 01:00 and 170 at 07:00: +10 per hour
    assert series[_hour(2):_hour(6)].tolist() == pytest.approx([120, 130, 140, 150, 160])
    gaps = data.filled_gaps()
    assert len(gaps) == 1
    assert gaps.iloc[0].to_dict() == {"zone": "DE", "start": _hour(2), "end": _hour(7),
                                      "slots": 5}


def test_empty_cell_is_a_gap() -> None:
    data = read_electricitymaps(MALFORMED / "empty_cell.csv")
    assert data.values["DE"][_hour(1)] == pytest.approx((412.3 + 398.1) / 2)
    assert data.filled["DE"].tolist() == [False, True, False, False, False]
    assert data.filled_gaps()["slots"].tolist() == [1]


def test_gap_after_first_row_keeps_the_15min_step() -> None:
    # regression: the step was taken from the first difference (1 h here), which
    # silently dropped the 15-minute rows that follow
    data = read_electricitymaps(MALFORMED / "gap_after_first_row_15min.csv")
    assert data.step == pd.Timedelta("15min")
    assert len(data.values) == 11  # 00:00 .. 02:30
    gaps = data.filled_gaps()
    assert gaps[["start", "slots"]].values.tolist() == [[_hour(0) + pd.Timedelta("15min"), 3]]


# --- good path ------------------------------------------------------------------------


def _check_frame(data: IntensityData, zones: list[str]) -> None:
    idx = data.values.index
    assert isinstance(idx, pd.DatetimeIndex)
    assert str(idx.tz) == "UTC"
    assert idx.name == "time"
    assert data.zones == zones
    assert all(dtype == np.float64 for dtype in data.values.dtypes)
    assert not data.values.isna().to_numpy().any()
    assert data.source == "real"


def test_one_file(tmp_path: Path) -> None:
    file = write_em(tmp_path / "DE_2023_hourly.csv", "DE", "2023-06-01", [300.0, 310.5, 290.25])
    data = read_electricitymaps(file)
    _check_frame(data, ["DE"])
    assert data.values["DE"].tolist() == [300.0, 310.5, 290.25]
    assert data.values.index[0] == pd.Timestamp("2023-06-01", tz="UTC")
    assert data.signal == "direct"
    assert data.files == (str(file),)
    assert not data.filled.to_numpy().any()


def test_folder_of_zone_year_files_across_a_year_boundary(tmp_path: Path) -> None:
    folder = tmp_path / "electricitymaps"
    folder.mkdir()
    write_em(folder / "DE_2022_hourly.csv", "DE", "2022-12-31 21:00", [301.0, 302.0, 303.0])
    write_em(folder / "DE_2023_hourly.csv", "DE", "2023-01-01 00:00", [304.0, 305.0])
    write_em(folder / "NO_2022_hourly.csv", "NO", "2022-12-31 21:00", [9.0, 9.5, 10.0])
    write_em(folder / "NO_2023_hourly.csv", "NO", "2023-01-01 00:00", [10.5, 11.0])
    for path in (folder, tmp_path):  # the folder itself, or a folder holding electricitymaps/
        data = read_electricitymaps(path)
        _check_frame(data, ["DE", "NO"])
        assert list(data.values.index) == list(
            pd.date_range("2022-12-31 21:00", periods=5, freq="1h", tz="UTC")
        )
        assert data.values["DE"].tolist() == [301.0, 302.0, 303.0, 304.0, 305.0]
        assert data.values["NO"].tolist() == [9.0, 9.5, 10.0, 10.5, 11.0]
        assert len(data.files) == 4
        assert not data.filled.to_numpy().any()
    only_no = read_electricitymaps(folder, zones=["NO"])
    assert only_no.zones == ["NO"]


def test_signal_lca_selects_the_lca_column(tmp_path: Path) -> None:
    file = write_em(tmp_path / "DE_2023_hourly.csv", "DE", "2023-01-01", [300.0, 310.0])
    data = read_electricitymaps(file, signal="lca")
    assert data.signal == "lca"
    assert data.values["DE"].tolist() == [350.0, 360.0]
    assert read_electricitymaps(file, signal="LCA").values.equals(data.values)


def test_estimated_flag_and_share(tmp_path: Path) -> None:
    write_em(tmp_path / "SG_2023_hourly.csv", "SG", "2023-01-01", [400.0] * 4,
             estimated=[True, False, False, False])
    write_em(tmp_path / "JP-TK_2023_hourly.csv", "JP-TK", "2023-01-01", [450.0] * 4,
             estimated=[True] * 4)
    data = read_electricitymaps(tmp_path)
    assert data.estimated.dtypes.eq(bool).all()
    assert data.estimated["SG"].tolist() == [True, False, False, False]
    assert data.estimated_share().to_dict() == {"JP-TK": 1.0, "SG": 0.25}


def test_long_format_converts_offsets_to_utc(tmp_path: Path) -> None:
    file = tmp_path / "long.csv"
    file.write_text(
        "time,zone,value\n"
        "2023-03-26T01:00:00+01:00,DE,300\n"  # 00:00 UTC
        "2023-03-26T00:00:00Z,FR,50\n"
        "2023-03-26T03:00:00+02:00,DE,310\n"  # 01:00 UTC, after the DST change
        "2023-03-26T01:00:00Z,FR,55.5\n",
        encoding="utf-8",
    )
    data = read_long_csv(file)
    _check_frame(data, ["DE", "FR"])
    assert list(data.values.index) == [
        pd.Timestamp("2023-03-26 00:00", tz="UTC"), pd.Timestamp("2023-03-26 01:00", tz="UTC")
    ]
    assert data.values.loc[:, "DE"].tolist() == [300.0, 310.0]
    assert data.values.loc[:, "FR"].tolist() == [50.0, 55.5]
    assert read_any(file).values.equals(data.values)


# --- real data ------------------------------------------------------------------------


def shared_exports() -> Path:
    """The shared Electricity Maps folder, or skip with the reason it is absent."""
    root = os.environ.get("GREENEPOCH_DATA")
    if not root:
        pytest.skip("GREENEPOCH_DATA is not set (point it at a folder holding electricitymaps/)")
    folder = Path(root) / "electricitymaps"
    if not folder.is_dir() or not any(folder.glob("*.csv")):
        pytest.skip(f"GREENEPOCH_DATA={root} holds no electricitymaps/*.csv exports")
    return folder


@pytest.fixture(scope="module")
def real() -> IntensityData:
    return read_electricitymaps(shared_exports())


@pytest.mark.realdata
def test_real_exports_load_into_one_frame(real: IntensityData) -> None:
    _check_frame(real, sorted(real.zones))
    assert len(real.files) == 54
    assert len(real.zones) == 18
    assert len(real.values) == 26_280
    assert real.values.index[0] == pd.Timestamp("2021-01-01 00:00", tz="UTC")
    assert real.values.index[-1] == pd.Timestamp("2023-12-31 23:00", tz="UTC")
    assert real.step == pd.Timedelta("1h")
    assert real.filled_gaps().empty


@pytest.mark.realdata
def test_real_exports_known_values(real: IntensityData) -> None:
    in_2023 = real.values.index.year == 2023
    assert real.values.loc[in_2023, "DE"].mean() == pytest.approx(307.7, abs=0.1)
    assert real.values.loc[in_2023, "NO"].mean() == pytest.approx(9.3, abs=0.1)
    share = real.estimated_share()
    assert share["IN-WE"] == 1.0
    assert share["JP-TK"] == 1.0
    assert 0.0 < share["SG"] < 1.0


@pytest.mark.realdata
def test_an_unknown_zone_lists_every_zone_of_the_folder(real_data: Path) -> None:
    with pytest.raises(DataError) as err:
        read_electricitymaps(real_data, zones=["XX", "DE"])
    message = str(err.value)
    assert "no export files for zone(s) XX; available: AU-NSW, AU-VIC, BR-CS" in message
    assert "US-TEX-ERCO, ZA. Pick zones from that list" in message
