"""Archive -> Electricity Maps export layout, read back by the reader every command uses."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.archive import export as export_module
from greenepoch.data.archive.export import export_electricitymaps
from greenepoch.data.archive.store import Archive
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.readers import read_electricitymaps
from greenepoch.data.providers.records import Fetched, fetched_series

T0 = pd.Timestamp("2024-03-01T00:00Z")
FETCHED = pd.Timestamp("2024-03-05T00:00Z")
# shared/data/README.md's column list, in its order
HEADER = ["Datetime (UTC)", "Country", "Zone Name", "Zone Id",
          "Carbon Intensity gCO₂eq/kWh (direct)", "Carbon Intensity gCO₂eq/kWh (LCA)",
          "Low Carbon Percentage", "Renewable Percentage", "Data Source", "Data Estimated",
          "Data Estimation Method"]


@pytest.fixture
def archive(tmp_path: Path):
    with Archive(f"sqlite:///{tmp_path / 'archive.sqlite'}") as opened:
        yield opened


def series(values, flags=None, *, zone="GB", provider="ukci", step="30min", start=T0,
           signal="direct") -> Fetched:
    times = pd.date_range(start, periods=len(values), freq=step)
    flags = flags or [False] * len(values)
    return fetched_series(provider, zone, signal, "actual", pd.Timedelta(step),
                          list(zip(times, values, flags, strict=True)), FETCHED)


def rows_of(file: Path) -> list[dict[str, str]]:
    with file.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_finer_periods_become_energy_weighted_hours(archive: Archive, tmp_path: Path) -> None:
    # 15-min periods: hour 0 = 100..130, hour 1 = 200 x4 (one estimated); a lone period after
    values = [100.0, 110.0, 120.0, 130.0, 200.0, 200.0, 200.0, 200.0]
    flags = [False] * 5 + [True, False, False]
    archive.put(series(values, flags, step="15min"))
    archive.put(series([300.0], step="15min", start=T0 + pd.Timedelta("3h")))  # no whole hour
    archive.put(series([400.0, 420.0], signal="lca", step="30min"))
    out = tmp_path / "out"
    files = export_electricitymaps(archive, ["GB"], T0, T0 + pd.Timedelta("1D"), out)
    assert files == [out / "GB_2024_hourly.csv"]
    raw = files[0].read_bytes().decode("utf-8")
    assert raw.split("\r\n")[0].split(",") == HEADER
    rows = rows_of(files[0])
    assert [r["Datetime (UTC)"] for r in rows] == ["2024-03-01 00:00:00", "2024-03-01 01:00:00"]
    assert [r["Data Source"] for r in rows] == ["ukci", "ukci"]
    assert [r["Zone Name"] for r in rows] == ["Great Britain"] * 2
    assert [r["Carbon Intensity gCO₂eq/kWh (LCA)"] for r in rows] == ["410.0", ""]
    read = read_electricitymaps(out)
    assert read.values["GB"].tolist() == [115.0, 200.0]
    assert read.estimated["GB"].tolist() == [False, True]
    assert read.step == pd.Timedelta("1h")


def test_hourly_values_read_back_exactly_and_gaps_stay_gaps(archive: Archive,
                                                            tmp_path: Path) -> None:
    archive.put(series([101.37, 99.01, 250.5], step="1h", provider="electricitymaps",
                       zone="DE"))
    archive.put(series([80.25], step="1h", provider="electricitymaps", zone="DE",
                       start=T0 + pd.Timedelta("5h")))
    [file] = export_electricitymaps(archive, ["DE"], T0, T0 + pd.Timedelta("6h"), tmp_path)
    rows = rows_of(file)
    assert [r["Carbon Intensity gCO₂eq/kWh (direct)"] for r in rows] == [
        "101.37", "99.01", "250.5", "80.25"]
    assert rows[3]["Datetime (UTC)"] == "2024-03-01 05:00:00"  # hours 3-4 not invented


def test_one_file_per_zone_and_year(archive: Archive, tmp_path: Path) -> None:
    new_year = pd.Timestamp("2023-12-31T22:00Z")
    archive.put(series([100.0] * 4, step="1h", start=new_year))
    archive.put(series([50.0] * 4, step="1h", start=new_year, zone="FR",
                       provider="electricitymaps"))
    files = export_electricitymaps(archive, ["GB", "FR"], new_year, new_year + pd.Timedelta("4h"),
                                   tmp_path)
    assert sorted(f.name for f in files) == ["FR_2023_hourly.csv", "FR_2024_hourly.csv",
                                             "GB_2023_hourly.csv", "GB_2024_hourly.csv"]
    read = read_electricitymaps(tmp_path)
    assert read.values.shape == (4, 2)
    assert (read.values["FR"] == 50.0).all()


def test_the_provider_with_most_hours_comes_first(archive: Archive, tmp_path: Path) -> None:
    archive.put(series([100.0] * 6, step="30min"))  # ukci: hours 0-2
    archive.put(series([111.0, 222.0], step="1h", provider="electricitymaps",
                       start=T0 + pd.Timedelta("2h")))  # hours 2-3
    [file] = export_electricitymaps(archive, ["GB"], T0, T0 + pd.Timedelta("4h"), tmp_path)
    rows = rows_of(file)
    assert [r["Data Source"] for r in rows] == ["ukci", "ukci", "ukci", "electricitymaps"]
    assert rows[2]["Carbon Intensity gCO₂eq/kWh (direct)"] == "100.0"
    only = tmp_path / "only"
    [file] = export_electricitymaps(archive, ["GB"], T0, T0 + pd.Timedelta("4h"), only,
                                    provider="electricitymaps")
    assert [r["Data Source"] for r in rows_of(file)] == ["electricitymaps"] * 2


def test_marginal_and_empty_exports_write_nothing(archive: Archive, tmp_path: Path) -> None:
    archive.put(series([100.0] * 2, step="1h"))
    out = tmp_path / "new" / "out"
    with pytest.raises(DataError, match=r"marginal.*has none"):
        export_electricitymaps(archive, ["GB"], T0, T0 + pd.Timedelta("2h"), out,
                               signal="marginal")
    with pytest.raises(DataError, match="no whole hour of direct actuals for DE"):
        export_electricitymaps(archive, ["GB", "DE"], T0, T0 + pd.Timedelta("2h"), out)
    with pytest.raises(DataError, match="must be after"):
        export_electricitymaps(archive, ["GB"], T0, T0, out)
    assert not (tmp_path / "new").exists()


def test_a_failed_write_leaves_no_folder(archive: Archive, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    archive.put(series([100.0] * 2, step="1h"))
    archive.put(series([100.0] * 2, step="1h", zone="DE"))

    real = export_module._csv
    calls = []

    def second_fails(zone, signal, rows, other):
        calls.append(zone)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(zone, signal, rows, other)

    monkeypatch.setattr(export_module, "_csv", second_fails)
    out = tmp_path / "a" / "b"
    with pytest.raises(OSError):
        export_electricitymaps(archive, ["GB", "DE"], T0, T0 + pd.Timedelta("2h"), out)
    assert not (tmp_path / "a").exists()
    monkeypatch.setattr(export_module, "write_together",
                        lambda files: (_ for _ in ()).throw(OSError(28, "No space")))
    monkeypatch.setattr(export_module, "_csv", real)
    with pytest.raises(OSError):
        export_electricitymaps(archive, ["GB", "DE"], T0, T0 + pd.Timedelta("2h"), out)
    assert not (tmp_path / "a").exists()


@pytest.mark.realdata
def test_real_exports_through_the_archive_read_back_the_same(real_data: Path,
                                                            tmp_path: Path) -> None:
    """Real hourly exports, put as Fetched series and exported again, read the same."""
    source = real_data / "electricitymaps"
    zones = ["DE", "SG"]  # SG is partly estimated
    original = read_electricitymaps(source, zones=zones)
    year = original.values.loc["2023"]
    with Archive(f"sqlite:///{tmp_path / 'archive.sqlite'}") as archive:
        for zone in zones:
            kept = ~original.filled[zone].loc["2023"]  # what the file holds, not our fills
            values = year[zone][kept]
            flags = original.estimated[zone].loc["2023"][kept]
            index = pd.DatetimeIndex(values.index, name="time")
            archive.put(Fetched("electricitymaps", zone, "direct", "actual", pd.Timedelta("1h"),
                                pd.Series(values.to_numpy(), index=index, dtype=float),
                                pd.Series(flags.to_numpy(dtype=bool), index=index), FETCHED))
        out = tmp_path / "out"
        export_electricitymaps(archive, zones, pd.Timestamp("2023-01-01T00:00Z"),
                               pd.Timestamp("2024-01-01T00:00Z"), out)
    again = read_electricitymaps(out)
    pd.testing.assert_frame_equal(again.values, year, check_freq=False)
    expected = original.estimated.loc["2023"]
    pd.testing.assert_frame_equal(again.estimated, expected, check_freq=False)
    assert np.array_equal(again.filled.to_numpy(), original.filled.loc["2023"].to_numpy())
    header = (source / "DE_2023_hourly.csv").read_text(encoding="utf-8").splitlines()[0]
    assert (out / "DE_2023_hourly.csv").read_text(encoding="utf-8").splitlines()[0] == header
