"""Tests of the shipped climatology, its JSON form, calibration and synthetic traces."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.climatology import (
    CREATED_BY,
    FORMAT_VERSION,
    YEAR_PROBS,
    Climatology,
    calibrate,
    climatology_file,
    embedded_climatology,
    synthesize,
)
from greenepoch.data.intensity.frame import MAX_INTENSITY, IntensityData

ZONES = 18
YEAR = (pd.Timestamp("2025-01-01T00:00Z"), pd.Timestamp("2026-01-01T00:00Z"))


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture(scope="module")
def clim() -> Climatology:
    return embedded_climatology("direct")


@pytest.fixture(scope="module")
def year(clim: Climatology) -> IntensityData:
    """One synthetic year (after the calibrated years, so in the reference climate)."""
    return synthesize(clim, list(clim.zones), *YEAR, seed=0)


@pytest.fixture(scope="module")
def requires_data() -> Path:
    """The real-data folder from $GREENEPOCH_DATA; skips the test when it is not there."""
    root = os.environ.get("GREENEPOCH_DATA")
    if not root:
        pytest.skip("GREENEPOCH_DATA is not set (point it at a folder holding electricitymaps/)")
    path = Path(root).expanduser()
    if not path.is_dir():
        pytest.skip(f"GREENEPOCH_DATA={root} is not a folder")
    return path


# ---------------------------------------------------------------- shipped files


@pytest.mark.parametrize("signal", ["direct", "lca"])
def test_shipped_climatology_covers_all_zones_and_years(signal: str) -> None:
    c = embedded_climatology(signal)
    assert c.signal == signal
    assert c.created_by == CREATED_BY == "greenepoch data calibrate"
    assert c.years == (2021, 2022, 2023)
    assert len(c.zones) == ZONES
    for zone in c.zones.values():
        assert zone.years == (2021, 2022, 2023)
        assert zone.hours == 3 * 8760
        assert 0 <= zone.min_g_per_kwh < zone.max_g_per_kwh <= MAX_INTENSITY
        assert zone.files.endswith("_2023_hourly.csv")


def test_shipped_files_are_compact_and_versioned() -> None:
    files = [Path(str(climatology_file(s))) for s in ("direct", "lca")]
    sizes = [f.stat().st_size for f in files]
    assert sum(sizes) < 400_000
    for file in files:
        doc = json.loads(file.read_text(encoding="utf-8"))
        assert doc["format_version"] == FORMAT_VERSION
        assert doc["created_by"] == "greenepoch data calibrate"
        assert doc["years"] == [2021, 2022, 2023]


def test_lca_is_above_direct_on_average() -> None:
    direct, lca = embedded_climatology("direct"), embedded_climatology("lca")
    for name in direct.zones:
        assert lca.zones[name].mean.mean() > direct.zones[name].mean.mean()


def test_embedded_climatology_rejects_unknown_signal() -> None:
    with pytest.raises(DataError, match="'direct' or 'lca'"):
        embedded_climatology("scope3")


def test_climatology_is_read_only(clim: Climatology) -> None:
    zone = clim.zones["DE"]
    assert not zone.mean.flags.writeable
    with pytest.raises(TypeError):
        clim.zones["XX"] = zone  # type: ignore[index]


# ---------------------------------------------------------------- JSON


def test_json_round_trip_is_exact_for_a_written_climatology(
    clim: Climatology, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    clim.to_json(first)
    back = Climatology.from_json(first)
    back.to_json(second)
    assert first.read_text(encoding="utf-8") == second.read_text(encoding="utf-8")
    assert back.signal == clim.signal and back.years == clim.years
    for name, zone in clim.zones.items():
        other = back.zones[name]
        np.testing.assert_array_equal(other.mean, zone.mean)
        np.testing.assert_array_equal(other.y_mean, zone.y_mean)
        np.testing.assert_array_equal(other.quantiles, zone.quantiles)
        assert (other.y_weekly is None) == (zone.y_weekly is None)
        assert other.tau_slow_h == zone.tau_slow_h and other.day_corr == zone.day_corr


def test_json_rounds_a_calibrated_climatology_sensibly(clim: Climatology, tmp_path: Path) -> None:
    fresh = calibrate(synthesize(clim, ["DE", "SG"], utc("2023-01-01"), utc("2024-01-01"), seed=3))
    fresh.to_json(tmp_path / "c.json")
    back = Climatology.from_json(tmp_path / "c.json")
    for name in ("DE", "SG"):
        a, b = fresh.zones[name], back.zones[name]
        assert np.abs(a.mean - b.mean).max() <= 0.05 + 1e-9
        assert np.abs(a.y_mean - b.y_mean).max() <= 0.0005 + 1e-9
        assert abs(a.acf_1h - b.acf_1h) <= 0.0005 + 1e-9


def test_from_json_rejects_other_format_versions(clim: Climatology, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    clim.to_json(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(DataError, match="format_version 2, expected 1"):
        Climatology.from_json(path)


def test_from_json_names_a_malformed_file(clim: Climatology, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    clim.to_json(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    del doc["zones"]["DE"]["y_std"]
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.json: malformed climatology .*y_std"):
        Climatology.from_json(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="cannot read a climatology"):
        Climatology.from_json(path)


# ---------------------------------------------------------------- calibration


def test_calibrate_recovers_the_climate_it_was_drawn_from(clim: Climatology) -> None:
    zones = ["DE", "NO", "SG"]
    drawn = synthesize(clim, zones, utc("2021-01-01"), utc("2024-01-01"), seed=7)
    again = calibrate(drawn)
    assert again.years == (2021, 2022, 2023) and again.signal == "direct"
    for name in zones:
        old, new = clim.zones[name], again.zones[name]
        assert np.median(np.abs(new.mean - old.mean) / old.std) < 0.3
        assert abs(new.acf_1h - old.acf_1h) < 0.02
        assert abs(new.acf_24h - old.acf_24h) < 0.1
    median = int(np.flatnonzero(YEAR_PROBS == 0.5)[0])
    for name in ("DE", "SG"):  # NO's annual level varies by +-20 % from weather alone
        for y in (2021, 2022, 2023):
            old, new = clim.zones[name].year_quantiles[y], again.zones[name].year_quantiles[y]
            assert new[median] == pytest.approx(old[median], rel=0.15)


def test_calibrate_uses_whole_years_only(clim: Climatology) -> None:
    data = synthesize(clim, ["GB"], utc("2023-01-01"), utc("2024-03-01"), seed=1)
    fitted = calibrate(data)
    assert fitted.years == (2023,)
    assert fitted.zones["GB"].hours == 8760


def test_calibrate_averages_15min_data_to_hours(clim: Climatology) -> None:
    data = synthesize(clim, ["ES"], utc("2023-01-01"), utc("2024-01-01"), slot="15min", seed=2)
    assert calibrate(data).zones["ES"].hours == 8760


def test_calibrate_needs_a_whole_year(clim: Climatology) -> None:
    data = synthesize(clim, ["GB"], utc("2023-01-01"), utc("2023-07-01"), seed=1)
    with pytest.raises(DataError, match="whole calendar year"):
        calibrate(data)


# ---------------------------------------------------------------- synthesis


def test_synthetic_year_is_labelled_and_well_formed(clim: Climatology,
                                                    year: IntensityData) -> None:
    values = year.values
    assert year.source == "synthetic" and year.signal == "direct" and year.files == ()
    assert isinstance(values.index, pd.DatetimeIndex) and str(values.index.tz) == "UTC"
    assert values.index.name == "time"
    assert values.index[0] == YEAR[0] and values.index[-1] == YEAR[1] - pd.Timedelta("1h")
    assert len(values) == 8760 and year.zones == list(clim.zones)
    assert not values.isna().to_numpy().any()
    assert not year.estimated.to_numpy().any() and not year.filled.to_numpy().any()
    assert values.to_numpy().min() >= 0 and values.to_numpy().max() <= MAX_INTENSITY
    for name, zone in clim.zones.items():
        margin = 0.1 * (zone.max_g_per_kwh - zone.min_g_per_kwh) + 1e-9
        assert values[name].min() >= zone.min_g_per_kwh - margin
        assert values[name].max() <= zone.max_g_per_kwh + margin


def test_synthesis_is_deterministic_per_seed(clim: Climatology) -> None:
    def draw(seed: int) -> pd.DataFrame:
        return synthesize(clim, ["DE", "JP-TK"], utc("2024-03-01"), utc("2024-03-15"),
                          seed=seed).values

    pd.testing.assert_frame_equal(draw(5), draw(5))
    assert not np.allclose(draw(5).to_numpy(), draw(6).to_numpy())


def test_a_zone_trace_does_not_depend_on_other_zones_or_the_window(clim: Climatology) -> None:
    alone = synthesize(clim, ["DE"], utc("2024-03-01"), utc("2024-03-08")).values["DE"]
    together = synthesize(clim, ["GB", "DE"], utc("2024-01-01"), utc("2024-12-01")).values["DE"]
    pd.testing.assert_series_equal(alone, together.loc[alone.index])


def test_15min_slots_repeat_the_hourly_value(clim: Climatology) -> None:
    hourly = synthesize(clim, ["NO"], utc("2024-05-01"), utc("2024-05-03")).values
    quarter = synthesize(clim, ["NO"], utc("2024-05-01"), utc("2024-05-03"), slot="15min")
    assert quarter.step == pd.Timedelta("15min") and len(quarter.values) == 4 * len(hourly)
    pd.testing.assert_frame_equal(quarter.values.resample("1h").mean(), hourly,
                                  check_freq=False)


def test_synthesis_converts_other_time_zones_to_utc(clim: Climatology) -> None:
    data = synthesize(clim, "KR", pd.Timestamp("2024-06-01T09:00+09:00"),
                      pd.Timestamp("2024-06-02T09:00+09:00"))
    assert data.values.index[0] == utc("2024-06-01") and len(data.values) == 24
    assert data.zones == ["KR"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": pd.Timestamp("2024-01-01")}, "no time zone; pass a tz-aware UTC timestamp"),
        ({"end": "2024-01-02"}, "no time zone; pass a tz-aware UTC timestamp"),
        ({"start": "yesterday-ish"}, "is not a time"),
        ({"end": utc("2023-12-31")}, "is not before end"),
        ({"start": utc("2024-01-01 00:30")}, "not on a 1h slot boundary"),
        ({"slot": "5min"}, "unknown slot '5min'"),
        ({"zones": ["DE", "ATLANTIS"]}, r"ATLANTIS not in the climatology \(have: AU-NSW"),
        ({"zones": []}, "no zones asked for"),
        ({"seed": -1}, "non-negative integer"),
    ],
)
def test_synthesis_rejects_bad_input(clim: Climatology, kwargs: dict, message: str) -> None:
    args = {"zones": ["DE"], "start": utc("2024-01-01"), "end": utc("2024-01-02"),
            "slot": "1h", "seed": 0} | kwargs
    with pytest.raises(DataError, match=message):
        synthesize(clim, **args)


# ---------------------------------------------------------------- realism


def _cell_means(values: pd.Series) -> np.ndarray:
    idx = pd.DatetimeIndex(values.index)
    return values.groupby([idx.month, idx.hour]).mean().to_numpy().reshape(12, 24)


def test_synthetic_year_keeps_the_month_hour_profile(clim: Climatology,
                                                     year: IntensityData) -> None:
    errors, offsets = [], []
    for name, zone in clim.zones.items():
        means = _cell_means(year.values[name])
        diurnal = np.corrcoef(means.mean(axis=0), zone.mean.mean(axis=0))[0, 1]
        assert diurnal > 0.95, name
        offset = year.values[name].mean() / zone.mean.mean() - 1
        assert abs(offset) < 0.25, name  # one year of slow weather regimes (BR-CS: months)
        errors.append(np.mean(np.abs(means - zone.mean) / zone.std))
        offsets.append(abs(offset))
    assert np.median(errors) < 0.45  # cell means of one year, in calibrated std units
    assert np.median(offsets) < 0.03


def test_synthetic_year_keeps_the_spread(clim: Climatology, year: IntensityData) -> None:
    ratios = []
    idx = pd.DatetimeIndex(year.values.index)
    for name, zone in clim.zones.items():
        deviation = year.values[name].to_numpy() - zone.mean[idx.month - 1, idx.hour]
        ratio = np.sqrt(np.mean(deviation**2) / np.mean(zone.std**2))
        assert 0.7 < ratio < 1.4, name
        ratios.append(ratio)
    assert 0.9 < np.median(ratios) < 1.1


def test_synthetic_year_keeps_the_residual_autocorrelation(clim: Climatology,
                                                           year: IntensityData) -> None:
    acf = clim.residual_acf(year, lags=(1, 24))
    lag1 = acf[1] - [clim.zones[z].acf_1h for z in acf.index]
    lag24 = acf[24] - [clim.zones[z].acf_24h for z in acf.index]
    assert lag1.abs().max() < 0.04 and lag1.abs().mean() < 0.01
    assert lag24.abs().max() < 0.16 and lag24.abs().mean() < 0.05


def test_weekday_effect_is_kept_where_it_matters(clim: Climatology, year: IntensityData) -> None:
    weekend = pd.DatetimeIndex(year.values.index).day_of_week >= 5
    ratio = year.values[weekend].mean() / year.values[~weekend].mean()
    assert clim.zones["DE"].y_weekly is not None and ratio["DE"] < 0.95
    assert clim.zones["US-TEX-ERCO"].y_weekly is None and abs(ratio["US-TEX-ERCO"] - 1) < 0.03


@pytest.mark.realdata
def test_synthetic_de_2023_resembles_the_real_year(requires_data: Path) -> None:
    from greenepoch.data.intensity.readers import read_electricitymaps

    real = read_electricitymaps(requires_data, zones=["DE"]).select(
        ["DE"], utc("2023-01-01"), utc("2024-01-01"))
    clim = embedded_climatology("direct")
    x = real.values["DE"]
    draws = [synthesize(clim, ["DE"], utc("2023-01-01"), utc("2024-01-01"), seed=s)
             for s in range(5)]
    means = [d.values["DE"].mean() for d in draws]
    assert np.mean(means) == pytest.approx(x.mean(), rel=0.05)
    real_acf = clim.residual_acf(real).loc["DE"]
    acfs = pd.DataFrame([clim.residual_acf(d).loc["DE"] for d in draws])
    assert (acfs[1] - real_acf[1]).abs().max() < 0.03
    assert abs(acfs[24].mean() - real_acf[24]) < 0.1  # one year's lag-24 varies by +-0.03
    for draw, mean in zip(draws, means, strict=True):
        y = draw.values["DE"]
        assert mean == pytest.approx(x.mean(), rel=0.15)
        diurnal = np.corrcoef(x.groupby(x.index.hour).mean(), y.groupby(y.index.hour).mean())
        assert diurnal[0, 1] > 0.8
        assert y.std() == pytest.approx(x.std(), rel=0.2)
        assert y.diff().std() == pytest.approx(x.diff().std(), rel=0.25)
        for q in (0.05, 0.95):
            assert y.quantile(q) == pytest.approx(x.quantile(q), rel=0.15)
