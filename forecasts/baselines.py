"""The four baselines every model is reported beside.

* ``persistence``: the last observed value, for every slot ahead;
* ``yesterday``: the same slot of the most recent observed day (for leads beyond a
  day, the same slot of the last observed day);
* ``last_week``: the same slot of the most recent observed week;
* ``mean7d``: the mean of the same slot over the 7 most recent observed days.

All four read only observed slots and get conformal P10/P50/P90 (see
:mod:`forecasts.base`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from greenepoch.forecasts.base import Forecaster, register


def target_positions(last: np.ndarray, offset: int, horizon: int) -> np.ndarray:
    """Grid positions of the forecast slots, shape ``(issues, horizon)``."""
    return last[:, None] + offset + np.arange(horizon)[None, :]


def seasonal_lag(pos: np.ndarray, last: np.ndarray, period: int, extra: int = 0) -> np.ndarray:
    """Position of the most recent observed slot ``k * period`` before ``pos`` (plus
    ``extra`` periods further back), clipped to the start of the data."""
    k = -(-(pos - last[:, None]) // period) + extra
    return np.maximum(pos - k * period, 0)


class _Baseline(Forecaster):
    conformal = True
    refit_after_calibration = False  # nothing to learn beyond the residuals

    def _period(self, days: int) -> int:
        return int(pd.Timedelta(days=days) / self.step_)


@register("persistence")
class Persistence(_Baseline):
    def _point_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, horizon: int) -> np.ndarray:
        return np.repeat(values[last][:, None, :], horizon, axis=1)


@register("yesterday")
class SameSlotYesterday(_Baseline):
    def _point_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, horizon: int) -> np.ndarray:
        pos = target_positions(last, offset, horizon)
        return values[seasonal_lag(pos, last, self._period(1))]


@register("last_week")
class SameSlotLastWeek(_Baseline):
    def _point_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, horizon: int) -> np.ndarray:
        pos = target_positions(last, offset, horizon)
        return values[seasonal_lag(pos, last, self._period(7))]


@register("mean7d")
class MeanLast7Days(_Baseline):
    def _point_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, horizon: int) -> np.ndarray:
        pos = target_positions(last, offset, horizon)
        day = self._period(1)
        return np.mean([values[seasonal_lag(pos, last, day, m)] for m in range(7)], axis=0)
