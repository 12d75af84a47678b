"""The live forecast: the provider's forecast where it has one, our model beyond,
joined at a seam (pure: no I/O).

For each zone and slot of ``slots`` (``m`` the own model's mean, ``m10``/``m90`` its
P10/P90 at that slot, ``v`` the provider's value for it):

* **provider** (the slots the provider's forecast covers): P50 = ``v``; the band is the
  model's spread around its mean moved onto it, P10 = ``v + (m10 - m)``,
  P90 = ``v + (m90 - m)`` (the provider gives no band; the model's says how uncertain
  that lead time is).  A slot finer than the provider's period takes the value of the
  period covering it; a coarser slot the energy-weighted mean of the periods in it
  (:func:`~greenepoch.data.intensity.resample.resample`, the one rule); a slot only
  partly covered is not a provider slot, except the **first slot asked** when the
  provider's forecast starts inside it (the live commands' slot holding now: a
  forecast starts at its issue time, WattTime's at the current 5-minute mark, UK
  Carbon Intensity's at the current half hour): that slot is judged on the part from
  the forecast's first period to its end, the mean of those periods (what is before
  is past; what is left is what a decision now can affect).  Gaps up to 3 h inside the provider's
  forecast are interpolated; after a longer one the forecast is not used;
* **seam** (the ``seam_h`` hours after the provider's last slot): the model moved by
  the provider-minus-model difference at the last provider slot, ``d = v_last -
  m_last``, faded linearly to nothing: at a slot starting ``t`` hours after the
  provider's end, P50 = ``m + w d``, P10 = ``m10 + w d``, P90 = ``m90 + w d`` with
  ``w = 1 - t / seam_h`` (so the first slot after the provider carries all of ``d`` and
  the model is reached ``seam_h`` hours later);
* **model** (later slots, and every slot of a zone without a provider forecast): the
  model's mean and quantiles.

Everything is clipped at 0 g/kWh.  A **marginal** provider forecast (WattTime's MOER) is
never blended with an average-intensity model: it passes through, P10 = P50 = P90 =
``v`` on the slots it covers, and later slots are NaN with origin ``none``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError, param
from greenepoch.data.intensity.frame import SLOTS, IntensityData
from greenepoch.data.intensity.resample import resample
from greenepoch.data.intensity.validate import MAX_FILLED_GAP
from greenepoch.data.providers.records import Fetched


@dataclass(frozen=True)
class LiveForecast:
    """P10/P50/P90 in g/kWh (time x zone, on the asked slots) and where each slot's
    values came from (``origin``: ``provider``, ``seam``, ``model``, or ``none`` for a
    marginal zone after its provider's forecast)."""

    p50: pd.DataFrame
    p10: pd.DataFrame
    p90: pd.DataFrame
    origin: pd.DataFrame


def blend(provider: Mapping[str, Fetched | None], model: pd.DataFrame,
          slots: pd.DatetimeIndex, *, seam_h: float = 6.0) -> LiveForecast:
    """The live forecast on ``slots`` for the zones of ``provider`` (see the module
    docstring).  ``model``: the own model's ``predict()`` frame, columns
    ``(zone, stat)`` with stats ``mean``, ``p10``, ``p90``, covering ``slots`` for every
    zone whose provider forecast is not marginal."""
    slot = _slot_name(slots)
    if seam_h < 0:
        raise DataError(f"{param('seam_h')} must be 0 or more hours, found {seam_h}")
    zones = list(provider)
    out = {name: pd.DataFrame(np.nan, index=slots, columns=zones)
           for name in ("p50", "p10", "p90")}
    origin = pd.DataFrame("model", index=slots, columns=zones)
    for zone in zones:
        fetched = provider[zone]
        given = (pd.Series(np.nan, index=slots) if fetched is None
                 else _on_slots(fetched, slot, slots))
        if fetched is not None and fetched.signal == "marginal":
            for frame in out.values():
                frame[zone] = given
            origin[zone] = np.where(given.notna(), "provider", "none")
            continue
        m, m10, m90 = (_model(model, zone, stat, slots) for stat in ("mean", "p10", "p90"))
        shift = np.zeros(len(slots))
        at = np.full(len(slots), "model", dtype=object)
        run = _first_run(given)
        if run is not None:
            first, stop = run
            shift[first:stop] = (given - m).to_numpy()[first:stop]
            at[first:stop] = "provider"
            if seam_h > 0 and stop < len(slots):
                hours = (slots[stop:] - slots[stop]) / pd.Timedelta("1h")
                weight = np.clip(1 - np.asarray(hours) / seam_h, 0, 1)
                shift[stop:] = shift[stop - 1] * weight
                at[stop:][weight > 0] = "seam"
        out["p50"][zone] = m + shift
        out["p10"][zone] = m10 + shift
        out["p90"][zone] = m90 + shift
        origin[zone] = at
    p50, p10, p90 = (out[k].clip(lower=0) for k in ("p50", "p10", "p90"))
    return LiveForecast(p50, p10, p90, origin)


def _first_run(given: pd.Series) -> tuple[int, int] | None:
    """``[first, stop)``: the positions of the first run of slots the provider covers
    (a slot it does not cover ends its part: the model takes over from there)."""
    if not given.notna().any():
        return None
    covered = given.notna().to_numpy()
    first = int(covered.argmax())
    rest = ~covered[first:]
    return first, first + (int(rest.argmax()) if rest.any() else len(rest))


def _on_slots(fetched: Fetched, slot: str, slots: pd.DatetimeIndex) -> pd.Series:
    """The provider's values on ``slots`` (NaN where it has none): its series with gaps
    up to 3 h interpolated, cut at a longer gap, then resampled to ``slot``."""
    values = fetched.values
    if values.empty:
        return pd.Series(np.nan, index=slots)
    gaps = np.diff(pd.DatetimeIndex(values.index).as_unit("ns").asi8) - fetched.step.value
    too_long = np.flatnonzero(gaps > MAX_FILLED_GAP.value)
    if len(too_long):
        values = values.iloc[: too_long[0] + 1]
    full = pd.date_range(values.index[0], values.index[-1], freq=fetched.step, name="time")
    values = values.reindex(full).interpolate(method="time")
    flags = pd.DataFrame(False, index=values.index, columns=["v"])
    frame = IntensityData(values.to_frame("v"), flags, flags.copy(), "real", fetched.signal)
    try:
        on_slots = resample(frame, slot).values["v"].reindex(slots)
    except DataError:  # not one whole slot
        on_slots = pd.Series(np.nan, index=slots)
    head = _rest_of_first_slot(values, fetched.step, slots)
    if head is not None:
        on_slots.iloc[0] = head
    return on_slots


def _rest_of_first_slot(values: pd.Series, step: pd.Timedelta,
                        slots: pd.DatetimeIndex) -> float | None:
    """The first slot's value when the forecast (``values``, regular, of period
    ``step``) starts inside it and covers the rest of it: the mean of its periods from
    there on (equal periods: the energy-weighted mean); None otherwise."""
    first, width = slots[0], slots[1] - slots[0]
    begins = values.index[0]
    if step > width or not first < begins < first + width:
        return None
    inside = values[values.index < first + width]
    if inside.index[-1] + step != first + width:  # ends inside it too, or off the grid
        return None
    return float(inside.mean())


def _model(model: pd.DataFrame, zone: str, stat: str, slots: pd.DatetimeIndex) -> pd.Series:
    if (zone, stat) not in model.columns:
        raise DataError(f"the model forecast has no {stat} for zone {zone}")
    column = model[(zone, stat)].reindex(slots)
    if column.isna().any():
        missing = column.index[column.isna()][0]
        raise DataError(
            f"the model forecast for {zone} does not cover {missing.isoformat()}; predict "
            "over every slot asked for")
    return column.astype(float)


def _slot_name(slots: pd.DatetimeIndex) -> str:
    if len(slots) < 2 or slots.tz is None or str(slots.tz) != "UTC":
        raise DataError("the slots must be at least two UTC times")
    steps = set(np.diff(slots.as_unit("ns").asi8))
    width = pd.Timedelta(int(steps.pop()), "ns") if len(steps) == 1 else None
    names = [name for name, size in SLOTS.items() if size == width]
    if not names:
        raise DataError(f"the slots must be regular, one of {', '.join(SLOTS)}")
    return names[0]
