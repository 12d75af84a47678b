"""The trees of a fitted ``HistGradientBoostingRegressor`` as plain numpy arrays.

A fitted ``gbm`` (alone or in ``blend``) is kept on disk between plans
(:mod:`planner.forecast_cache`).  Unpickling scikit-learn estimators imports
scikit-learn and SciPy's statistics, about 1 s of CPU: a third of a plan whose model
comes from the cache.  :class:`Trees` holds what prediction needs (node arrays, the
categorical bitsets and the ordinal encoding of the categorical columns) and walks
all trees at once for a small batch of rows: the same values as the regressor's
``predict`` (checked in ``tests/forecasts/test_forecasts.py``), following scikit-learn's
``_predict_from_raw_data`` rule by rule.  Large batches (calibration, backtests)
keep using scikit-learn's compiled predictor; :class:`Pickled` stores those
estimators as bytes that are only unpickled when such a batch asks for them.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np


class Trees:
    """Prediction arrays of one fitted ``HistGradientBoostingRegressor`` (one output)."""

    def __init__(self, model: Any) -> None:
        predictors = [p[0] for p in model._predictors]
        sizes = np.array([len(p.nodes) for p in predictors])
        first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        nodes = np.concatenate([p.nodes for p in predictors])
        shift = np.repeat(first, sizes)
        self.roots = first.astype(np.intp)
        self.feature = nodes["feature_idx"].astype(np.intp)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.left = (nodes["left"].astype(np.intp) + shift).astype(np.intp)
        self.right = (nodes["right"].astype(np.intp) + shift).astype(np.intp)
        self.leaf = nodes["is_leaf"].astype(bool)
        self.value = nodes["value"].astype(np.float64)
        self.nan_left = nodes["missing_go_to_left"].astype(bool)
        self.categorical = nodes["is_categorical"].astype(bool)
        bitsets = [p.raw_left_cat_bitsets for p in predictors]
        rows = np.array([len(b) for b in bitsets])
        self.bitset_row = (nodes["bitset_idx"].astype(np.intp)
                           + np.repeat(np.concatenate([[0], np.cumsum(rows)[:-1]]), sizes))
        self.bitsets = (np.concatenate(bitsets) if rows.sum() else
                        np.zeros((1, 8), dtype=np.uint32)).astype(np.int64)
        self.baseline = float(np.ravel(model._baseline_prediction)[0])
        # the regressor ordinal-encodes its categorical columns and puts them first
        is_cat = getattr(model, "is_categorical_", None)
        self.cat_columns = (np.flatnonzero(is_cat) if is_cat is not None
                            else np.array([], dtype=np.intp))
        self.categories: list[np.ndarray] = []
        if len(self.cat_columns):
            encoder = model._preprocessor.named_transformers_["encoder"]
            self.categories = [np.asarray(c, dtype=np.float64) for c in encoder.categories_]

    def _encode(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if not len(self.cat_columns):
            return X
        coded = []
        for col, cats in zip(self.cat_columns, self.categories, strict=True):
            x = X[:, col]
            i = np.clip(np.searchsorted(cats, x), 0, len(cats) - 1)
            coded.append(np.where(cats[i] == x, i, np.nan))  # unknown -> missing
        rest = np.delete(X, self.cat_columns, axis=1)
        return np.column_stack([*coded, rest])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The regressor's prediction for the rows of ``X`` (raw features)."""
        X = self._encode(X)
        n = len(X)
        node = np.repeat(self.roots[:, None], n, axis=1)  # (trees, rows)
        row = np.broadcast_to(np.arange(n)[None, :], node.shape)
        todo = np.flatnonzero(~self.leaf[node].ravel())
        flat = node.ravel()  # a view: updated in place
        rflat = row.ravel()
        while len(todo):
            at = flat[todo]
            x = X[rflat[todo], self.feature[at]]
            left = x <= self.threshold[at]
            cat = self.categorical[at]
            if cat.any():
                code = x[cat]
                known = code >= 0  # NaN compares False too
                c = np.where(known, code, 0).astype(np.int64) & 255
                word = self.bitsets[self.bitset_row[at[cat]], c >> 5]
                left[cat] = np.where(known, (word >> (c & 31)) & 1 == 1,
                                     self.nan_left[at[cat]])
            missing = np.isnan(x)
            left[missing] = self.nan_left[at[missing]]
            flat[todo] = np.where(left, self.left[at], self.right[at])
            todo = todo[~self.leaf[flat[todo]]]
        return self.value[node].sum(axis=0) + self.baseline


class Pickled:
    """An object kept as pickle bytes until :meth:`load` is called."""

    def __init__(self, obj: object) -> None:
        self.data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self) -> Any:
        return pickle.loads(self.data)
