"""When to start one job: the start time and zone with the lowest mean intensity.

The decision is arithmetic on a frame of carbon intensity, time x zone in
gCO2eq/kWh (a forecast's P50, or measured values), on a regular slot grid, each value
holding over its slot ``[t, t + step)``:

* a job of ``duration`` may start at ``now`` or at any slot boundary up to
  ``now + within`` (both included);
* a run's intensity is the time-weighted mean over ``[start, start + duration)``,
  which at the job's constant power is its energy-weighted mean: a slot run in part
  counts for the part run;
* the best run has the lowest P50 mean; ties go to the earliest start, then to the
  zone listed first;
* a run's P10/P90 are the means of the P10/P90 paths over it: exact when the errors
  of its slots move together, a wider band than the truth otherwise.

:func:`sbatch_begin` and :func:`at_time` write a start for ``sbatch --begin`` and
``at -t``, which read the local time zone of the machine they run on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError, param
from greenepoch.forecasts.base import span_text

#: relative tolerance under which two means tie (sums of the same slots in another order)
TIE = 1e-9


@dataclass(frozen=True)
class Run:
    """One run of the job: where, from when to when, and its mean intensity
    (gCO2eq/kWh; ``p10``/``p90`` None when the frame has no quantiles)."""

    zone: str
    start: pd.Timestamp
    end: pd.Timestamp
    p50: float
    p10: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class StartChoice:
    """The best run, and what it is compared with.

    ``now``: starting now, one run per zone (in the frame's column order);
    ``by_zone``: each zone's own best start; ``starts``: the start times considered
    (the same in every zone).
    """

    best: Run
    now: tuple[Run, ...]
    by_zone: tuple[Run, ...]
    starts: pd.DatetimeIndex

    def now_in(self, zone: str) -> Run:
        return next(run for run in self.now if run.zone == zone)

    def saving_pct(self, zone: str) -> float:
        """How much lower the best run's P50 mean is than starting now in ``zone``
        (:func:`pct_less`)."""
        return pct_less(self.now_in(zone).p50, self.best.p50)


def pct_less(base: float, value: float) -> float:
    """How much lower ``value`` is than ``base``, in % of ``base`` (0 when that is 0)."""
    return 0.0 if base <= 0 else 100.0 * (base - value) / base


def candidate_starts(now: pd.Timestamp, within: pd.Timedelta, origin: pd.Timestamp,
                     step: pd.Timedelta) -> pd.DatetimeIndex:
    """``now``, then every boundary ``origin + k * step`` in ``(now, now + within]``."""
    first = origin + -((origin - now) // step) * step  # the first boundary at or after now
    if first == now:
        first += step
    later = pd.date_range(first, now + within, freq=step)  # empty when first is later
    return pd.DatetimeIndex([now, *later], name="time").tz_convert("UTC")


def needed_span(now: pd.Timestamp, within: pd.Timedelta, duration: pd.Timedelta,
                step: pd.Timedelta) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The slots a choice reads, on a grid of ``step`` from the epoch: from the slot
    holding ``now`` to the end of the last start's run, rounded up to a slot."""
    starts = candidate_starts(now, within, now.floor(step), step)
    return now.floor(step), (starts[-1] + duration).ceil(step)


def best_start(p50: pd.DataFrame, duration: pd.Timedelta, within: pd.Timedelta,
               now: pd.Timestamp, *, p10: pd.DataFrame | None = None,
               p90: pd.DataFrame | None = None) -> StartChoice:
    """The run with the lowest mean P50 (module docstring); DataError when the frame
    does not cover every candidate run or holds NaN where one runs."""
    step = _check_frame(p50, "p50")
    for name, other in (("p10", p10), ("p90", p90)):
        if other is not None and (not other.index.equals(p50.index)
                                  or list(other.columns) != list(p50.columns)):
            raise DataError(f"{name} must have the same times and zones as p50")
    if duration <= pd.Timedelta(0):
        raise DataError(f"{param('duration')} must be longer than zero")
    if within < pd.Timedelta(0):
        raise DataError(f"{param('within')} must be zero or longer")
    if now.tzinfo is None:
        raise DataError(f"now {now} has no time zone; give it in UTC")
    now = now.tz_convert("UTC")
    origin = p50.index[0]
    stop = p50.index[-1] + step
    starts = candidate_starts(now, within, origin, step)
    if now < origin or starts[-1] + duration > stop:
        raise DataError(
            f"the intensities cover {origin.isoformat()} .. {stop.isoformat()}, but a "
            f"{span_text(duration)} job starting within {span_text(within)} of {now.isoformat()} "
            f"needs {now.isoformat()} .. {(starts[-1] + duration).isoformat()}")
    means = {name: _run_means(frame, starts, duration, step)
             for name, frame in (("p50", p50), ("p10", p10), ("p90", p90)) if frame is not None}
    zones = [str(z) for z in p50.columns]

    def run(i: int, j: int) -> Run:
        q = {name: float(m[i, j]) for name, m in means.items()}
        return Run(zones[j], starts[i], starts[i] + duration, q["p50"], q.get("p10"),
                   q.get("p90"))

    mid = means["p50"]
    i, j = _first_lowest(mid)
    by_zone = tuple(run(_first_lowest(mid[:, [k]])[0], k) for k in range(len(zones)))
    return StartChoice(run(i, j), tuple(run(0, k) for k in range(len(zones))), by_zone, starts)


def _check_frame(frame: pd.DataFrame, name: str) -> pd.Timedelta:
    """The frame's slot length, after checking its index (UTC, regular, two slots or more)."""
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None or str(idx.tz) != "UTC":
        raise DataError(f"{name} must be indexed by a tz-aware UTC DatetimeIndex")
    if len(idx) < 2 or frame.shape[1] == 0:
        raise DataError(f"{name} needs two slots or more and one zone or more")
    steps = pd.TimedeltaIndex(idx[1:] - idx[:-1])
    step = pd.Timedelta(steps[0])
    if step <= pd.Timedelta(0) or not (steps == step).all():
        raise DataError(f"{name} must have one regular, increasing step")
    return step


def _run_means(frame: pd.DataFrame, starts: pd.DatetimeIndex, duration: pd.Timedelta,
               step: pd.Timedelta) -> np.ndarray:
    """Mean of each zone's step function over ``[s, s + duration)`` for every start s:
    (starts x zones)."""
    origin = frame.index[0]
    first = int((starts[0] - origin) // step)
    last = int(-((origin - (starts[-1] + duration)) // step))  # slots up to the last end
    values = frame.to_numpy(dtype=float)[first:last]
    if np.isnan(values).any():
        raise DataError("the intensities have gaps (NaN) inside the window; fill or trim them")
    base = origin + first * step

    def integral(times: pd.DatetimeIndex) -> np.ndarray:
        # whole slots by the cumulative sum, then the part of the next slot
        size = step.as_unit("ns").value
        whole, part = np.divmod(pd.TimedeltaIndex(times - base).as_unit("ns").asi8, size)
        cum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
        nxt = values[np.minimum(whole, len(values) - 1)]
        return cum[whole] + (part / size)[:, None] * nxt

    return (integral(starts + duration) - integral(starts)) / (duration / step)


def _first_lowest(means: np.ndarray) -> tuple[int, int]:
    """(start, zone) of the lowest mean; within :data:`TIE`, the earliest start, then the
    first zone."""
    low = float(means.min())
    hits = np.argwhere(means <= low + TIE * max(1.0, abs(low)))
    i, j = hits[0]  # argwhere is in row-major order: start first, then zone
    return int(i), int(j)


def _local(ts: pd.Timestamp) -> datetime:
    """``ts`` in the machine's local time zone (``TZ``), to the second."""
    return datetime.fromtimestamp(int(ts.timestamp()))


def sbatch_begin(ts: pd.Timestamp) -> str:
    """``--begin=YYYY-MM-DDTHH:MM:SS`` in local time, as ``sbatch`` reads it."""
    return f"--begin={_local(ts):%Y-%m-%dT%H:%M:%S}"


def at_time(ts: pd.Timestamp) -> str:
    """``[[CC]YY]MMDDhhmm[.ss]`` in local time, for ``at -t``."""
    return f"{_local(ts):%Y%m%d%H%M.%S}"
