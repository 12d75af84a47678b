"""Loading the observed intensities a forecast is fitted on and judged against."""

from __future__ import annotations

import pandas as pd
from greenepoch.data.errors import param
from greenepoch.data.intensity.resample import resample
from greenepoch.data.intensity.source import IntensitySource
from greenepoch.forecasts.base import ForecastError, span_text

HOUR = pd.Timedelta("1h")  # the models' grid


def load_values(data_dir: str | None, signal: str = "direct",
                zones: str | list[str] | None = "all", *,
                source: IntensitySource | None = None) -> pd.DataFrame:
    """gCO2eq/kWh per zone (columns) on a UTC index ``time``, hourly: everything
    ``source`` has (default: the Electricity Maps exports in ``data_dir``).

    ``zones`` is a list, comma-separated ids or cloud regions, or ``all`` (every zone
    the source has).  Data at 5, 15 or 30 minutes (the UK's and WattTime's steps) is
    brought to the models' hourly grid by the energy-weighted rule of
    :mod:`~greenepoch.data.intensity.resample`: an hour is the mean of the periods
    inside it, and only whole hours are kept.
    """
    from greenepoch.data.intensity.source import ExportFolderSource

    if source is None:
        if not data_dir:
            raise ForecastError(
                f"forecasts need measured data: pass {param('data_dir')} (a folder of "
                "Electricity Maps exports) or set GREENEPOCH_DATA"
            )
        source = ExportFolderSource(data_dir)
    if zones is None or (isinstance(zones, str) and zones.strip().lower() == "all"):
        wanted = source.zones(signal)
    else:
        from greenepoch.data.regions import resolve_zones

        wanted = resolve_zones(zones)
    loaded = source.load(wanted, None, None, signal=signal, slot=None)
    if loaded.step < HOUR:
        loaded = resample(loaded, "1h")
    return loaded.values


def parse_day(value: str, field: str, end_of_day: bool = False) -> pd.Timestamp:
    """A UTC instant from ``YYYY-MM-DD`` (midnight, or the next midnight with
    ``end_of_day``) or a full ISO 8601 time."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ForecastError(f"{field}: cannot read {value!r} as a date; use e.g. 2022-12-31") \
            from exc
    if ts is pd.NaT:
        raise ForecastError(f"{field}: empty date; use e.g. 2022-12-31")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if end_of_day and ts == ts.normalize():
        ts += pd.Timedelta("1D")
    return ts


def parse_span(value: str, field: str, positive: bool = True) -> pd.Timedelta:
    """A duration with a unit (``96h``, ``4D``, ``15min``); a bare number is refused
    (:func:`planner.timeparse.duration`).  ``positive``: refuse zero."""
    from greenepoch.data.errors import RequestError
    from greenepoch.data.timeparse import duration

    text = str(value).strip()
    try:
        span = duration(text, field)
    except RequestError as exc:
        raise ForecastError(str(exc)) from exc
    if positive and span <= pd.Timedelta(0):
        raise ForecastError(f"{field} {text}: must be longer than zero, e.g. 96h or 4D")
    return span


def history_before(values: pd.DataFrame, issue_time: pd.Timestamp,
                   field: str = "issue time") -> pd.DataFrame:
    """The rows of ``values`` before ``issue_time``, after checking that the issue is on
    the data's slot grid, has data before it and is at most one slot after the last
    observation (a later issue would forecast from stale history)."""
    index = pd.DatetimeIndex(values.index)
    step = pd.Timedelta(index[1] - index[0]) if len(index) > 1 else pd.Timedelta("1h")
    start, last = index[0], index[-1]
    when = issue_time.isoformat()
    if (issue_time - start) % step != pd.Timedelta(0):
        before = start + (issue_time - start) // step * step
        raise ForecastError(
            f"{field} {when} is off the data's {span_text(step)} slot grid: use a time on "
            f"the grid, e.g. {before.isoformat()} or {(before + step).isoformat()}"
        )
    if issue_time <= start:
        raise ForecastError(
            f"{field} {when} has no data before it (the data starts at {start.isoformat()}): "
            "pick a later issue time"
        )
    if issue_time > last + step:
        raise ForecastError(
            f"{field} {when} is after the data ends (last observation {last.isoformat()}), "
            f"so the forecast would read stale history: pick an issue time at or before "
            f"{(last + step).isoformat()}, or add newer data"
        )
    return values[index < issue_time]
