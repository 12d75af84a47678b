"""The provider/model seam blend, against values computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import DataError
from greenepoch.data.providers.records import fetched_series
from greenepoch.forecasts.live import blend

T0 = pd.Timestamp("2026-01-01T00:00Z")
ISSUED = T0 - pd.Timedelta("1h")


def slots(n: int, freq: str = "1h") -> pd.DatetimeIndex:
    return pd.date_range(T0, periods=n, freq=freq, name="time")


def model(index: pd.DatetimeIndex, mean: float = 100.0, p10: float = 80.0,
          p90: float = 130.0, zones: tuple[str, ...] = ("DE",)) -> pd.DataFrame:
    cols = pd.MultiIndex.from_product([list(zones), ["mean", "p10", "p50", "p90"]])
    row = [mean, p10, mean, p90] * len(zones)
    return pd.DataFrame([row] * len(index), index=index, columns=cols)


def forecast(values: list[float], *, step: str = "1h", start: pd.Timestamp = T0,
             times: list[pd.Timestamp] | None = None, signal: str = "direct"):
    at = times or list(pd.date_range(start, periods=len(values), freq=step))
    return fetched_series("electricitymaps", "DE", signal, "forecast", pd.Timedelta(step),
                          [(t, v, False) for t, v in zip(at, values, strict=True)],
                          fetched=ISSUED, issued=ISSUED)


def test_provider_hours_then_a_linear_seam_then_the_model() -> None:
    index = slots(10)
    got = blend({"DE": forecast([200, 210, 220, 230])}, model(index), index, seam_h=4)
    # provider hours: its values; band = model spread around its mean (-20, +30)
    # seam: d = 230 - 100 = 130 carried with weights 1, 0.75, 0.5, 0.25, then 0
    p50 = [200, 210, 220, 230, 230, 197.5, 165, 132.5, 100, 100]
    assert got.p50["DE"].tolist() == p50
    assert got.p10["DE"].tolist() == [v - 20 for v in p50]
    assert got.p90["DE"].tolist() == [v + 30 for v in p50]
    assert got.origin["DE"].tolist() == ["provider"] * 4 + ["seam"] * 4 + ["model"] * 2


def test_without_a_provider_forecast_the_model_is_used_as_is() -> None:
    index = slots(3)
    got = blend({"DE": None}, model(index), index)
    assert got.p50["DE"].tolist() == [100.0] * 3
    assert got.p10["DE"].tolist() == [80.0] * 3
    assert got.p90["DE"].tolist() == [130.0] * 3
    assert set(got.origin["DE"]) == {"model"}


def test_no_seam_when_seam_h_is_zero() -> None:
    index = slots(4)
    got = blend({"DE": forecast([200, 210])}, model(index), index, seam_h=0)
    assert got.p50["DE"].tolist() == [200, 210, 100, 100]
    assert got.origin["DE"].tolist() == ["provider", "provider", "model", "model"]


def test_finer_slots_repeat_the_provider_period() -> None:
    index = slots(8, "15min")
    got = blend({"DE": forecast([200, 300])}, model(index), index, seam_h=0)
    assert got.p50["DE"].tolist() == [200] * 4 + [300] * 4
    assert set(got.origin["DE"]) == {"provider"}


def test_coarser_slots_take_the_energy_weighted_mean_of_whole_hours_only() -> None:
    index = slots(3)
    # 15-min periods 00:00..01:15: hour 0 is covered (mean 250), hour 1 only half
    got = blend({"DE": forecast([100, 200, 300, 400, 500, 600], step="15min")},
                model(index), index, seam_h=2)
    assert got.p50["DE"].tolist() == [250, 250, 175]  # d = 150, weights 1 then 0.5
    assert got.origin["DE"].tolist() == ["provider", "seam", "seam"]


def test_a_forecast_shorter_than_one_slot_leaves_it_to_the_model() -> None:
    index = slots(2)
    got = blend({"DE": forecast([300, 300], step="15min")}, model(index), index)
    assert got.origin["DE"].tolist() == ["model", "model"]
    assert got.p50["DE"].tolist() == [100.0, 100.0]


def test_short_gaps_are_interpolated_and_a_long_gap_ends_the_provider_part() -> None:
    index = slots(8)
    hours = [T0 + pd.Timedelta(h, "h") for h in (0, 1, 4)]
    got = blend({"DE": forecast([100, 130, 220], times=hours)}, model(index), index,
                seam_h=0)
    assert got.p50["DE"].tolist()[:5] == [100, 130, 160, 190, 220]  # 2 h gap bridged
    hours = [T0 + pd.Timedelta(h, "h") for h in (0, 1, 6)]
    got = blend({"DE": forecast([100, 130, 220], times=hours)}, model(index), index,
                seam_h=0)
    assert got.origin["DE"].tolist() == ["provider"] * 2 + ["model"] * 6


def test_a_forecast_starting_later_leaves_the_first_slots_to_the_model() -> None:
    index = slots(5)
    got = blend({"DE": forecast([200, 200], start=T0 + pd.Timedelta("2h"))},
                model(index), index, seam_h=2)
    assert got.origin["DE"].tolist() == ["model", "model", "provider", "provider", "seam"]
    assert got.p50["DE"].tolist() == [100, 100, 200, 200, 200]


@pytest.mark.parametrize("signal", ["direct", "marginal"])
def test_the_first_slot_is_judged_on_the_rest_of_it_from_the_forecasts_start(
        signal: str) -> None:
    index = slots(3)
    # 15-min periods from 00:30 (issued inside the first hour): 00:00 is judged on
    # 00:30..01:00 (mean of 100, 200), 01:00 on its four periods; 02:00 is not covered
    start = T0 + pd.Timedelta("30min")
    got = blend({"DE": forecast([100, 200, 300, 400, 500, 600], step="15min", start=start,
                                signal=signal)}, model(index), index, seam_h=0)
    assert got.p50["DE"].tolist()[:2] == [150, 450]
    assert got.origin["DE"].tolist()[:2] == ["provider", "provider"]
    assert got.origin["DE"].tolist()[2] == ("model" if signal == "direct" else "none")


def test_only_the_first_slot_may_be_judged_on_a_part() -> None:
    index = slots(3)
    # from 01:30: the first slot (00:00) is not reached, the second is only half covered
    start = T0 + pd.Timedelta("90min")
    got = blend({"DE": forecast([100] * 6, step="15min", start=start)}, model(index),
                index, seam_h=0)
    assert got.origin["DE"].tolist() == ["model", "model", "provider"]
    # a forecast that starts and ends inside the first slot does not cover it
    got = blend({"DE": forecast([100], step="15min", start=T0 + pd.Timedelta("15min"))},
                model(index), index, seam_h=0)
    assert got.origin["DE"].tolist() == ["model"] * 3


def test_values_are_clipped_at_zero() -> None:
    index = slots(2)
    got = blend({"DE": forecast([10, 10])}, model(index, p10=20), index)
    assert got.p10["DE"].tolist() == [0.0, 0.0]  # 10 + (20 - 100) < 0
    assert got.p50["DE"].tolist() == [10.0, 10.0]


def test_a_marginal_forecast_passes_through_and_is_never_blended() -> None:
    index = slots(4)
    got = blend({"DE": forecast([400, 450], signal="marginal")}, model(index), index)
    for frame in (got.p10, got.p50, got.p90):
        assert frame["DE"].tolist()[:2] == [400, 450]
        assert np.isnan(frame["DE"].to_numpy()[2:]).all()
    assert got.origin["DE"].tolist() == ["provider", "provider", "none", "none"]


def test_zones_are_blended_independently() -> None:
    index = slots(3)
    got = blend({"DE": forecast([200]), "FR": None}, model(index, zones=("DE", "FR")),
                index, seam_h=2)
    assert got.p50.columns.tolist() == ["DE", "FR"]
    assert got.p50["DE"].tolist() == [200, 200, 150]
    assert got.p50["FR"].tolist() == [100, 100, 100]


def test_a_model_that_does_not_cover_the_slots_is_refused() -> None:
    index = slots(4)
    with pytest.raises(DataError, match="does not cover"):
        blend({"DE": None}, model(index[:2]), index)
    with pytest.raises(DataError, match="regular"):
        blend({"DE": None}, model(index), index.delete(1))
