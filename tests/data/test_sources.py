"""The intensity source interface: a contract test over every implementation (same
zones, range and slot in; a validated UTC frame with provenance out; an unknown zone
refused with one clear error), the cache, the --data rule, prices and the one
zone-to-market table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import CatalogError, DataError
from greenepoch.data.intensity.frame import SLOTS, IntensityData
from greenepoch.data.intensity.readers import read_electricitymaps
from greenepoch.data.intensity.source import (
    DATA_ENV,
    CachedSource,
    ClimatologySource,
    ExportFolderSource,
    IntensitySource,
    source_for,
)
from greenepoch.data.prices import CachedPrices, PriceFolder
from greenepoch.data.regions import load_catalog, market_code, price_markets
from source_fixtures import DAYS, ESTIMATED, START, write_exports

ZONES = ["DE", "GB"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_exports(tmp_path_factory.mktemp("sources"))


#: every implementation, built on the test folder (sources over exports) or alone
IMPLEMENTATIONS: dict[str, Callable[[Path], IntensitySource]] = {
    "exports": ExportFolderSource,
    "climatology": lambda _: ClimatologySource(seed=3),
    "cached-exports": lambda f: CachedSource(ExportFolderSource(f)),
    "cached-climatology": lambda _: CachedSource(ClimatologySource()),
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def source(request: pytest.FixtureRequest, folder: Path) -> IntensitySource:
    return IMPLEMENTATIONS[request.param](folder)


# -- the contract ------------------------------------------------------------------------

@pytest.mark.parametrize("slot", sorted(SLOTS))
def test_load_gives_the_validated_frame_asked_for(source: IntensitySource, slot: str) -> None:
    start, end = START + pd.Timedelta("2D"), START + pd.Timedelta("4D")
    got = source.load(["GB", "DE"], start, end, signal="direct", slot=slot)
    assert isinstance(got, IntensityData)  # its invariants were checked on the way in
    index = got.values.index
    assert str(index.tz) == "UTC" and index.name == "time"
    assert index[0] == start and index[-1] + got.step == end and got.step == SLOTS[slot]
    assert got.zones == ["GB", "DE"]
    assert got.provider == source.name and got.provider
    assert got.estimated.shape == got.filled.shape == got.values.shape
    assert got.signal == "direct"


def test_unknown_zone_is_one_clear_error(source: IntensitySource) -> None:
    with pytest.raises(DataError, match="XX") as info:
        source.load(["DE", "XX"], START, START + pd.Timedelta("1D"))
    assert "\n" not in str(info.value)


def test_naive_times_and_bad_arguments_are_refused(source: IntensitySource) -> None:
    with pytest.raises(DataError, match="no time zone"):
        source.load(ZONES, pd.Timestamp("2023-03-02"), START + pd.Timedelta("3D"))
    with pytest.raises(DataError, match="unknown slot"):
        source.load(ZONES, START, START + pd.Timedelta("1D"), slot="2h")
    with pytest.raises(DataError, match="unknown signal 'scope3': use one of direct, lca, "
                       "marginal"):
        source.load(ZONES, START, START + pd.Timedelta("1D"), signal="scope3")
    # neither the climatology nor an export has a marginal trace: one clear error each
    with pytest.raises(DataError, match=r"no marginal trace|not 'marginal'") as info:
        source.load(ZONES, START, START + pd.Timedelta("1D"), signal="marginal")
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="non-empty list of zone ids"):
        source.load([], START, START + pd.Timedelta("1D"))


def test_lca_signal_is_the_other_column(source: IntensitySource) -> None:
    end = START + pd.Timedelta("1D")
    direct = source.load(["DE"], START, end).values["DE"]
    lca = source.load(["DE"], START, end, signal="lca").values["DE"]
    assert not np.allclose(direct.to_numpy(), lca.to_numpy())


# -- provenance and coverage of the export folder -----------------------------------------

def test_export_flags_say_which_hours_were_estimated(folder: Path) -> None:
    got = ExportFolderSource(folder).load(ZONES, START, START + pd.Timedelta("3D"))
    assert got.source == "real" and got.provider == "electricitymaps-exports"
    assert got.estimated["DE"][got.estimated["DE"]].index.tolist() == [ESTIMATED]
    assert not got.estimated["GB"].any() and not got.filled.to_numpy().any()
    assert any(f.endswith("DE_2023_hourly.csv") for f in got.files)


def test_export_values_are_the_readers(folder: Path) -> None:
    end = START + pd.Timedelta("5D")
    got = ExportFolderSource(folder).load(ZONES, START, end).values
    read = read_electricitymaps(folder).values
    pd.testing.assert_frame_equal(got, read[(read.index < end)][ZONES])


def test_range_outside_the_exports_names_what_they_cover(folder: Path) -> None:
    source = ExportFolderSource(folder)
    with pytest.raises(DataError, match=r"covers 2023-03-01T00:00:00\+00:00 \.\. "
                                        r"2023-03-11T00:00:00\+00:00"):
        source.load(ZONES, START, START + pd.Timedelta("20D"))
    clipped = source.load(ZONES, START - pd.Timedelta("30D"), START + pd.Timedelta("2D"),
                          clip_start=True)
    assert clipped.values.index[0] == START


def test_open_range_is_everything_the_source_has(folder: Path) -> None:
    got = ExportFolderSource(folder).load(ZONES, None, None, slot=None)
    assert len(got.values) == DAYS * 24
    with pytest.raises(DataError, match="give start and end"):
        ClimatologySource().load(ZONES, None, None)


def test_synthetic_is_labelled_and_seeded() -> None:
    end = START + pd.Timedelta("2D")
    one = ClimatologySource(seed=1).load(ZONES, START, end)
    again = ClimatologySource(seed=1).load(ZONES, START, end)
    other = ClimatologySource(seed=2).load(ZONES, START, end)
    assert one.source == "synthetic" and one.provider == "climatology"
    assert one.values.equals(again.values) and not one.values.equals(other.values)


def test_sources_list_their_zones(folder: Path) -> None:
    assert ExportFolderSource(folder).zones() == ["DE", "GB"]
    assert {"DE", "GB", "US-CAL-CISO"} <= set(ClimatologySource().zones())


# -- the cache -----------------------------------------------------------------------------

class CountingExports(ExportFolderSource):
    """The real export source, counting the reads that reach the files."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.read_calls = 0

    def _read(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.read_calls += 1
        return super()._read(*args, **kwargs)


def test_cached_source_reads_the_files_once_for_every_window(folder: Path) -> None:
    inner = CountingExports(folder)
    cached = CachedSource(inner)
    windows = [(START + pd.Timedelta(days=d), START + pd.Timedelta(days=d + 2))
               for d in range(5)]
    for start, end in windows:
        got = cached.load(ZONES, start, end)
        pd.testing.assert_frame_equal(got.values, inner.load(ZONES, start, end).values)
    assert cached.reads == 1
    assert inner.read_calls == 1 + len(windows)  # one through the cache, one per direct load
    cached.load(ZONES, START, START + pd.Timedelta("1D"), signal="lca")
    assert cached.reads == 2  # another signal is another read


def test_cached_source_reads_a_changed_file_again(tmp_path: Path) -> None:
    folder = write_exports(tmp_path)
    cached = CachedSource(ExportFolderSource(folder))
    cached.load(ZONES, START, START + pd.Timedelta("1D"))
    file = folder / "electricitymaps" / "GB_2023_hourly.csv"
    file.write_text(file.read_text(encoding="utf-8").replace(",190.00,", ",191.00,"),
                    encoding="utf-8")
    got = cached.load(ZONES, START, START + pd.Timedelta("1D"))
    assert cached.reads == 2 and got.values["GB"].iloc[0] == 191.0


def test_cached_prices_read_each_market_once(folder: Path) -> None:
    cached = CachedSource(ExportFolderSource(folder))
    assert isinstance(cached.prices, CachedPrices)
    first = cached.prices.zone("DE")
    assert first is not None and len(first) == DAYS * 24
    first.iloc[0] = -1.0  # a caller's change does not reach the cache
    again = cached.prices.zone("DE")
    assert again is not None and again.iloc[0] == 50.0
    assert cached.prices.zone("GB") is None  # no file for GB's market
    assert cached.prices.reads == 2


# -- the --data rule -----------------------------------------------------------------------

def test_source_for_follows_the_data_rule(folder: Path, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert isinstance(source_for(None), ClimatologySource)
    assert source_for(None, seed=4).seed == 4  # type: ignore[attr-defined]
    chosen = source_for(folder)
    assert isinstance(chosen, ExportFolderSource) and chosen.path == folder
    assert isinstance(chosen.prices, PriceFolder)
    assert source_for(chosen) is chosen
    monkeypatch.setenv(DATA_ENV, str(folder))
    assert isinstance(source_for(None), ExportFolderSource)
    with pytest.raises(DataError, match=r"`data_dir` points at .*missing"):
        source_for(tmp_path / "missing")
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "gone"))
    with pytest.raises(DataError, match=r"\$GREENEPOCH_DATA points at"):
        source_for(None)


# -- the one zone-to-market table ----------------------------------------------------------

def test_market_table_lives_in_the_catalog() -> None:
    from greenepoch.forecasts.prices import MARKETS

    markets = price_markets()
    assert markets == MARKETS
    assert set(markets) == {"DE", "ES", "US-CAL-CISO", "US-MIDA-PJM", "US-NY-NYIS",
                            "US-TEX-ERCO", "JP-TK", "KR", "IN-WE", "BR-CS", "AU-NSW",
                            "AU-VIC", "CA-ON", "SG", "CL-SEN"}
    de = markets["DE"]
    assert (de.market, de.tz, de.kind, de.publish_local) == (
        "DE-LU", "Europe/Berlin", "day_ahead", "14:00")
    assert markets["AU-NSW"].kind == "real_time" and markets["AU-NSW"].publish_local is None
    catalog = load_catalog()
    for zone, market in markets.items():
        assert market.tz == catalog[zone].timezone  # the zone's own time zone
    # the planner's markets: every zone has one (its id by default), outside the
    # covariate table too (ZA has prices to plan on, but they are a fixed tariff)
    assert market_code("DE") == "DE-LU" and market_code("BR-CS") == "BR-SP"
    assert market_code("ZA") == "ZA" and "ZA" not in markets
    assert market_code("XX-NOT-A-ZONE") == "XX-NOT-A-ZONE"


@pytest.mark.parametrize(("extra", "message"), [
    ('market_kind = "hourly"', "market_kind' must be one of day_ahead, real_time"),
    ('market_kind = "day_ahead"', "needs 'market_publish' as HH:MM"),
    ('market_kind = "day_ahead"\nmarket_publish = "25:00"', "needs 'market_publish'"),
    ('market_kind = "real_time"\nmarket_publish = "12:00"', "for day-ahead markets only"),
])
def test_catalog_refuses_a_bad_market(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "regions.toml"
    path.write_text(
        '[[zone]]\nid = "DE"\nname = "Germany"\ncountry = "DE"\ntimezone = "Europe/Berlin"\n'
        f'latitude = 50.1\nlongitude = 8.7\naws = []\ngcp = []\nazure = []\n{extra}\n',
        encoding="utf-8")
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)
