"""Loading the observed intensities a forecast is fitted on and judged against."""

from __future__ import annotations

import pandas as pd

from forecasts.base import ForecastError


def load_values(data_dir: str | None, signal: str = "direct",
                zones: str | list[str] | None = "all") -> pd.DataFrame:
    """gCO2eq/kWh per zone (columns) on a UTC index ``time``, from Electricity Maps exports.

    ``zones`` is a list, comma-separated ids or cloud regions, or ``all`` (every zone
    in the folder).
    """
    from planner.intensity.readers import read_electricitymaps

    if not data_dir:
        raise ForecastError(
            "forecasts need measured data: pass --data DIR (a folder of Electricity Maps "
            "exports) or set GREENEPOCH_DATA"
        )
    wanted: list[str] | None = None
    if zones is not None and not (isinstance(zones, str) and zones.strip().lower() == "all"):
        from planner.regions import resolve_zones

        wanted = resolve_zones(zones)
    loaded = read_electricitymaps(data_dir, signal=signal, zones=wanted)
    values = loaded.values
    if wanted is not None:
        missing = [z for z in wanted if z not in values.columns]
        if missing:
            raise ForecastError(
                f"zone(s) {', '.join(missing)} not found in {data_dir}; it holds "
                f"{', '.join(map(str, values.columns))}"
            )
        values = values[wanted]
    return values


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
