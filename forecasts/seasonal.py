"""Seasonal profile forecast: the mean of the same slot of day over the last 7 days.

The built-in forecast the planner uses until richer models are registered.
Quantiles come from the spread of those 7 values (empirical P10/P50/P90).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from greenepoch.forecasts.base import Forecaster, register

DAYS = 7


@register("seasonal")
class SeasonalProfile(Forecaster):
    def _predict(self, past: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
        step = index[1] - index[0] if len(index) > 1 else pd.Timedelta("1h")
        per_day = int(pd.Timedelta("1D") / step)
        recent = past.iloc[-DAYS * per_day :]
        times = pd.DatetimeIndex(recent.index)
        slot_of_day = ((times - times.normalize()) // step).to_numpy()
        target = ((index - index.normalize()) // step).to_numpy()
        out = {}
        for zone in past.columns:
            values = recent[zone].to_numpy()
            table = {q: np.zeros(per_day) for q in ("mean", "p10", "p50", "p90")}
            for s in range(per_day):
                sample = values[slot_of_day == s]
                if sample.size == 0:
                    sample = values
                table["mean"][s] = sample.mean()
                table["p10"][s], table["p50"][s], table["p90"][s] = np.quantile(
                    sample, [0.1, 0.5, 0.9]
                )
            for q, row in table.items():
                out[(zone, q)] = row[target]
        return pd.DataFrame(out, index=index)
