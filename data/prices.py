"""Hourly electricity prices (USD/MWh): the shared day-ahead exports and user files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from greenepoch.data.errors import DataError

SHARED_TIME = "Datetime (UTC)"
SHARED_PRICE = "Price (USD/MWh)"
FILL_LIMIT = pd.Timedelta("3h")  # farthest known hour a missing hour's price is taken from


def read_price_csv(path: Path, where: str = "") -> pd.Series:
    """Read a price file: the shared format (``Datetime (UTC)``, ``Price (USD/MWh)``) or
    a plain ``time, price_usd_per_mwh`` CSV with UTC offsets."""
    label = f"{where}: " if where else ""
    if not path.is_file():
        raise DataError(f"{label}price file {path} not found")
    frame = pd.read_csv(path)
    if SHARED_TIME in frame and SHARED_PRICE in frame:
        time, price = frame[SHARED_TIME], frame[SHARED_PRICE]
    elif {"time", "price_usd_per_mwh"} <= set(frame.columns):
        time, price = frame["time"], frame["price_usd_per_mwh"]
    else:
        raise DataError(
            f"{label}{path}: row 1: expected columns 'time,price_usd_per_mwh' "
            f"(or '{SHARED_TIME},{SHARED_PRICE}'), found {list(frame.columns)}"
        )
    index = pd.DatetimeIndex(pd.to_datetime(time, utc=True, format="ISO8601"), name="time")
    series = pd.Series(pd.to_numeric(price, errors="coerce").to_numpy(), index=index)
    series = series[~series.index.duplicated()].sort_index()
    return series.dropna().rename("price_usd_per_mwh")


def shared_prices(prices_dir: Path, market: str) -> pd.Series | None:
    """All years of one market from the shared ``prices/`` folder, or None if absent."""
    files = sorted(prices_dir.glob(f"{market}_*_prices.csv"))
    if not files:
        return None
    return pd.concat([read_price_csv(f) for f in files]).sort_index()


def hourly_prices(series: pd.Series, slots: pd.DatetimeIndex) -> pd.Series:
    """Prices on the plan's slots: each slot takes the price of the hour it falls in;
    hours missing from the series are filled from the nearest known hour up to
    ``FILL_LIMIT`` away, beyond that (a series of another year, say) they are NaN."""
    hourly = series.resample("1h").mean().dropna()
    floor = slots.floor("1h")
    return pd.Series(
        hourly.reindex(floor, method="nearest", tolerance=FILL_LIMIT).to_numpy(),
        index=slots, name="price_usd_per_mwh",
    )
