"""Gradient boosting: ``HistGradientBoostingRegressor`` across all zones, the
horizon as a feature, predicting the correction to the 7-day same-slot mean; two
such models, each fitted on every other training day, averaged (bagging).

Each training row is one (zone, issue time, lead) triple.  Everything is
relative to the zone's level ``L`` (mean of the last 7 observed days), so one
model serves grids from 10 to 700 gCO2eq/kWh and follows their drift:

* target: ``(y - m7) / L`` where ``m7`` is the mean of the same slot over the 7
  most recent observed days (the ``mean7d`` baseline at the *target* slot), fitted
  with absolute-error loss (the backtest scores WAPE, and a relative absolute
  error pools zones fairly);
* known at the issue time: the last value, the values 1 h and 6 h before it, its
  3-hour change, its anomaly vs the same slot yesterday and vs the 7-day mean of
  that slot; mean/min/max/std of the last 24 h and the change of the 24 h mean
  vs the day before; standard deviation of the last 7 days; the issue's local hour;
* relative to the target slot: the same local slot on each of the 7 most recent
  observed days, the most recent observed week, their mean, median and spread,
  and yesterday minus the mean;
* calendar at the target slot in the zone's local time: hour, weekday, day type
  (workday / weekend-or-holiday via ``holidays``);
* the lead time in hours; the zone as a categorical feature (one model across
  zones: measured better than leaving the zone out).

Measured (fit once on 2021-2022, 18 zones, issues every 2nd day of 2023 H1,
median WAPE 1-24 / 25-48 / 49-96 h): the previous design (target ``y / L``,
squared loss, fewer features) 7.8 / 9.5 / 10.5 %; the richer features 6.9 / 8.8 /
10.0 %; with absolute-error loss 6.2 / 8.0 / 9.4 %; with the 3 / 28-day, same-day-type and
same-weekday slot means 6.1 / 8.0 / 9.1 %.  Twice as many training
issues or 400 iterations: within 0.1 point, at 1.5-2x the fit time.  Left out
earlier (``drop``): the month and the climatology of the training years, which
let the model replay past regimes (Brazil's 2021 drought, Chile's pre-solar
evenings).

Training issues are one every ``issue_stride`` days at a random hour (fixed seed) so the model
serves any issue hour; leads are all hours up to 48 h, every 2nd to 96 h and
every 6th to 14 days.  Those days are dealt alternately to ``n_models`` models
(own seeds and issue hours) whose predictions are averaged: the same fit cost as
one model, but less tree noise in the hour-to-hour shape that decides which hours
a plan picks.  Measured (fit on data before 2022-07, issues every 2nd day of 2022
H2, no 2023 data), one model -> two: median WAPE 6.5 / 8.9 / 9.6 / 10.7 -> 6.6 /
8.5 / 9.2 / 10.6 %, saving realised 79.5 -> 80.0 %, regret worse than the best
baseline in 14 -> 7 of 54 zone-bands.  Not kept (same protocol, see
docs/forecasts.md): one model per horizon band, per-zone models, a shape target
(deviation from the 48 h block mean), recency-weighted training, other zones'
anomalies as features, a squared-error member, and extra yesterday-vs-last-week /
profile-ratio features.

Optional known covariates (``prices=``, not in the default): published day-ahead
prices (``forecasts/prices.py``) feed a second-stage model of the bagged models'
out-of-bag residual, applied only where the target hour's price was public at the
issue time.  Measured on 2022 H2 (daily issues): WAPE 1-24h 6.56 -> 6.49 % but
median saving realised 80.0 -> 79.6 %; see docs/forecasts.md.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from greenepoch.forecasts.base import Forecaster, ForecastError, register
from greenepoch.forecasts.baselines import seasonal_lag
from greenepoch.forecasts.climatology import Climatology
from greenepoch.forecasts.prices import PRICE_FEATURES, DayAheadPrices
from greenepoch.forecasts.trees import Pickled, Trees

if TYPE_CHECKING:  # imported when fitting: a cached model predicts without scikit-learn
    from sklearn.ensemble import HistGradientBoostingRegressor

SEED = 20240
#: batches of at most this many feature rows (a plan's forecast: zones x slots) are
#: predicted by the numpy tree walk (:class:`forecasts.trees.Trees`), which spares the
#: scikit-learn import (~1 s CPU) but is slower per row.  Measured, 2 x 250 trees, walk
#: vs scikit-learn: 672 rows 0.10 vs 0.04 s, 6,720 rows 0.9 vs 0.15 s, 53,760 rows
#: 8.5 vs 1.2 s.  Larger batches, every batch once scikit-learn is imported, and every
#: batch after a model has walked ``WALK_BUDGET`` rows (many forecasts, e.g. a replay:
#: the import then costs less than walking on) use scikit-learn.
SMALL_BATCH = 5_000
WALK_BUDGET = 50_000

FEATURES = (
    "zone", "lead_h", "hour", "dow", "daytype", "issue_hour",
    "last", "last_1h", "last_6h", "change_3h", "anom_vs_yesterday", "anom_vs_7d",
    "mean_24h", "min_24h", "max_24h", "std_24h", "change_24h", "std_7d",
    "day_1", "day_2", "day_3", "day_4", "day_5", "day_6", "day_7", "week_1",
    "slot_mean_7d", "slot_median_7d", "slot_std_7d", "day_1_vs_mean",
    "slot_mean_3d", "slot_mean_28d", "slot_mean_same_daytype_14d", "week_mean_4",
)


def _window_stats(x: np.ndarray, last: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    cs = np.concatenate([[0.0], np.cumsum(x)])
    cs2 = np.concatenate([[0.0], np.cumsum(x * x)])
    lo = np.maximum(last + 1 - width, 0)
    n = last + 1 - lo
    mean = (cs[last + 1] - cs[lo]) / n
    var = np.maximum((cs2[last + 1] - cs2[lo]) / n - mean**2, 0.0)
    return mean, np.sqrt(var)


def _rolling_extreme(x: np.ndarray, last: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.maximum(last[:, None] - np.arange(width)[None, :], 0)
    w = x[idx]
    return w.min(axis=1), w.max(axis=1)


@register("gbm")
class GradientBoosting(Forecaster):
    history_needed = pd.Timedelta("400D")
    min_fit_days = 14  # fit() then needs 27 days: 13 more are held out for the quantiles
    conformal = True
    refit_after_calibration = False  # measured: a second fit costs 2x for ~no gain
    #: days learnt from at most (the latest): one year, every season once.  A plan fits on
    #: 400 days less the 91 held out, so this caps only longer histories (backtests,
    #: ``forecast predict``); 730 cost a backtest refit twice as much (docs/forecasts.md)
    train_days = 365
    max_iter = 250
    learning_rate = 0.08
    max_leaf_nodes = 63
    loss = "absolute_error"
    #: feature names left out (measured choices; see the module docstring)
    drop: tuple[str, ...] = ()
    #: one training issue every ``issue_stride`` days across all bagged models
    issue_stride = 2
    #: bagging: models each fitted on every ``n_models``-th training day (disjoint
    #: days, own issue hours and seed) and averaged; same cost as one model
    n_models = 2
    #: iterations of the price correction (only with ``prices``)
    correction_iter = 80

    def __init__(self, prices: DayAheadPrices | None = None) -> None:
        super().__init__()
        #: published day-ahead prices (known covariates, see forecasts/prices.py); ``None``
        #: (the default): intensity history only.  With prices, a second-stage model
        #: corrects the bagged models where the target hour's price is published.
        self.prices = prices

    def feature_names(self) -> tuple[str, ...]:
        return FEATURES + (PRICE_FEATURES if self.prices is not None else ())

    def _keep(self) -> np.ndarray:
        return np.array([f not in self.drop for f in self.feature_names()])

    def _steps(self) -> np.ndarray:
        ph = self.per_hour_
        return np.concatenate([np.arange(0, 48 * ph), np.arange(48 * ph, 96 * ph, 2 * ph),
                               np.arange(96 * ph, 336 * ph, 6 * ph)])

    def _fit(self, history: pd.DataFrame) -> None:
        day = int(pd.Timedelta("1D") / self.step_)
        values = history.to_numpy(dtype=float)
        if len(values) < self.min_fit_days * day:
            # fit() checks the whole history first; this guards direct calls (blend members)
            raise ForecastError(
                f"model '{self.name}' needs at least {self.min_fit_days} days of history to "
                f"learn from, got {len(values) / day:.1f}; give more history or use "
                "'climatology' or 'mean7d'"
            )
        self.clim_ = Climatology()  # only its calendar cache is used
        self.clim_._setup(history)
        self.clim_._fit(history)
        self.t0_ = history.index[0]
        first_day = max(7, len(values) // day - self.train_days)
        #: the first day of the history the trees learnt from
        self.train_from_ = self.t0_ + pd.Timedelta(days=first_day)
        stride = self.issue_stride * self.n_models
        self.models_ = []
        rows = []
        for b in range(self.n_models):
            # member b: every n_models-th training day, its own issue hours and seed
            days = np.arange(first_day + b * self.issue_stride, len(values) // day, stride)
            if len(days) == 0:
                days = np.arange(first_day, len(values) // day, self.issue_stride)
            model, X, y = self._fit_one(values, days * day, SEED + b)
            self.models_.append(model)
            rows.append((X, y))
        self.correction_ = None
        if self.prices is not None:
            self.correction_ = self._fit_correction(rows)
        self.trees_ = [Trees(m) for m in self.models_]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if isinstance(state.get("models_"), list):
            state["models_"] = Pickled(state["models_"])  # unpickled only for large batches
        return state

    def _walk(self, rows: int) -> bool:
        """Whether to predict ``rows`` feature rows with the numpy walk (see ``SMALL_BATCH``)."""
        if rows > SMALL_BATCH or "sklearn.ensemble" in sys.modules:
            return False
        walked = getattr(self, "walked_rows_", 0) + rows
        if walked > WALK_BUDGET:
            return False
        self.walked_rows_ = walked
        return True

    def _sklearn_models(self) -> list[HistGradientBoostingRegressor]:
        if isinstance(self.models_, Pickled):
            self.models_ = self.models_.load()
        return self.models_

    def _n_base(self) -> int:
        """Columns the bagged models read: the kept features without the price block."""
        return int(self._keep()[: len(FEATURES)].sum())

    def _hgb(self, seed: int, **kw: object) -> HistGradientBoostingRegressor:
        from sklearn.ensemble import HistGradientBoostingRegressor

        keep = self._keep()
        params: dict = dict(
            loss=self.loss, max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=100,
            categorical_features=[0] if keep[0] else None,
            random_state=seed, early_stopping=False,
        )
        params.update(kw)
        return HistGradientBoostingRegressor(**params)

    def _fit_one(self, values: np.ndarray, day_starts: np.ndarray, seed: int
                 ) -> tuple[HistGradientBoostingRegressor, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        last = day_starts + rng.integers(0, int(pd.Timedelta("1D") / self.step_),
                                         size=len(day_starts)) - 1
        X, lvl, base, pos = self._features(values, self.t0_, last, 1, self._steps())
        ok = np.tile((pos < len(values)).ravel(), len(self.zones_))
        y = values[np.minimum(pos, len(values) - 1)].transpose(2, 0, 1).reshape(-1)
        y = (y[ok] - base[ok]) / lvl[ok]
        X = X[ok][:, self._keep()]
        return self._hgb(seed).fit(X[:, : self._n_base()], y), X, y

    def _fit_correction(self, rows: list[tuple[np.ndarray, np.ndarray]]
                        ) -> HistGradientBoostingRegressor | None:
        """Second stage on the rows whose target price was published: learns the
        out-of-bag residual of the bagged models (member b's rows scored by the others)
        from all features including the prices."""
        col = self._n_base() + PRICE_FEATURES.index("da_published")
        Xs, rs = [], []
        for b, (X, y) in enumerate(rows):
            known = X[:, col] == 1
            others = [m for k, m in enumerate(self.models_) if k != b] or self.models_
            Xk = X[known]
            if len(Xk):
                oob = np.mean([m.predict(Xk[:, : self._n_base()]) for m in others], axis=0)
                Xs.append(Xk)
                rs.append(y[known] - oob)
        n = sum(len(x) for x in Xs)
        if n < 200:
            return None
        return self._hgb(SEED + 99, max_iter=self.correction_iter, learning_rate=0.05,
                         max_leaf_nodes=15, min_samples_leaf=min(500, max(20, n // 50))).fit(
            np.vstack(Xs), np.concatenate(rs))

    def _features(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray, offset: int,
                  steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Feature rows ordered zone-major, then issue, then step (columns as
        :meth:`feature_names`); also the level ``L``, the base ``m7`` and the target
        positions.  The issue is slot ``last + offset``: price features read only
        prices published by then."""
        ph = self.per_hour_
        day, week = 24 * ph, 168 * ph
        pos = last[:, None] + offset + steps[None, :]
        n_rows = pos.size
        lead_h = np.broadcast_to((offset + steps)[None, :] / ph, pos.shape).ravel()
        cals = self.clim_.cal_.get(t0, max(int(pos.max()) + 2, len(values) + 1))

        def back(x: np.ndarray, slots: int) -> np.ndarray:
            return x[np.maximum(last - slots, 0)]

        blocks, levels, bases = [], [], []
        for z in range(len(self.zones_)):
            x = values[:, z]
            lvl, std7 = _window_stats(x, last, week)
            lvl = np.maximum(lvl, 0.05 * self.scale_[z])
            mean24, std24 = _window_stats(x, last, day)
            prev24, _ = _window_stats(x, np.maximum(last - day, 0), day)
            mn24, mx24 = _rolling_extreme(x, last, day)
            same_slot_7d = np.mean([back(x, k * day) for k in range(1, 8)], axis=0)
            cal = cals[z]
            L = lvl[:, None]
            lag_pos = np.stack([seasonal_lag(pos, last, day, k) for k in range(28)])
            lags28 = x[lag_pos] / L
            lags = lags28[:7]
            m7 = lags.mean(axis=0)
            same = cal["daytype"][lag_pos[:14]] == cal["daytype"][pos][None]
            n_same = same.sum(axis=0)
            same_mean = np.where(n_same > 0, (lags28[:14] * same).sum(axis=0)
                                 / np.maximum(n_same, 1), m7)
            weeks = np.stack([x[seasonal_lag(pos, last, week, k)] for k in range(4)]) / L
            per_issue = np.column_stack([
                cal["hour"][last + 1], x[last], back(x, ph), back(x, 6 * ph),
                x[last] - back(x, 3 * ph), x[last] - back(x, day), x[last] - same_slot_7d,
                mean24, mn24, mx24, std24, mean24 - prev24, std7,
            ]).astype(float)
            per_issue[:, 1:] /= lvl[:, None]
            rep = np.repeat(per_issue, pos.shape[1], axis=0)
            cols = np.column_stack([
                np.full(n_rows, z, dtype=float), lead_h,
                cal["hour"][pos].ravel(), cal["dow"][pos].ravel(), cal["daytype"][pos].ravel(),
                rep[:, :1],  # issue_hour
                rep[:, 1:12],  # last .. change_24h
                rep[:, 12:],  # std_7d
                lags.reshape(7, -1).T,
                (x[seasonal_lag(pos, last, week)] / L).ravel(),
                m7.ravel(), np.median(lags, axis=0).ravel(), lags.std(axis=0).ravel(),
                (lags[0] - m7).ravel(),
                lags28[:3].mean(axis=0).ravel(), lags28.mean(axis=0).ravel(), same_mean.ravel(),
                weeks.mean(axis=0).ravel(),
            ])
            if self.prices is not None:
                da = self.prices.features(self.zones_[z], t0, self.step_, last + offset, pos)
                cols = np.column_stack([cols, da.reshape(-1, da.shape[-1])])
            blocks.append(cols.astype(np.float32))
            levels.append(np.broadcast_to(L, pos.shape).ravel())
            bases.append((m7 * L).ravel())
        return np.vstack(blocks), np.concatenate(levels), np.concatenate(bases), pos

    def _point_batch(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, horizon: int) -> np.ndarray:
        return self._point_steps(values, t0, last, offset, np.arange(horizon))

    def _point_steps(self, values: np.ndarray, t0: pd.Timestamp, last: np.ndarray,
                     offset: int, steps: np.ndarray) -> np.ndarray:
        X, lvl, base, _pos = self._features(values, t0, last, offset, steps)
        Xk = X[:, self._keep()]
        base_cols = Xk[:, : self._n_base()]
        if self._walk(len(Xk)):
            rel = np.mean([t.predict(base_cols) for t in self.trees_], axis=0)
        else:
            rel = np.mean([m.predict(base_cols) for m in self._sklearn_models()], axis=0)
        correction = getattr(self, "correction_", None)
        if correction is not None:
            known = Xk[:, self._n_base() + PRICE_FEATURES.index("da_published")] == 1
            if known.any():
                rel[known] += correction.predict(Xk[known])
        pred = rel * lvl + base
        return pred.reshape(len(self.zones_), len(last), len(steps)).transpose(1, 2, 0)
