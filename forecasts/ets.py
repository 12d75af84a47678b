"""Holt-Winters exponential smoothing (statsmodels ``ExponentialSmoothing``): additive
daily seasonality, damped additive trend, refitted on the last 21 days at every issue.

Kept as the statsmodels candidate the issue asks to measure.  On the shared data it
does not earn its place (see docs/forecast-accuracy.md): it is slower than the
gradient boosting model by two orders of magnitude and less accurate at every
horizon, so no blend uses it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from greenepoch.forecasts.base import Forecaster, register

WINDOW_DAYS = 21


@register("ets")
class HoltWinters(Forecaster):
    history_needed = pd.Timedelta("400D")
    conformal = True
    refit_after_calibration = False
    calibration_days = 28  # every issue refits per zone; keep calibration affordable

    def _point_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, horizon: int) -> np.ndarray:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        day = int(pd.Timedelta("1D") / self.step_)
        out = np.empty((len(last), horizon, values.shape[1]))
        for i, lst in enumerate(last):
            window = values[max(0, lst + 1 - WINDOW_DAYS * day): lst + 1]
            for z in range(values.shape[1]):
                x = window[:, z]
                if len(x) < 2 * day + 2 or np.ptp(x) < 1e-9:
                    out[i, :, z] = x[-1]
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = ExponentialSmoothing(
                        x, trend="add", damped_trend=True, seasonal="add",
                        seasonal_periods=day, initialization_method="estimated",
                    ).fit()
                    out[i, :, z] = fit.forecast(offset - 1 + horizon)[offset - 1:]
        return out
