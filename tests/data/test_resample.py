"""The energy-weighted resampling rule (data.intensity.resample): worked cases, the
whole-slot and flag rules, and properties over random steps, origins and values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.frame import STEPS, IntensityData
from greenepoch.data.intensity.resample import resample, resample_values
from hypothesis import assume, given, settings
from hypothesis import strategies as st

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def frame(values: list[float] | np.ndarray, step: str, start: pd.Timestamp = T0,
          estimated: list[bool] | None = None, filled: list[bool] | None = None
          ) -> IntensityData:
    index = pd.date_range(start, periods=len(values), freq=step, name="time")
    v = pd.DataFrame({"Z": np.asarray(values, dtype=float)}, index=index)
    e = pd.DataFrame({"Z": estimated or [False] * len(values)}, index=index)
    f = pd.DataFrame({"Z": filled or [False] * len(values)}, index=index)
    return IntensityData(v, e, f)


def test_30min_to_1h_is_the_mean_of_each_pair() -> None:
    got = resample(frame([100, 300, 50, 70], "30min"), "1h")
    assert got.step == pd.Timedelta("1h")
    assert got.values["Z"].tolist() == [200.0, 60.0]
    assert list(got.values.index) == [T0, T0 + pd.Timedelta("1h")]


def test_5min_to_15min_30min_and_1h() -> None:
    values = np.arange(24, dtype=float)  # two hours
    assert resample(frame(values, "5min"), "15min").values["Z"].tolist() == \
        [1.0, 4.0, 7.0, 10.0, 13.0, 16.0, 19.0, 22.0]
    assert resample(frame(values, "5min"), "30min").values["Z"].tolist() == \
        [2.5, 8.5, 14.5, 20.5]
    assert resample(frame(values, "5min"), "1h").values["Z"].tolist() == [5.5, 17.5]


def test_going_finer_repeats_the_covering_value_exactly() -> None:
    values = [0.1, 123.456789, 1999.9]
    got = resample(frame(values, "1h"), "15min")
    assert got.values["Z"].tolist() == [v for v in values for _ in range(4)]
    half = resample(frame(values, "30min"), "15min")
    assert half.values["Z"].tolist() == [v for v in values for _ in range(2)]
    assert resample(frame(values, "1h"), "30min").step == pd.Timedelta("30min")


def test_partial_slots_at_either_end_are_dropped_not_filled() -> None:
    # 30-min data from 00:30 to 03:00: the hours 00:00 and 03:00 are not whole
    got = resample(frame([10, 20, 30, 40, 50], "30min", T0 + pd.Timedelta("30min")), "1h")
    assert list(got.values.index) == [T0 + pd.Timedelta("1h"), T0 + pd.Timedelta("2h")]
    assert got.values["Z"].tolist() == [25.0, 45.0]


def test_a_grid_off_the_slot_boundary_weights_by_overlap() -> None:
    # 30-min periods starting at :15; the hour 01:00-02:00 holds 15 min of the 00:45
    # period, all of 01:15 and 15 min of 01:45
    got = resample(frame([0, 1, 2, 3, 4, 5, 6, 7], "30min", T0 + pd.Timedelta("15min")), "1h")
    assert got.values["Z"].tolist() == [2.0, 4.0, 6.0]
    assert got.values.index[0] == T0 + pd.Timedelta("1h")
    # going finer off the boundary: a 15-min slot lies inside one period
    fine = resample(frame([10, 20], "1h", T0 + pd.Timedelta("30min")), "15min")
    assert fine.values["Z"].tolist() == [10.0] * 4 + [20.0] * 4


def test_flags_are_true_if_any_contributing_period_had_them() -> None:
    data = frame([1, 2, 3, 4], "30min", estimated=[False, True, False, False],
                 filled=[False, False, False, True])
    got = resample(data, "1h")
    assert got.estimated["Z"].tolist() == [True, False]
    assert got.filled["Z"].tolist() == [False, True]
    fine = resample(data, "15min")
    assert fine.estimated["Z"].tolist() == [False, False, True, True] + [False] * 4


def test_no_whole_slot_is_one_clear_error() -> None:
    with pytest.raises(DataError, match="no whole 1h slot"):
        resample(frame([1, 2], "30min", T0 + pd.Timedelta("30min")), "1h")
    with pytest.raises(DataError, match="unknown slot '2h'"):
        resample(frame([1, 2], "30min"), "2h")


def test_same_step_is_returned_as_is() -> None:
    data = frame([1, 2, 3], "30min")
    assert resample(data, "30min") is data


def test_provenance_is_kept() -> None:
    data = frame([1, 2, 3, 4], "30min")
    got = resample(IntensityData(data.values, data.estimated, data.filled, "synthetic",
                                 "marginal", provider="x"), "1h")
    assert (got.source, got.signal, got.provider) == ("synthetic", "marginal", "x")


# ---- properties -------------------------------------------------------------------

STEP_NAMES = list(STEPS)


@st.composite
def series(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.Timedelta, pd.Timedelta]:
    """A regular series at a provider step, on an origin that may be off any boundary
    (a whole number of minutes), and a target step."""
    step = STEPS[draw(st.sampled_from(STEP_NAMES))]
    target = STEPS[draw(st.sampled_from(STEP_NAMES))]
    n = draw(st.integers(min_value=int(2 * pd.Timedelta("1h") / step) + 1,
                         max_value=int(6 * pd.Timedelta("1h") / step)))
    minutes = draw(st.one_of(st.just(0), st.sampled_from([15, 30, 45]),
                             st.integers(min_value=0, max_value=59)))
    values = draw(st.lists(st.floats(min_value=0, max_value=2000, allow_nan=False),
                           min_size=n, max_size=n))
    index = pd.date_range(T0 + pd.Timedelta(minutes=minutes), periods=n, freq=step,
                          name="time")
    return pd.DataFrame({"Z": values}, index=index), step, target


def _window_mean(values: pd.DataFrame, step: pd.Timedelta, lo: pd.Timestamp,
                 hi: pd.Timestamp) -> float:
    """The exact energy-weighted mean over [lo, hi) from the periods (overlap weights)."""
    starts = pd.DatetimeIndex(values.index).as_unit("ns").asi8
    ends = starts + step.value
    overlap = np.clip(np.minimum(ends, hi.value) - np.maximum(starts, lo.value), 0, None)
    overlap = overlap.astype(float)
    return float((overlap * values["Z"].to_numpy()).sum() / overlap.sum())


@settings(max_examples=200, deadline=None)
@given(series())
def test_every_slot_is_the_overlap_weighted_mean_of_the_source(
        case: tuple[pd.DataFrame, pd.Timedelta, pd.Timedelta]) -> None:
    values, step, target = case
    got = resample_values(values, target, step)
    if step == target:
        assert got is values
        return
    covered = (values.index[0], values.index[-1] + step)
    assert len(got) > 0
    for t, v in got["Z"].items():
        assert t == t.floor(target)  # slots on the target's boundaries
        assert covered[0] <= t and t + target <= covered[1]  # wholly covered
        assert v == pytest.approx(_window_mean(values, step, t, t + target), abs=1e-9)
    # every whole slot inside the covered range is produced
    first, last = covered[0].ceil(target), covered[1].floor(target)
    assert len(got) == (last - first) // target


@settings(max_examples=200, deadline=None)
@given(series(), st.data())
def test_the_mean_over_any_whole_window_is_preserved(
        case: tuple[pd.DataFrame, pd.Timedelta, pd.Timedelta], data: st.DataObject) -> None:
    """Going coarse or fine, a window made of whole slots of both grids has the same
    energy-weighted mean before and after."""
    values, step, target = case
    got = resample_values(values, target, step)
    # windows whose ends are boundaries of both grids, inside what the result covers
    origin = values.index[0]
    edges = [t for t in pd.date_range(got.index[0], got.index[-1] + target, freq=target)
             if (t - origin) % step == pd.Timedelta(0)]
    assume(len(edges) >= 2)
    i = data.draw(st.integers(0, len(edges) - 2))
    j = data.draw(st.integers(i + 1, len(edges) - 1))
    lo, hi = edges[i], edges[j]
    before = _window_mean(values, step, lo, hi)
    after = _window_mean(got, target, lo, hi)
    assert after == pytest.approx(before, rel=1e-12, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=2000, allow_nan=False), min_size=4,
                max_size=48), st.sampled_from(["5min", "15min", "30min"]))
def test_hourly_to_finer_and_back_is_the_identity(values: list[float], fine: str) -> None:
    data = frame(values, "1h")
    back = resample(resample(data, fine), "1h")
    assert back.values["Z"].tolist() == values
