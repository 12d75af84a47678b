"""Resampling intensities from one step to another: the energy-weighted rule.

Intensity is a rate (gCO2eq/kWh), so a slot's value is what a constant power drawn
over the slot would emit per kWh: the energy-weighted (here time-weighted) mean of
the source periods overlapping it::

    x(slot) = sum_i overlap_i * v_i / sum_i overlap_i

over the source periods ``i`` (each ``[t_i, t_i + step)``) that overlap the slot.

* Going coarser (5 min to 15/30/60 min, 15 to 30 min, 30 min to 1 h) a slot is the
  mean of the periods inside it.  A slot is produced only where source periods cover
  it entirely: the partial slots at either end are dropped, never filled forward.
* Going finer (1 h to 30/15 min, 30 to 15 min) each fine slot takes the value of the
  one period covering it, the only thing known about it.  It is the same formula
  (one period overlaps), and it keeps the energy-weighted mean of every window made
  of whole slots exact: a plan on the fine slots emits what it would on the coarse
  ones.
* A source grid whose origin is off the target's boundaries (30-minute periods
  starting at :15, say) works the same: a slot straddling two periods takes their
  overlap-weighted mean.
* Flags: a slot is ``estimated`` (``filled``) if any period contributing to it was.

Slots lie on the target's boundaries counted from midnight UTC (``floor``), so a
resampled frame lines up with every other frame on that slot length.  A frame already
at the target step is returned as it is.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.frame import STEPS, IntensityData


def target_step(slot: str | pd.Timedelta) -> pd.Timedelta:
    """The slot length named ``slot`` ('5min', '15min', '30min' or '1h'), or a Timedelta."""
    if isinstance(slot, pd.Timedelta):
        if slot not in STEPS.values():
            raise DataError(f"unknown slot {slot}: use one of {', '.join(STEPS)}")
        return slot
    if slot not in STEPS:
        raise DataError(f"unknown slot {slot!r}: use one of {', '.join(STEPS)}")
    return STEPS[slot]


def _ns(td: pd.Timedelta) -> int:
    return int(td.value)


def _layout(index: pd.DatetimeIndex, step: pd.Timedelta, target: pd.Timedelta
            ) -> tuple[int, int, int, int, pd.DatetimeIndex]:
    """How periods of ``step`` starting at ``index[0]`` map onto ``target`` slots:
    the common unit's repeats per period and per slot, the units to skip before the
    first whole slot, and the slots' index (whole slots only)."""
    first = pd.Timestamp(index[0])
    offset = _ns(first - first.floor(target))
    unit = math.gcd(_ns(step), _ns(target), offset)  # offset 0: gcd of the two steps
    per_period, per_slot = _ns(step) // unit, _ns(target) // unit
    begin = first.ceil(target)
    skip = _ns(begin - first) // unit
    count = max(0, (len(index) * per_period - skip) // per_slot)
    slots = pd.date_range(begin, periods=count, freq=target, name="time")
    return per_period, per_slot, skip, count, slots


def _blocks(array: np.ndarray, per_period: int, per_slot: int, skip: int, count: int
            ) -> np.ndarray:
    """``array`` (periods x zones) as (slots, units per slot, zones)."""
    fine = np.repeat(array, per_period, axis=0)[skip: skip + count * per_slot]
    return fine.reshape(count, per_slot, *array.shape[1:])


def resample_values(values: pd.DataFrame, target: str | pd.Timedelta,
                    step: pd.Timedelta | None = None) -> pd.DataFrame:
    """``values`` (a regular UTC index of step ``step``, default its first difference;
    one column per series, no NaN) on ``target`` slots by the energy-weighted rule of
    the module docstring; the result may be empty when no slot is wholly covered."""
    goal = target_step(target)
    index = pd.DatetimeIndex(values.index)
    if step is None:
        step = pd.Timedelta(index[1] - index[0]) if len(index) > 1 else goal
    if step == goal:
        return values
    per_period, per_slot, skip, count, slots = _layout(index, step, goal)
    block = _blocks(values.to_numpy(dtype=float), per_period, per_slot, skip, count)
    mean = block.mean(axis=1)
    # a slot inside one period keeps that period's value exactly (no rounding drift)
    same = block.min(axis=1) == block.max(axis=1)
    out = np.where(same, block[:, 0], mean) if count else mean
    return pd.DataFrame(out, index=slots, columns=values.columns)


def _any(flags: pd.DataFrame, step: pd.Timedelta, goal: pd.Timedelta) -> pd.DataFrame:
    index = pd.DatetimeIndex(flags.index)
    per_period, per_slot, skip, count, slots = _layout(index, step, goal)
    block = _blocks(flags.to_numpy(dtype=bool), per_period, per_slot, skip, count)
    return pd.DataFrame(np.asarray(block.any(axis=1)), index=slots, columns=flags.columns)


def resample(data: IntensityData, slot: str | pd.Timedelta,
             step: pd.Timedelta | None = None) -> IntensityData:
    """``data`` on slots of length ``slot`` ('5min', '15min', '30min' or '1h') by the
    energy-weighted rule (module docstring); DataError when no slot is wholly covered.

    ``step``: the length of ``data``'s periods when the caller knows it; a frame of one
    row cannot tell (:attr:`IntensityData.step` says 1 h), and taking one 30-minute
    period for an hour would fill the half hour after it."""
    goal = target_step(slot)
    index = pd.DatetimeIndex(data.values.index)
    step = data.step if step is None else step
    if step == goal:
        return data
    values = resample_values(data.values, goal, step)
    if values.empty:
        raise DataError(
            f"the data ({index[0].isoformat()} .. {(index[-1] + step).isoformat()}) covers "
            f"no whole {_name(goal)} slot; give data covering at least one"
        )
    return replace(data, values=values, estimated=_any(data.estimated, step, goal),
                   filled=_any(data.filled, step, goal))


def _name(td: pd.Timedelta) -> str:
    return next((k for k, v in STEPS.items() if v == td), str(td))
