"""zone_frame: a provider series on plan slots by the energy-weighted rule, whole slots only."""

from __future__ import annotations

import pandas as pd
import pytest
from greenepoch.data.archive.source import zone_frame
from greenepoch.data.errors import DataError
from greenepoch.data.providers.records import fetched_series

T0 = pd.Timestamp("2026-12-03T12:00Z")


def half_hours(values: list[float]) -> object:
    points = [(T0 + i * pd.Timedelta("30min"), v, False) for i, v in enumerate(values)]
    return fetched_series("ukci", "GB", "direct", "actual", pd.Timedelta("30min"), points,
                          T0 + pd.Timedelta("2h"))


def test_one_half_hour_is_not_a_whole_hour() -> None:
    # a lone period must not stand for a slot longer than itself (a forward fill)
    with pytest.raises(DataError, match="whole 1h slot"):
        zone_frame(half_hours([200.0]), "1h")


def test_one_half_hour_makes_two_quarter_hours_only() -> None:
    frame = zone_frame(half_hours([200.0]), "15min")
    assert list(frame.values.index) == [T0, T0 + pd.Timedelta("15min")]
    assert list(frame.values["GB"]) == [200.0, 200.0]


def test_two_half_hours_make_their_mean_hour() -> None:
    frame = zone_frame(half_hours([100.0, 300.0]), "1h")
    assert list(frame.values.index) == [T0]
    assert list(frame.values["GB"]) == [200.0]
