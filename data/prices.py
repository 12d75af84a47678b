"""Hourly electricity prices (USD/MWh): the shared day-ahead exports and user files.

A :class:`PriceSource` hands out one market's prices (a UTC-indexed series); the
market of a zone comes from the region catalog (:func:`greenepoch.data.regions.market_code`,
the one zone-to-market table).  :class:`PriceFolder` reads a ``prices/`` folder of
``{MARKET}_{YEAR}_prices.csv`` files; :class:`CachedPrices` reads each market once.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError
from greenepoch.data.regions import market_code

SHARED_TIME = "Datetime (UTC)"
SHARED_PRICE = "Price (USD/MWh)"
#: |price| above this (USD/MWh) is refused: the shared data spans -538.8 to 8,994.1
#: (ERCOT's 2021 spike); 1e308 in a price file overflowed the solver's objective.
MAX_ABS_PRICE = 1e5
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
    values = pd.to_numeric(price, errors="coerce")
    # an empty cell is a missing hour; text or a value beyond any market is an error
    wrong = (values.isna() & price.notna()) | ~(values.abs() <= MAX_ABS_PRICE) & values.notna()
    if wrong.any():
        row = int(np.flatnonzero(wrong.to_numpy())[0])
        cell = price.iloc[row]
        shown = repr(cell) if isinstance(cell, str) else f"{float(cell):g}"
        raise DataError(
            f"{label}{path}: row {row + 2}: price {shown} is not a number from "
            f"{-MAX_ABS_PRICE:g} to {MAX_ABS_PRICE:g} USD/MWh; correct or empty the cell")
    series = pd.Series(values.to_numpy(dtype=float), index=index)
    series = series[~series.index.duplicated()].sort_index()
    return series.dropna().rename("price_usd_per_mwh")


def market_files(prices_dir: Path, market: str) -> list[Path]:
    """The yearly files of one market in a ``prices/`` folder, oldest first."""
    return sorted(prices_dir.glob(f"{market}_[0-9][0-9][0-9][0-9]_prices.csv"))


def shared_prices(prices_dir: Path, market: str) -> pd.Series | None:
    """All years of one market from the shared ``prices/`` folder, or None if absent."""
    files = market_files(prices_dir, market)
    if not files:
        return None
    return pd.concat([read_price_csv(f) for f in files]).sort_index()


def signature(files: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of ``files``: a changed file reads again."""
    out = []
    for f in sorted(files):
        st = f.stat()
        out.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(out)


class PriceSource(ABC):
    """Where day-ahead (or real-time) prices come from.

    :meth:`market` returns all known hours of one market in USD/MWh on a UTC index
    named ``time`` (a series named ``price_usd_per_mwh``), or None when the source has
    none; :meth:`zone` looks the zone's market up in the region catalog first.
    """

    name: str = "prices"

    @abstractmethod
    def market(self, market: str) -> pd.Series | None:
        """All known hours of ``market``, or None."""

    def zone(self, zone: str) -> pd.Series | None:
        """The prices of the market ``zone`` trades in (:func:`market_code`)."""
        return self.market(market_code(zone))

    def cache_key(self, market: str) -> tuple:
        """What distinguishes one read of ``market`` from another (for :class:`CachedPrices`)."""
        return (market,)


class PriceFolder(PriceSource):
    """A ``prices/`` folder of ``{MARKET}_{YEAR}_prices.csv`` files (shared format or
    ``time,price_usd_per_mwh``)."""

    name = "price-files"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def market(self, market: str) -> pd.Series | None:
        return shared_prices(self.folder, market)

    def cache_key(self, market: str) -> tuple:
        return (str(self.folder), market, signature(market_files(self.folder, market)))

    def __repr__(self) -> str:
        return f"PriceFolder({str(self.folder)!r})"


class CachedPrices(PriceSource):
    """``inner`` with each market read once (until its files change); thread-safe.
    ``reads`` counts the reads that reached ``inner``."""

    def __init__(self, inner: PriceSource) -> None:
        self.inner = inner
        self.name = inner.name
        self.reads = 0
        self._memo: dict[tuple, pd.Series | None] = {}
        self._lock = threading.Lock()

    def market(self, market: str) -> pd.Series | None:
        key = self.inner.cache_key(market)
        with self._lock:
            if key not in self._memo:
                self.reads += 1
                self._memo[key] = self.inner.market(market)
            series = self._memo[key]
        return None if series is None else series.copy()  # callers may change theirs

    def __repr__(self) -> str:
        return f"CachedPrices({self.inner!r})"


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
