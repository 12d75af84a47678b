"""Blend: per zone and horizon bucket, a convex combination of the gradient boosting
model, the climatology and the 7-day mean.

The weights are chosen on the held-out calibration window (a grid of step 0.1 on
the simplex), so the blend relaxes toward the climatology as the lead time grows
and covers 1 hour to 14 days.  The criterion is decision-aware: absolute error
plus ``SHAPE_WEIGHT`` times the absolute error of the *shape* (forecast and truth
each minus their mean over the 48 h block of lead time the slot falls in), i.e.
how well the blend orders the hours of a 48 h window, which is what "run in the
8 lowest of the next 48 h" rewards.  Between bucket centres the weights are
interpolated linearly in lead time, so the blend has no level jumps at bucket
edges that would reorder hours inside a window.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from greenepoch.forecasts.base import BUCKETS_H, Forecaster, bucket_of, register
from greenepoch.forecasts.baselines import MeanLast7Days
from greenepoch.forecasts.climatology import Climatology
from greenepoch.forecasts.gbm import GradientBoosting
from greenepoch.forecasts.prices import DayAheadPrices

#: weight of the 48 h shape error beside the absolute error when choosing weights
SHAPE_WEIGHT = 1.0
#: block of lead time (hours) the shape is taken over: the planner's 48 h window
SHAPE_BLOCK_H = 48
GRID = np.array([w for w in itertools.product(np.linspace(0, 1, 11), repeat=2)
                 if w[0] + w[1] <= 1 + 1e-9])


@register("blend")
class Blend(Forecaster):
    history_needed = pd.Timedelta("400D")
    min_fit_days = GradientBoosting.min_fit_days  # its gbm member fits on the same days
    conformal = True
    refit_after_calibration = False
    _cache: tuple[tuple, np.ndarray] | None = None

    def __init__(self, prices: DayAheadPrices | None = None) -> None:
        super().__init__()
        #: published day-ahead prices handed to the gradient-boosting member
        self.prices = prices

    def _members(self) -> list[Forecaster]:
        return [GradientBoosting(self.prices), Climatology(), MeanLast7Days()]

    def _fit(self, history: pd.DataFrame) -> None:
        self.members_ = self._members()
        for m in self.members_:
            m._setup(history)
            m._fit(history)
        if not hasattr(self, "weights_"):
            # until calibrated: all weight on the first member
            self.weights_ = np.zeros((len(self.zones_), len(BUCKETS_H), len(self.members_)))
            self.weights_[:, :, 0] = 1.0

    def _member_points(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                       offset: int, steps: np.ndarray) -> np.ndarray:
        key = (id(values), values.shape, last.tobytes(), offset, steps.tobytes())
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]  # the calibration window, asked twice by the base class
        return np.stack([m._point_steps(values, t0, last, offset, steps)
                         for m in self.members_], axis=-1)

    def _calibrate(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                   steps: np.ndarray) -> None:
        preds = self._member_points(values, t0, last, 1, steps)  # (n, steps, Z, M)
        self._cache = ((id(values), values.shape, last.tobytes(), 1, steps.tobytes()), preds)
        pos = last[:, None] + 1 + steps[None, :]
        ok = pos < len(values)
        truth = np.where(ok[..., None], values[np.minimum(pos, len(values) - 1)], np.nan)
        b = bucket_of(np.ceil((steps + 1) / self.per_hour_))
        weights = np.column_stack([GRID, 1 - GRID.sum(axis=1)])  # (G, 3)
        block = SHAPE_BLOCK_H * self.per_hour_
        shape_p = _block_demean(preds, block, steps)
        shape_t = _block_demean(truth, block, steps)
        for k in range(len(BUCKETS_H)):
            sel = b == k
            if not sel.any():
                self.weights_[:, k] = self.weights_[:, max(k - 1, 0)]
                continue
            for z in range(len(self.zones_)):
                p = preds[:, sel, z, :].reshape(-1, preds.shape[-1])
                t = truth[:, sel, z].reshape(-1)
                sp = shape_p[:, sel, z, :].reshape(-1, preds.shape[-1])
                st = shape_t[:, sel, z].reshape(-1)
                keep = ~np.isnan(t) & ~np.isnan(st) & ~np.isnan(sp).any(axis=1)
                if not keep.any():
                    keep = ~np.isnan(t)
                    sp, st = np.zeros_like(p), np.zeros_like(t)
                err = np.abs(p[keep] @ weights.T - t[keep, None]).mean(axis=0)
                err += SHAPE_WEIGHT * np.abs(sp[keep] @ weights.T - st[keep, None]).mean(axis=0)
                self.weights_[z, k] = weights[int(np.argmin(err))]

    def _fit_conformal(self, history: pd.DataFrame) -> None:
        try:
            super()._fit_conformal(history)
        finally:
            self._cache = None

    def _point_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, horizon: int) -> np.ndarray:
        return self._point_steps(values, t0, last, offset, np.arange(horizon))

    def _point_steps(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, steps: np.ndarray) -> np.ndarray:
        preds = self._member_points(values, t0, last, offset, steps)
        # step j covers lead times ((offset + j - 1) / per_hour, (offset + j) / per_hour] hours
        w = self._weights_at((offset + steps - 0.5) / self.per_hour_)  # (steps, Z, M)
        return (preds * w[None]).sum(axis=-1)

    def _weights_at(self, mid_h: np.ndarray) -> np.ndarray:
        """Weights at each slot's mid lead time (hours), ``(leads, zones, members)``:
        linear in lead time between the centres of the calibrated buckets, flat beyond."""
        lo = np.concatenate([[0], BUCKETS_H[:-1]])
        centres = ((lo + BUCKETS_H) / 2)[:-1]  # the last bucket is open-ended
        w = self.weights_[:, : len(centres), :]
        mid = np.asarray(mid_h, dtype=float)
        out = np.empty((len(mid), w.shape[0], w.shape[2]))
        for z in range(w.shape[0]):
            for m in range(w.shape[2]):
                out[:, z, m] = np.interp(mid, centres, w[z, :, m])
        return out


def _block_demean(x: np.ndarray, block: int, steps: np.ndarray | None = None) -> np.ndarray:
    """``x`` (issues, steps, ...) minus its mean over consecutive blocks of ``block``
    forecast steps (NaN-aware; a short last block uses what it has).  ``steps``: the
    forecast step of each column of ``x`` (default ``0, 1, ...``); a block's mean is
    taken over the columns whose step falls in it."""
    ids = (np.arange(x.shape[1]) if steps is None else np.asarray(steps)) // block
    out = np.empty_like(x, dtype=float)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for g in np.unique(ids):
            sel = ids == g
            out[:, sel] = x[:, sel] - np.nanmean(x[:, sel], axis=1, keepdims=True)
    return out
