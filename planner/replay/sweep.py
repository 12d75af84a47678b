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

Vectorised: window sums by cumulative sums, sliding minima and per-window
partial sorts (``np.partition``) over ``sliding_window_view``, in row chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError, RequestError
from numpy.lib.stride_tricks import sliding_window_view

RECORD_KEYS = ("zone", "length_h", "slack_h", "interruptible", "starts", "baseline_g",
               "optimal_g", "saving_pct")
CHUNK_CELLS = 4_000_000  # floats per partition chunk (32 MB)


def window_sums(x: np.ndarray, length: int) -> np.ndarray:
    """``sum(x[s : s + length])`` for every ``s`` in ``0 .. N - length``."""
    csum = np.concatenate(([0.0], np.cumsum(x, dtype=float)))
    return csum[length:] - csum[:-length]


def optimal_noninterruptible(x: np.ndarray, length: int, slack: int) -> np.ndarray:
    """Per start: the least sum of ``length`` consecutive hours starting in
    ``[s, min(s + slack, N - length)]``."""
    w = window_sums(x, length)
    if slack == 0:
        return w
    padded = np.concatenate((w, np.full(slack, np.inf)))
    return sliding_window_view(padded, slack + 1).min(axis=1)


def optimal_interruptible(x: np.ndarray, length: int, slack: int) -> np.ndarray:
    """Per start: the sum of the ``length`` smallest hours in ``[s, min(s + length +
    slack, N))``."""
    n = len(x)
    starts = n - length + 1
    width = length + slack
    if length == 1:
        return optimal_noninterruptible(x, 1, slack)
    if slack == 0:
        return window_sums(x, length)
    padded = np.concatenate((np.asarray(x, dtype=float), np.full(width, np.inf)))
    view = sliding_window_view(padded, width)[:starts]
    out = np.empty(starts)
    rows = max(1, CHUNK_CELLS // width)
    for lo in range(0, starts, rows):
        block = np.partition(view[lo : lo + rows], length - 1, axis=1)
        out[lo : lo + rows] = block[:, :length].sum(axis=1)
    return out


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
                "pick shorter --lengths"
            )
        base = window_sums(x, length)
        baseline = float(base.mean())
        for slack in slacks:
            for interruptible in modes:
                fn = optimal_interruptible if interruptible else optimal_noninterruptible
                optimal = float(fn(x, length, slack).mean())
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
    """Hourly intensities of one calendar year (UTC); 15-min data is averaged."""
    start = pd.Timestamp(f"{year}-01-01", tz="UTC")
    end = pd.Timestamp(f"{year + 1}-01-01", tz="UTC")
    part = values[(values.index >= start) & (values.index < end)]
    if part.empty:
        years = sorted(set(pd.DatetimeIndex(values.index).year))
        raise DataError(f"no data in {year}; the data covers the year(s) "
                        f"{', '.join(map(str, years))}; pick one of them with --year")
    if len(part) > 1 and part.index[1] - part.index[0] < pd.Timedelta("1h"):
        part = part.resample("1h").mean()
    return part


def slack_sweep(values: pd.DataFrame, year: int, lengths: Iterable[int],
                slacks: Iterable[int], modes: Sequence[bool] = (True, False),
                tick: Callable[[], None] | None = None) -> list[dict]:
    """Records for every zone column of ``values`` (UTC index ``time``)."""
    lengths, slacks = list(lengths), list(slacks)
    if any(v < 1 for v in lengths) or any(v < 0 for v in slacks):
        raise RequestError("--lengths must be 1 h or more and --slacks 0 h or more")
    frame = year_frame(values, year)
    out: list[dict] = []
    for zone in frame.columns:
        out.extend(sweep_zone(str(zone), frame[zone].to_numpy(dtype=float), lengths, slacks,
                              modes, tick))
    return out


def brute_force(x: np.ndarray, length: int, slack: int, interruptible: bool,
                ) -> tuple[int, float, float]:
    """The definition, one start at a time (for tests): (starts, baseline_g, optimal_g)."""
    n = len(x)
    base, best = [], []
    for s in range(n - length + 1):
        window = x[s : min(s + length + slack, n)]
        base.append(x[s : s + length].sum())
        if interruptible:
            best.append(np.sort(window)[:length].sum())
        else:
            best.append(min(window[i : i + length].sum() for i in range(len(window) - length + 1)))
    return len(base), float(np.mean(base)), float(np.mean(best))
