"""Local-time calendar features of a zone: hour, weekday, month, day type, holidays.

Zones are looked up in the region catalog for their IANA time zone and
country; unknown zones (synthetic test data) fall back to UTC without holidays.
Holidays come from the maintained ``holidays`` package.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd


@cache
def _zone_info(zone: str) -> tuple[str, str | None]:
    try:
        from greenepoch.data.regions import load_catalog

        region = load_catalog().get(zone)
    except Exception:  # the catalog is optional for forecasting
        region = None
    if region is None:
        return "UTC", None
    return region.timezone, region.country


@cache
def _holiday_dates(country: str, years: tuple[int, ...]) -> frozenset:
    try:
        import holidays
    except ImportError:  # pragma: no cover - declared dependency
        return frozenset()
    try:
        return frozenset(holidays.country_holidays(country, years=list(years)).keys())
    except NotImplementedError:
        return frozenset()


def local_calendar(times: pd.DatetimeIndex, zone: str) -> dict[str, np.ndarray]:
    """Arrays aligned with ``times``: ``hour`` (0-23), ``dow`` (0=Mon), ``month`` (1-12),
    ``doy`` (1-366), ``holiday`` (public holiday), ``daytype`` (0 workday, 1 weekend or
    holiday), all in the zone's local time."""
    tz, country = _zone_info(zone)
    local = times.tz_convert(tz)
    dow = local.day_of_week.to_numpy()
    holiday = np.zeros(len(times), dtype=bool)
    if country:
        years = tuple(range(int(local.year.min()), int(local.year.max()) + 1))
        dates = _holiday_dates(country, years)
        if dates:
            days = local.tz_localize(None).normalize().date
            holiday = np.fromiter((d in dates for d in days), dtype=bool, count=len(days))
    return {
        "hour": local.hour.to_numpy(),
        "dow": dow,
        "month": local.month.to_numpy(),
        "doy": local.day_of_year.to_numpy(),
        "holiday": holiday,
        "daytype": ((dow >= 5) | holiday).astype(int),
    }
