"""The forecaster contract and the registry of models by name.

Invariants every registered model keeps (checked by ``tests/forecasts/test_forecasts.py``):

* ``fit(history) -> self`` learns from a frame of past intensities (gCO2eq/kWh,
  tz-aware UTC index ``time`` at one regular step, one column per zone, no NaN).
  ``fit`` never mutates ``history`` and refuses one shorter than
  ``min_history_days()`` (4 days for conformal models, 27 for ``gbm``/``blend``).
* ``predict(issue_time, horizon)`` returns, per zone, the point forecast and
  quantiles for the slots in ``[issue_time, issue_time + horizon)``: a frame on a
  UTC index ``time`` with columns ``(zone, 'mean' | 'p10' | 'p50' | 'p90')``,
  ``p10 <= p50 <= p90`` and every value ``>= 0``.
* A model never uses data at or after ``issue_time`` (nor after
  ``issue_time - delay`` when a reporting delay is given).  ``predict`` may be
  handed newer observations (``data=``) than the fit saw: the learned parameters
  stay, the lags move on (this is how the rolling-origin backtest works).

Quantiles of the conformal models (``conformal = True``) come from held-out
residuals: ``fit`` holds back the last ``calibration_days`` of the history, fits
on the rest, forecasts the held-out days from daily 00:00 UTC issues (scored at
every slot of the first 48 h, then every 5th hour) and keeps, per zone and horizon
bucket, the P10/P50/P90 of the residual relative to the
point forecast.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from greenepoch.data.errors import GreenEpochError

QUANTILES = ("p10", "p50", "p90")
STATS = ("mean", *QUANTILES)
LEVELS = (0.1, 0.5, 0.9)
NO_DELAY = pd.Timedelta(0)

#: Reporting bands of the backtest, in hours ahead of the issue time (inclusive).
BANDS: dict[str, tuple[int, int]] = {
    "1-24h": (1, 24), "25-48h": (25, 48), "49-96h": (49, 96), "4-14d": (97, 336),
}
#: Finer horizon buckets (upper bound, hours) the conformal quantiles and blend
#: weights are calibrated on; each lies inside one reporting band.
BUCKETS_H = np.array([3, 6, 12, 24, 36, 48, 72, 96, 168, 240, 336, 10**9])
#: The calibration scores every slot up to this lead (hours) ...
CALIBRATION_DENSE_H = 48
#: ... then one slot every this many hours: a third of the 14-day predictions (the
#: bulk of a ``gbm``/``blend`` fit), measured not to change the accuracy (docs/forecasts.md)
CALIBRATION_STRIDE_H = 5


def span_text(td: pd.Timedelta) -> str:
    """A duration as the user would write it: ``14D``, ``36h``, ``15min``, ``30s``."""
    if td == pd.Timedelta(0):
        return "0"
    for unit, size in (("D", "1D"), ("h", "1h"), ("min", "1min"), ("s", "1s")):
        if td % pd.Timedelta(size) == pd.Timedelta(0):
            return f"{td // pd.Timedelta(size)}{unit}"
    return f"{td / pd.Timedelta('1s'):g}s"


def bucket_of(lead_h: np.ndarray) -> np.ndarray:
    """Bucket number of each lead time (hours ahead, 1-based)."""
    return np.searchsorted(BUCKETS_H, lead_h, side="left")


class ForecastError(GreenEpochError):
    """A forecast was asked for with unusable inputs (too little history, bad times)."""


class Forecaster:
    """Base class: public methods validate, then call ``_fit`` / ``_predict``.

    Subclasses implement either ``_predict(past, index)`` (full frame, own
    quantiles) or, with ``conformal = True``, ``_point_batch`` (point forecast
    for many issues at once; quantiles are then calibrated here).
    """

    name = "base"
    #: how much history before the issue time the model wants to be fitted on
    history_needed = pd.Timedelta("8D")
    conformal = False
    calibration_days = 91
    #: whole days the point model needs to learn from (after the calibration hold-out)
    min_fit_days = 0
    #: refit on the whole history after calibrating (costs a second fit)
    refit_after_calibration = True

    def __init__(self) -> None:
        self.history_: pd.DataFrame | None = None

    # ------------------------------------------------------------------ public
    def fit(self, history: pd.DataFrame) -> Forecaster:
        if not isinstance(history.index, pd.DatetimeIndex) or history.index.tz is None:
            raise ForecastError("history must have a tz-aware UTC DatetimeIndex")
        if history.isna().to_numpy().any():
            raise ForecastError("history contains NaN; load it through the validating loaders")
        if len(history) < 2:
            raise ForecastError(
                f"history has {len(history)} row(s); give at least a few days of data to fit on"
            )
        history = history.copy()
        self._setup(history)
        self._check_length(history)
        self.history_ = history
        if self.conformal:
            self._fit_conformal(self.history_)
        else:
            self._fit(self.history_)
        return self

    def predict(self, issue_time: pd.Timestamp, horizon: pd.Timedelta, *,
                data: pd.DataFrame | None = None,
                delay: pd.Timedelta = NO_DELAY) -> pd.DataFrame:
        """Forecast ``[issue_time, issue_time + horizon)`` from data before ``issue_time - delay``.

        ``data`` (default: the fitted history) supplies the latest observations;
        only its rows before ``issue_time - delay`` are read.
        """
        if self.history_ is None:
            raise ForecastError(f"forecaster '{self.name}' is not fitted; call fit() first")
        if issue_time.tzinfo is None:
            raise ForecastError("issue_time must be tz-aware (UTC)")
        source = self.history_ if data is None else data
        past = source[source.index < issue_time - delay]
        if past.empty:
            raise ForecastError(f"no history before {issue_time.isoformat()} to forecast from")
        step = self.step_
        if horizon < step:
            raise ForecastError(
                f"horizon {span_text(horizon)} is shorter than one slot ({span_text(step)}): "
                f"ask for at least {span_text(step)}, e.g. 96h or 4D"
            )
        index = pd.date_range(issue_time, issue_time + horizon - step, freq=step, name="time")
        return self._predict(past, index)

    def min_history_days(self) -> int:
        """Whole days of history ``fit`` needs: the point model's ``min_fit_days``
        plus, for conformal models, the held-out days (half of a short history) its
        quantiles are calibrated on; at least 4, so that the hold-out always holds a
        00:00 UTC issue (with 2-3 days it may hold none, leaving P10 = P50 = P90)."""
        if not self.conformal:
            return 0
        days = 4
        while days - min(self.calibration_days, days // 2) < self.min_fit_days:
            days += 1
        return days

    def _check_length(self, history: pd.DataFrame) -> None:
        need = self.min_history_days()
        n_day = pd.Timedelta("1D") / self.step_
        if len(history) >= need * n_day:
            return
        held = min(self.calibration_days, need // 2)
        raise ForecastError(
            f"model '{self.name}' needs at least {need} days of history ({need - held} to "
            f"fit on, {held} held out to calibrate its P10/P50/P90), got "
            f"{np.floor(10 * len(history) / n_day) / 10:.1f} days; give more history"
            + ("" if self.min_fit_days == 0 else " or use 'climatology' or 'mean7d'")
        )

    # ------------------------------------------------------------- subclassing
    def _setup(self, history: pd.DataFrame) -> None:
        """State every model needs: zones, slot length, grid origin, zone scale."""
        self.zones_ = [str(c) for c in history.columns]
        self.step_ = pd.Timedelta(history.index[1] - history.index[0])
        self.per_hour_ = max(1, int(pd.Timedelta("1h") / self.step_))
        self.scale_ = np.maximum(history.to_numpy().mean(axis=0), 1.0)

    def _fit(self, history: pd.DataFrame) -> None:
        """Learn parameters (optional)."""

    def _predict(self, past: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
        if not self.conformal:
            raise NotImplementedError
        offset = round((index[0] - past.index[-1]) / self.step_)
        values = past.reindex(columns=self.zones_).to_numpy(dtype=float)
        last = np.array([len(values) - 1])
        out = self.predict_batch(values, past.index[0], last, offset, len(index))[0]
        cols = pd.MultiIndex.from_product([self.zones_, STATS])
        frame = pd.DataFrame(out.transpose(0, 1, 2).reshape(len(index), -1), index=index,
                             columns=cols)
        return frame

    def _point_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, horizon: int) -> np.ndarray:
        """Point forecasts, shape ``(issues, horizon, zones)``.

        ``values[p]`` is the slot starting at ``t0 + p * step``; issue ``i`` may read
        only ``values[: last[i] + 1]``; its forecast step ``j`` is the slot at position
        ``last[i] + offset + j``.
        """
        raise NotImplementedError

    def _point_steps(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, steps: np.ndarray) -> np.ndarray:
        """Point forecasts at the forecast steps ``steps`` only (increasing), shape
        ``(issues, len(steps), zones)``; the same values as :meth:`_point_batch` there.
        Models whose cost grows with the steps asked (``gbm``, ``blend``) override it."""
        return self._point_batch(values, t0, last, offset, int(steps[-1]) + 1)[:, steps]

    def _calibration_steps(self, horizon: int) -> np.ndarray:
        """Forecast steps the conformal calibration scores: every slot of the first
        ``CALIBRATION_DENSE_H`` hours, then one slot every ``CALIBRATION_STRIDE_H`` hours
        (prime to 24, so the scored hours of the day rotate across days)."""
        ph = self.per_hour_
        dense = min(CALIBRATION_DENSE_H * ph, horizon)
        return np.concatenate([np.arange(dense),
                               np.arange(dense, horizon, CALIBRATION_STRIDE_H * ph)])

    # ------------------------------------------------------------ batch / quantiles
    def predict_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                      offset: int, horizon: int) -> np.ndarray:
        """Mean and quantiles for many issues: shape ``(issues, horizon, zones, 4)``.

        Used by the backtest; same reading rule as :meth:`_point_batch`.
        """
        if not self.conformal:
            return self._loop_batch(values, t0, last, offset, horizon)
        mean = np.maximum(self._point_batch(values, t0, last, offset, horizon), 0.0)
        lead_h = (offset + np.arange(horizon)) / self.per_hour_
        b = bucket_of(np.ceil(lead_h - 1e-9))
        q = self.residual_q_[:, b, :]  # (zones, horizon, 3)
        base = np.maximum(mean, self.floor_[None, None, :])
        out = np.empty((*mean.shape, 4))
        out[..., 0] = mean
        for k in range(3):
            out[..., k + 1] = np.maximum(mean + q[None, :, :, k].transpose(0, 2, 1) * base, 0)
        return out

    def _loop_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                    offset: int, horizon: int) -> np.ndarray:
        index_all = pd.date_range(t0, periods=int(last.max()) + offset + horizon,
                                  freq=self.step_, name="time")
        out = np.empty((len(last), horizon, len(self.zones_), 4))
        for i, lst in enumerate(last):
            past = pd.DataFrame(values[: lst + 1], index=index_all[: lst + 1],
                                columns=self.zones_)
            idx = index_all[lst + offset: lst + offset + horizon]
            frame = self._predict(past, idx)
            for s, stat in enumerate(STATS):
                out[i, :, :, s] = frame.xs(stat, axis=1, level=1)[self.zones_].to_numpy()
        return out

    def _fit_conformal(self, history: pd.DataFrame) -> None:
        n_day = int(pd.Timedelta("1D") / self.step_)
        days = len(history) // n_day
        cal_days = min(self.calibration_days, days // 2)
        self.floor_ = 0.05 * self.scale_
        zones = len(self.zones_)
        self.residual_q_ = np.zeros((zones, len(BUCKETS_H), 3))
        if cal_days < 1:
            self._fit(history)
            return
        cut = len(history) - cal_days * n_day
        # align the held-out issues to 00:00 UTC, as the default backtest issues
        t0 = history.index[0]
        first = cut + (-(t0 + cut * self.step_).hour * self.per_hour_) % n_day
        issues = np.arange(first, len(history) - n_day // 2, n_day)
        self._fit(history.iloc[:cut])
        if len(issues) == 0:
            return
        values = history.to_numpy(dtype=float)
        horizon = min(336 * self.per_hour_, len(history) - issues[0])
        steps = self._calibration_steps(horizon)
        self._calibrate(values, t0, issues - 1, steps)
        pred = np.maximum(self._point_steps(values, t0, issues - 1, 1, steps), 0.0)
        pos = issues[:, None] + steps[None, :]
        ok = pos < len(values)
        truth = np.where(ok[..., None], values[np.minimum(pos, len(values) - 1)], np.nan)
        base = np.maximum(pred, self.floor_[None, None, :])
        rel = (truth - pred) / base
        lead_h = np.ceil((steps + 1) / self.per_hour_)
        b = bucket_of(lead_h)
        for k in range(len(BUCKETS_H)):
            sel = b == k
            if not sel.any():
                # beyond the calibrated horizon: reuse the widest calibrated bucket
                self.residual_q_[:, k, :] = self.residual_q_[:, max(k - 1, 0), :]
                continue
            r = rel[:, sel, :].reshape(-1, zones)
            for z in range(zones):
                rz = r[:, z][~np.isnan(r[:, z])]
                if rz.size:
                    self.residual_q_[z, k, :] = np.quantile(rz, LEVELS)
        # keep widths non-decreasing with lead time (noise on sparse buckets)
        self.residual_q_[:, :, 0] = np.minimum.accumulate(self.residual_q_[:, :, 0], axis=1)
        self.residual_q_[:, :, 2] = np.maximum.accumulate(self.residual_q_[:, :, 2], axis=1)
        if self.refit_after_calibration:
            self._fit(history)

    def _calibrate(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                   steps: np.ndarray) -> None:
        """Hook: tune on the held-out window (forecast steps ``steps`` of issues ``last``)
        before residuals are taken (blends)."""


#: every registered model class by name; filled by :func:`register` as the model
#: modules are imported (``forecasts.registry`` imports the built-in ones)
REGISTRY: dict[str, Callable[..., Forecaster]] = {}


def register(name: str) -> Callable[[type[Forecaster]], type[Forecaster]]:
    def wrap(cls: type[Forecaster]) -> type[Forecaster]:
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap
