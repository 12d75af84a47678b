"""Published day-ahead electricity prices as known covariates, masked by publication time.

A day-ahead auction fixes the prices of delivery day ``D`` (in the market's local
time) on ``D - 1``; from then on they carry the market's own wind, solar and demand
expectation and are legitimately known to a forecast issued later.  Prices of
real-time markets (the hour's price is set during the hour) are known only once
the hour is over.  Invariants of :class:`DayAheadPrices`:

* prices in USD/MWh on an hourly UTC grid (``time`` = start of the delivery hour),
  one column per *carbon zone*; ``published`` holds, per slot, the UTC instant the
  price became public (day-ahead: ``D - 1`` at the market's publication time;
  real-time: the end of the delivery hour);
* :meth:`DayAheadPrices.features` returns NaN for every target hour whose price was
  published after the issue time: this is the leakage guard, and nothing else in the
  model reads the prices.

``MARKETS`` lists, per zone, the price file, time zone, market kind and a
conservative publication time (later than the usual one where sources differ); it
is read from the region catalog, the one zone-to-market table.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from greenepoch.data.errors import param
from greenepoch.data.prices import PriceFolder, PriceSource
from greenepoch.data.regions import Market, price_markets
from greenepoch.forecasts.base import ForecastError

__all__ = ["MARKETS", "PRICE_FEATURES", "DayAheadPrices", "Market", "load_prices",
           "publication_times"]

NS_PER_HOUR = 3_600_000_000_000


#: Carbon zone -> market, from the region catalog (``data/regions.toml``: the one
#: zone-to-market table).  Zones without a ``market_kind`` there (GB, NO: no file; ZA:
#: a fixed tariff with 46 distinct values, not a market) get no price features.
MARKETS: dict[str, Market] = price_markets()


def publication_times(index: pd.DatetimeIndex, market: Market) -> pd.DatetimeIndex:
    """UTC instant each hourly slot's price became public (see the module docstring)."""
    if market.kind == "real_time":
        return index + pd.Timedelta("1h")
    if market.kind != "day_ahead" or market.publish_local is None:
        raise ForecastError(f"market {market.market}: unknown kind {market.kind!r}")
    local_day = index.tz_convert(market.tz).tz_localize(None).normalize()
    at = local_day - pd.Timedelta("1D") + pd.Timedelta(market.publish_local + ":00")
    return at.tz_localize(market.tz, ambiguous=True, nonexistent="shift_forward").tz_convert(
        "UTC")


class DayAheadPrices:
    """Prices (USD/MWh) per zone on an hourly UTC grid with their publication instants."""

    def __init__(self, prices: pd.DataFrame, published: pd.DataFrame,
                 day_mean: pd.DataFrame) -> None:
        if not isinstance(prices.index, pd.DatetimeIndex) or prices.index.tz is None:
            raise ForecastError("prices must have a tz-aware UTC DatetimeIndex")
        self.zones = [str(c) for c in prices.columns]
        self.h0 = int(prices.index[0].as_unit("ns").value)
        self.price = prices.to_numpy(dtype=float)
        self.published = published.to_numpy(dtype="int64")
        self.day_mean = day_mean.to_numpy(dtype=float)
        p = np.nan_to_num(self.price)
        ok = (~np.isnan(self.price)).astype(float)
        zero = np.zeros((1, p.shape[1]))
        self._cs = np.concatenate([zero, np.cumsum(p, axis=0)])
        self._cs_abs = np.concatenate([zero, np.cumsum(np.abs(p), axis=0)])
        self._cnt = np.concatenate([zero, np.cumsum(ok, axis=0)])

    @classmethod
    def from_frame(cls, prices: pd.DataFrame,
                   markets: dict[str, Market] | None = None) -> DayAheadPrices:
        """From hourly prices per zone (columns = carbon zones in ``markets``)."""
        markets = MARKETS if markets is None else markets
        prices = prices.sort_index()
        if not isinstance(prices.index, pd.DatetimeIndex) or prices.index.tz is None:
            raise ForecastError("prices must have a tz-aware UTC DatetimeIndex")
        hours = prices.index.floor("h")
        index = pd.date_range(hours[0], hours[-1], freq="1h", name="time")
        prices = prices.groupby(hours).mean().reindex(index)
        published, day_mean = {}, {}
        for zone in prices.columns:
            m = markets[zone]
            published[zone] = publication_times(index, m).as_unit("ns").asi8
            local_day = index.tz_convert(m.tz).tz_localize(None).normalize()
            day_mean[zone] = prices[zone].groupby(local_day).transform("mean").to_numpy()
        return cls(prices, pd.DataFrame(published, index=index),
                   pd.DataFrame(day_mean, index=index))

    def features(self, zone: str, t0: pd.Timestamp, step: pd.Timedelta, issue_pos: np.ndarray,
                 target_pos: np.ndarray) -> np.ndarray:
        """Price features of target slots ``target_pos`` (issues x steps) for forecasts
        issued at slot ``issue_pos`` of a grid starting at ``t0``; ``(issues, steps, 4)``:

        ``published`` (1/0), ``(p - day mean) / s``, ``(day mean - mean of the last 7 days)
        / s``, ``(p - mean of the same hour on the 7 days before) / s``, with ``p`` the
        price of the target hour, ``s`` the mean absolute price of the 7 days before the
        issue.  Everything is NaN (``published`` 0) where the target's price was not
        public at the issue time, or the zone has no market.
        """
        out = np.full((*target_pos.shape, 4), np.nan)
        out[..., 0] = 0.0
        if zone not in self.zones:
            return out
        z = self.zones.index(zone)
        step_ns, t0_ns = int(step.as_unit("ns").value), int(t0.as_unit("ns").value)
        issue_ns = t0_ns + issue_pos.astype("int64") * step_ns
        h_t = (t0_ns + target_pos.astype("int64") * step_ns - self.h0) // NS_PER_HOUR
        n = len(self.price)
        inside = (h_t >= 0) & (h_t < n)
        hc = np.clip(h_t, 0, n - 1)
        known = inside & (self.published[hc, z] <= issue_ns[:, None])
        # the 7 days (168 h) of delivery hours wholly before the issue: all published by then
        h_i = np.clip((issue_ns - self.h0) // NS_PER_HOUR, 0, n)
        lo = np.maximum(h_i - 168, 0)
        cnt = self._cnt[h_i, z] - self._cnt[lo, z]
        with np.errstate(invalid="ignore", divide="ignore"):
            ref = (self._cs[h_i, z] - self._cs[lo, z]) / cnt
            scale = np.maximum((self._cs_abs[h_i, z] - self._cs_abs[lo, z]) / cnt, 1.0)
        p = np.where(known, self.price[hc, z], np.nan)
        dm = np.where(known, self.day_mean[hc, z], np.nan)
        back = np.stack([hc - 24 * k for k in range(1, 8)])
        lags = np.where(back >= 0, self.price[np.maximum(back, 0), z], np.nan)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            slot7 = np.nanmean(lags, axis=0)
        s = scale[:, None]
        out[..., 0] = known.astype(float)
        out[..., 1] = (p - dm) / s
        out[..., 2] = (dm - ref[:, None]) / s
        out[..., 3] = (p - slot7) / s
        return out


#: names of the columns :meth:`DayAheadPrices.features` returns, in order
PRICE_FEATURES = ("da_published", "da_vs_day_mean", "da_day_vs_7d", "da_vs_slot_7d")


def load_prices(data_dir: str | Path | None, zones: list[str] | None = None,
                markets: dict[str, Market] | None = None, *,
                source: PriceSource | None = None) -> DayAheadPrices:
    """The prices of the zones in ``markets`` (default :data:`MARKETS`) from ``source``,
    default the ``{data_dir}/prices/`` folder of ``{MARKET}_{YEAR}_prices.csv`` files;
    a market without prices leaves its zone out."""
    markets = MARKETS if markets is None else markets
    if source is None:
        root = Path(data_dir or ".") / "prices"
        if data_dir is None or not root.is_dir():
            raise ForecastError(
                f"no prices/ folder in {data_dir}; point {param('data_dir')} at the shared "
                "data")
        source = PriceFolder(root)
    cols = {}
    for zone, m in markets.items():
        if zones is not None and zone not in zones:
            continue
        series = source.market(m.market)
        if series is not None and not series.empty:
            cols[zone] = series
    if not cols:
        where = source.folder if isinstance(source, PriceFolder) else source.name
        raise ForecastError(f"no price files for the requested zones in {where}")
    return DayAheadPrices.from_frame(pd.DataFrame(cols), markets)
