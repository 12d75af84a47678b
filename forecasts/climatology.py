"""Climatology: the zone's mean by month x local day type x local hour, fitted on the
training history itself (never the shipped profile, to stay leak-free).

The idea of :mod:`planner.intensity.climatology` (a calibrated month x hour
profile) without its noise model.  The profile is scaled toward the level of the
last 28 observed days (``level_weight``), which tracks the slow drift of a grid
(coal retirements, hydro years) that a two-year mean lags behind.  It is the
right answer beyond a few days and the anchor the blend relaxes toward.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from greenepoch.forecasts.base import Forecaster, register
from greenepoch.forecasts.baselines import target_positions
from greenepoch.forecasts.calendar import local_calendar

LEVEL_DAYS = 28


class CalendarCache:
    """Local calendars of the grid positions ``0..n`` of a model's zones."""

    def __init__(self, zones: list[str], step: pd.Timedelta) -> None:
        self.zones, self.step = zones, step
        self._key: tuple[pd.Timestamp, int] | None = None
        self._cal: list[dict[str, np.ndarray]] = []

    def get(self, t0: pd.Timestamp, n: int) -> list[dict[str, np.ndarray]]:
        if self._key is None or self._key[0] != t0 or self._key[1] < n:
            n = max(n, 64)
            times = pd.date_range(t0, periods=n, freq=self.step)
            self._cal = [local_calendar(times, z) for z in self.zones]
            self._key = (t0, n)
        return self._cal


def cell_of(cal: dict[str, np.ndarray]) -> np.ndarray:
    """Profile cell number: month x day type x hour (12 x 2 x 24)."""
    return ((cal["month"] - 1) * 2 + cal["daytype"]) * 24 + cal["hour"]


def fit_profile(values: np.ndarray, cals: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Mean per zone and cell, shape ``(zones, 576)``; empty cells fall back to the
    hour-of-day mean, then the overall mean."""
    zones = values.shape[1]
    table = np.empty((zones, 576))
    for z in range(zones):
        x, cal = values[:, z], cals[z]
        cell = cell_of({k: v[: len(x)] for k, v in cal.items()})
        s = np.bincount(cell, weights=x, minlength=576)
        n = np.bincount(cell, minlength=576)
        hour = cal["hour"][: len(x)]
        hs = np.bincount(hour, weights=x, minlength=24)
        hn = np.bincount(hour, minlength=24)
        hour_mean = np.where(hn > 0, hs / np.maximum(hn, 1), x.mean())
        fallback = np.tile(hour_mean, 24)
        table[z] = np.where(n > 0, s / np.maximum(n, 1), fallback)
    return table


@register("climatology")
class Climatology(Forecaster):
    history_needed = pd.Timedelta("400D")
    conformal = True
    refit_after_calibration = True
    level_weight = 1.0

    def _fit(self, history: pd.DataFrame) -> None:
        self.cal_ = CalendarCache(self.zones_, self.step_)
        self.t0_ = history.index[0]
        cals = self.cal_.get(self.t0_, len(history) + 400 * 24 * self.per_hour_)
        self.table_ = fit_profile(history.to_numpy(dtype=float), cals)

    def profile(self, t0: pd.Timestamp, n: int) -> np.ndarray:
        """The profile on grid positions ``0..n-1`` from ``t0``, shape ``(n, zones)``."""
        cals = self.cal_.get(t0, n)
        return np.stack([self.table_[z][cell_of(cals[z])[:n]] for z in range(len(self.zones_))],
                        axis=1)

    def level_ratio(self, values: np.ndarray, prof: np.ndarray, last: np.ndarray) -> np.ndarray:
        """Observed / profile mean over the last 28 days before each issue, ``(issues, zones)``."""
        window = LEVEL_DAYS * 24 * self.per_hour_
        cs_v = np.vstack([np.zeros(values.shape[1]), np.cumsum(values, axis=0)])
        cs_p = np.vstack([np.zeros(values.shape[1]), np.cumsum(prof[: len(values)], axis=0)])
        lo = np.maximum(last + 1 - window, 0)
        obs = cs_v[last + 1] - cs_v[lo]
        ref = cs_p[last + 1] - cs_p[lo]
        return obs / np.maximum(ref, 1e-6)

    def _point_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, horizon: int) -> np.ndarray:
        pos = target_positions(last, offset, horizon)
        prof = self.profile(t0, max(int(pos.max()) + 1, len(values)))
        ratio = self.level_ratio(values, prof, last)
        factor = 1.0 + self.level_weight * (ratio - 1.0)
        return prof[pos] * factor[:, None, :]
