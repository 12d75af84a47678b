"""The slack sweep: how much a job saves by waiting, for every start hour of a year.

For a zone's hourly intensities ``x[0..N)`` (one calendar year, UTC), a job of
``L`` hours and a slack of ``S`` hours, every start hour ``s`` with ``s + L <= N``
counts (``starts = N - L + 1``).  Its window is ``[s, min(s + L + S, N))``: a
window running past the end of the data keeps only the hours inside it.

* baseline: ``sum(x[s : s + L])`` (starting at once);
* optimal, interruptible: the sum of the ``L`` smallest values in the window;
* optimal, non-interruptible: the smallest sum of ``L`` consecutive values in it.

Per (zone, L, S, mode) the record is ``{zone, length_h, slack_h, interruptible,
starts, baseline_g, optimal_g, saving_pct}`` with ``baseline_g`` and
``optimal_g`` the means over starts of those sums (gCO2eq/kWh x h, i.e. g per kW
drawn) and ``saving_pct = 100 * (1 - optimal_g / baseline_g)``.

The optima are :func:`~greenepoch.solvers.single_job.cheapest_slots_sums` and
:func:`~greenepoch.solvers.single_job.cheapest_window_sums` (every start at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError, RequestError, param
from greenepoch.data.intensity.resample import resample_values
from greenepoch.solvers.single_job import cheapest_slots_sums, cheapest_window_sums, window_sums

RECORD_KEYS = ("zone", "length_h", "slack_h", "interruptible", "starts", "baseline_g",
               "optimal_g", "saving_pct")


def sweep_zone(zone: str, x: np.ndarray, lengths: Sequence[int], slacks: Sequence[int],
               modes: Sequence[bool] = (True, False),
               tick: Callable[[], None] | None = None) -> list[dict]:
    """Records for one zone (keys in :data:`RECORD_KEYS`)."""
    x = np.asarray(x, dtype=float)
    out = []
    for length in lengths:
        if length > len(x):
            raise RequestError(
                f"length {length} h is longer than the {len(x)} h of data for {zone}; "
                f"pick shorter {param('lengths')}"
            )
        base = window_sums(x, length)
        baseline = float(base.mean())
        for slack in slacks:
            for interruptible in modes:
                optimal = float((cheapest_slots_sums(x, length, length + slack)
                                 if interruptible else
                                 cheapest_window_sums(x, length, slack)).mean())
                out.append({
                    "zone": zone, "length_h": int(length), "slack_h": int(slack),
                    "interruptible": bool(interruptible), "starts": len(base),
                    "baseline_g": baseline, "optimal_g": optimal,
                    "saving_pct": 100.0 * (1.0 - optimal / baseline) if baseline > 0
                    else 0.0,
                })
                if tick is not None:
                    tick()
    return out


def year_frame(values: pd.DataFrame, year: int) -> pd.DataFrame:
    """Hourly intensities of one calendar year (UTC); finer data (5, 15, 30 min) is
    averaged to whole hours by the energy-weighted rule
    (:mod:`~greenepoch.data.intensity.resample`)."""
    start = pd.Timestamp(f"{year}-01-01", tz="UTC")
    end = pd.Timestamp(f"{year + 1}-01-01", tz="UTC")
    part = values[(values.index >= start) & (values.index < end)]
    if part.empty:
        years = sorted(set(pd.DatetimeIndex(values.index).year))
        raise DataError(f"no data in {year}; the data covers the year(s) "
                        f"{', '.join(map(str, years))}; pick one of them with {param('year')}")
    if len(part) > 1 and part.index[1] - part.index[0] < pd.Timedelta("1h"):
        part = resample_values(part, "1h")  # whole hours only, energy-weighted
    return part


def slack_sweep(values: pd.DataFrame, year: int, lengths: Iterable[int],
                slacks: Iterable[int], modes: Sequence[bool] = (True, False),
                tick: Callable[[], None] | None = None) -> list[dict]:
    """Records for every zone column of ``values`` (UTC index ``time``)."""
    lengths, slacks = list(lengths), list(slacks)
    if any(v < 1 for v in lengths) or any(v < 0 for v in slacks):
        raise RequestError(f"{param('lengths')} must be 1 h or more and {param('slacks')} 0 h "
                           "or more")
    frame = year_frame(values, year)
    out: list[dict] = []
    for zone in frame.columns:
        out.extend(sweep_zone(str(zone), frame[zone].to_numpy(dtype=float), lengths, slacks,
                              modes, tick))
    return out
