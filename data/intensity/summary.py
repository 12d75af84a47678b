"""Per-zone summary of loaded intensities, as printed by ``greenepoch data check``."""

from __future__ import annotations

import pandas as pd
from greenepoch.data.intensity.frame import IntensityData


def summarize(data: IntensityData) -> pd.DataFrame:
    """One row per zone: span, rows, filled slots, mean/min/max, estimated share."""
    values = data.values
    last = values.index[-1] + data.step
    return pd.DataFrame(
        {
            "zone": data.zones,
            "start": values.index[0].isoformat(),
            "end": last.isoformat(),
            "rows": len(values),
            "gaps_filled": data.filled.sum().to_numpy(),
            "mean_g_per_kwh": values.mean().round(1).to_numpy(),
            "min_g_per_kwh": values.min().round(1).to_numpy(),
            "max_g_per_kwh": values.max().round(1).to_numpy(),
            "estimated_share": data.estimated_share().round(3).to_numpy(),
        }
    )
