"""Resampling between 15-minute and hourly slots.

Intensity is a rate (gCO2eq/kWh): going to longer slots averages it, going to
shorter slots repeats each value over the slots it covers.  Flags follow: a
coarse slot is estimated/filled if any fine slot in it was.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.frame import SLOTS, IntensityData


def resample(data: IntensityData, slot: str) -> IntensityData:
    """Return ``data`` on slots of length ``slot`` ('15min' or '1h')."""
    if slot not in SLOTS:
        raise DataError(f"unknown slot {slot!r}: use one of {', '.join(SLOTS)}")
    target = SLOTS[slot]
    if target == data.step:
        return data
    if target > data.step:
        if (data.values.index[0] - data.values.index[0].floor(target)) != pd.Timedelta(0):
            raise DataError(
                f"data starts at {data.values.index[0]}, not on a {slot} boundary; "
                "trim it to a whole slot first"
            )
        grouper = data.values.resample(target, label="left", closed="left")
        counts = grouper.count().iloc[:, 0]
        complete = counts == int(target / data.step)
        values = grouper.mean()[complete]
        estimated = data.estimated.resample(target).max()[complete].astype(bool)
        filled = data.filled.resample(target).max()[complete].astype(bool)
    else:
        index = pd.date_range(
            data.values.index[0],
            data.values.index[-1] + data.step - target,
            freq=target,
            name="time",
        )
        values = data.values.reindex(index, method="ffill")
        estimated = data.estimated.reindex(index, method="ffill").astype(bool)
        filled = data.filled.reindex(index, method="ffill").astype(bool)
    values.index.name = "time"
    return replace(data, values=values, estimated=estimated, filled=filled)
