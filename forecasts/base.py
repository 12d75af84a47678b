"""The forecaster contract and the registry of models by name.

``fit(history) -> self`` learns from a frame of past intensities (UTC index
``time``, one column per zone); ``predict(issue_time, horizon)`` returns, per
zone, the point forecast and quantiles for the slots in
``[issue_time, issue_time + horizon)``, as a frame with columns
``(zone, 'mean' | 'p10' | 'p50' | 'p90')``.  A model never uses data at or
after ``issue_time``.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from planner.errors import GreenEpochError

QUANTILES = ("p10", "p50", "p90")


class Forecaster:
    """Base class: public methods validate, then call ``_fit`` / ``_predict``."""

    name = "base"

    def __init__(self) -> None:
        self.history_: pd.DataFrame | None = None

    def fit(self, history: pd.DataFrame) -> Forecaster:
        if not isinstance(history.index, pd.DatetimeIndex) or history.index.tz is None:
            raise GreenEpochError("history must have a tz-aware UTC DatetimeIndex")
        if history.isna().to_numpy().any():
            raise GreenEpochError("history contains NaN; load it through the validating loaders")
        self.history_ = history.copy()
        self._fit(self.history_)
        return self

    def predict(self, issue_time: pd.Timestamp, horizon: pd.Timedelta) -> pd.DataFrame:
        if self.history_ is None:
            raise GreenEpochError(f"forecaster '{self.name}' is not fitted; call fit() first")
        if issue_time.tzinfo is None:
            raise GreenEpochError("issue_time must be tz-aware (UTC)")
        past = self.history_[self.history_.index < issue_time]
        if past.empty:
            raise GreenEpochError(f"no history before {issue_time.isoformat()} to forecast from")
        step = pd.Timedelta(past.index[1] - past.index[0]) if len(past) > 1 else pd.Timedelta("1h")
        index = pd.date_range(issue_time, issue_time + horizon - step, freq=step, name="time")
        return self._predict(past, index)

    def _fit(self, history: pd.DataFrame) -> None:
        """Learn parameters (optional)."""

    def _predict(self, past: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
        raise NotImplementedError


REGISTRY: dict[str, Callable[[], Forecaster]] = {}


def register(name: str) -> Callable[[type[Forecaster]], type[Forecaster]]:
    def wrap(cls: type[Forecaster]) -> type[Forecaster]:
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap


def get_model(name: str) -> Forecaster:
    import forecasts.seasonal  # noqa: F401  (registers the built-in models)

    if name not in REGISTRY:
        raise GreenEpochError(
            f"unknown forecast model {name!r}; available: {', '.join(sorted(REGISTRY))}"
        )
    return REGISTRY[name]()
