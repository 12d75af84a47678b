"""What the controller knows of the grid at each decision: the intensity feeds.

A :class:`Feed` answers :meth:`Feed.observe` at a decision time ``now`` with a
:class:`Reading`: the intensity of the current interval as known then, where it came
from, whether it is stale, and the P50 forecast issued at or before ``now`` (with its
issue time).  :meth:`Feed.actual` is what the controller charges an interval's energy
at, never what it decides on.

* :class:`LiveFeed`: the live providers (:class:`~greenepoch.data.live.source.LiveSource`
  with its fallback order: the next provider, the archive (stale, with its age), the
  embedded default only when allowed).  Each decision reads the latest actual; the
  forecast (:func:`~greenepoch.planner.pipeline.live_intensities`: the provider's,
  extended by the own model) is fetched again each new hour, when providers issue a new
  one.  Each change of where the values come from is a fallback note for the log.
* :class:`HistoryFeed`: accelerated history.  At a simulated time ``t`` it shows only
  what was known then: the actual of the latest *completed* slot, and the forecast
  issued at the last whole hour by the own model fitted on the history before
  ``fit_until`` (kept by :mod:`greenepoch.planner.forecast_cache`), reading the actuals
  before its issue time.  Forecasts are computed for many issues at once
  (``predict_batch``) and kept, one per issue.  :meth:`HistoryFeed.actual` is the
  recorded intensity of the interval.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError, ProviderAuthError, ProviderError, RequestError
from greenepoch.data.intensity.source import IntensitySource, source_for

if TYPE_CHECKING:
    from greenepoch.data.archive.store import Archive
    from greenepoch.data.providers.config import LiveConfig

#: forecasts are issued every hour (providers and the own model alike)
ISSUE_EVERY = pd.Timedelta("1h")
#: how far a forecast reaches when nobody asks for more
DEFAULT_HORIZON = pd.Timedelta("72h")


@dataclass(frozen=True)
class Reading:
    """One feed's answer at a decision.

    ``intensity``: g/kWh of the current interval as known now (None: nobody knows it);
    ``provenance``: ``{provider, kind: actual|forecast, stale, age_s}`` (the run log's
    field); ``forecast``: P50 g/kWh on interval slots from ``now`` (None: none);
    ``issued``: its issue time.
    """

    intensity: float | None
    provenance: dict[str, Any]
    stale: bool
    forecast: pd.Series | None
    issued: pd.Timestamp | None

    @property
    def label(self) -> str:
        """One phrase for :class:`~greenepoch.planner.run.model.Observation`: e.g.
        ``electricitymaps actual`` or ``archive actual, stale 2.5 h``."""
        p = self.provenance
        text = f"{p.get('provider') or 'no source'} {p.get('kind', 'actual')}"
        if self.stale and p.get("age_s") is not None:
            text += f", stale {p['age_s'] / 3600:.1f} h"
        elif self.stale:
            text += ", stale"
        return text


class Feed(ABC):
    """The grid as the controller sees it (see the module docstring)."""

    zone: str

    def __init__(self) -> None:
        self._notes: list[str] = []

    @abstractmethod
    def observe(self, now: pd.Timestamp) -> Reading:
        """What is known at ``now`` (UTC)."""

    @abstractmethod
    def actual(self, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
        """The intensity (g/kWh) to charge ``[start, end)`` at; None when unknown."""

    def fallbacks(self) -> list[str]:
        """The fallback notes since the last call (each one a ``fallback`` log event)."""
        notes, self._notes = self._notes, []
        return notes


def on_interval(forecast: pd.Series, now: pd.Timestamp, interval: pd.Timedelta) -> pd.Series:
    """A forecast on its own slots as values on the decision slots from ``now``: each
    slot takes the value of the forecast slot it starts in (``now`` itself the one it
    lies in); nothing past the forecast's end."""
    if forecast.empty:
        return forecast
    index = pd.DatetimeIndex(forecast.index).as_unit("ns")  # searched with clock times
    forecast = forecast.set_axis(index)
    step = index[1] - index[0] if len(index) > 1 else ISSUE_EVERY
    end = index[-1] + step
    grid = pd.date_range(now, end - pd.Timedelta(1), freq=interval, name="time")
    if grid.empty:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC", name="time"))
    values = forecast.reindex(grid, method="ffill")
    first = int(index.searchsorted(now, side="right")) - 1
    if first >= 0:
        values.iloc[0] = forecast.iloc[first]
    return values.dropna()


def mean_over(series: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
    """The time-weighted mean of a step series (each value holds from its index to the
    next) over ``[start, end)``; None when the series does not cover it all."""
    if end <= start or series.empty:
        return None
    index = pd.DatetimeIndex(series.index)
    if index.unit != "ns":
        index = index.as_unit("ns")
    step = index[1] - index[0] if len(index) > 1 else ISSUE_EVERY
    first = int(index.searchsorted(start, side="right")) - 1
    if first < 0 or start >= index[-1] + step:
        return None
    total, weight, t, i = 0.0, 0.0, start, first
    while t < end:
        if i >= len(series):
            return None
        slot_end = index[i + 1] if i + 1 < len(index) else index[i] + step
        upto = min(end, slot_end)
        value = float(series.iloc[i])
        if not math.isfinite(value):
            return None
        seconds = (upto - t).total_seconds()
        total += value * seconds
        weight += seconds
        t, i = upto, i + 1
    return total / weight if weight else None


class HistoryFeed(Feed):
    """Accelerated history over ``data`` (a data folder, a source, or None: the
    embedded synthetic default) for one ``zone`` (see the module docstring).

    ``model``: the forecast model's registry name; ``fit_until``: fit it on the history
    before this time (default: as a plan fits, the Monday of the first decision's
    week, or that decision when the history before the Monday is short);
    ``horizon``: how far each forecast reaches; ``batch``: issues forecast at once.
    """

    def __init__(self, data: str | Path | IntensitySource | None, zone: str, *,
                 signal: str = "direct", model: str = "default",
                 fit_until: pd.Timestamp | None = None,
                 horizon: pd.Timedelta = DEFAULT_HORIZON, batch: int = 48,
                 progress: Callable[[str], None] | None = None) -> None:
        super().__init__()
        from greenepoch.forecasts.registry import canonical_name, get_model

        self.source = source_for(data)
        self.zone = zone
        self.signal = signal
        self.model_name = canonical_name(model)
        get_model(self.model_name)  # an unknown name fails now, listing the known ones
        self.fit_until = fit_until
        self.horizon = horizon
        self.batch = batch
        self.progress = progress
        # the data's own slots (15, 30 or 60 min): hourly means would show a completed
        # sub-hourly slot only at the next whole hour
        loaded = self.source.load([zone], None, None, signal=signal, slot=None)
        values = loaded.values[zone].astype(float)
        values.index = pd.DatetimeIndex(values.index).as_unit("ns")  # searched with clock times
        self.values: pd.Series = values
        self.provider = loaded.provider or self.source.name
        self.step = pd.Timedelta(self.values.index[1] - self.values.index[0])
        self._model: Any = None
        self._forecasts: dict[pd.Timestamp, pd.Series] = {}

    @property
    def first(self) -> pd.Timestamp:
        return self.values.index[0]

    @property
    def end(self) -> pd.Timestamp:
        """The end of the last recorded slot."""
        return self.values.index[-1] + self.step

    def observe(self, now: pd.Timestamp) -> Reading:
        at = int(self.values.index.searchsorted(now - self.step, side="right")) - 1
        if at < 0:  # the latest slot that ended by now
            raise DataError(f"{self.source.describe()} holds no {self.zone} intensity before "
                            f"{now.isoformat()}; simulate from a later time")
        last = self.values.index[at]
        age = (now - (last + self.step)).total_seconds()
        stale = age >= self.step.total_seconds()  # a slot missing from the record
        issued = now.floor(ISSUE_EVERY)
        forecast = self._forecast_at(issued)
        return Reading(float(self.values.iloc[at]),
                       {"provider": self.provider, "kind": "actual", "stale": stale,
                        "age_s": round(age, 1)},
                       stale, forecast, issued)

    def forecast_at(self, issued: pd.Timestamp) -> pd.Series:
        """The P50 forecast issued at ``issued`` (a whole hour), on the data's slots."""
        return self._forecast_at(issued)

    def actual(self, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
        return mean_over(self.values, start, end)

    # ---------------------------------------------------------------- forecasts
    def _forecast_at(self, issued: pd.Timestamp) -> pd.Series:
        if issued not in self._forecasts:
            self._predict_from(issued)
        return self._forecasts[issued]

    def _fitted(self, issued: pd.Timestamp) -> Any:
        if self._model is None:
            from greenepoch.forecasts.registry import get_model
            from greenepoch.planner.forecast_cache import fit_cutoff, fitted_model

            needed = get_model(self.model_name).history_needed
            cutoff = self.fit_until if self.fit_until is not None else \
                fit_cutoff(issued, self.values.index[0], needed)
            if cutoff > issued:
                raise RequestError(
                    f"fit_until {cutoff.isoformat()} is after the first decision "
                    f"{issued.isoformat()}: a forecast cannot be fitted on what it predicts")
            history = self.values.to_frame()
            if history.index[0] >= cutoff:
                raise DataError(f"{self.source.describe()} holds no {self.zone} history "
                                f"before {cutoff.isoformat()} to fit the forecast model on")
            self._model = fitted_model(self.model_name, history, cutoff,
                                       progress=self.progress)
        return self._model

    def _predict_from(self, issued: pd.Timestamp) -> None:
        """Forecasts for ``batch`` hourly issues from ``issued`` on, at once."""
        model = self._fitted(issued)
        index = self.values.index
        issues = pd.date_range(issued, periods=self.batch, freq=ISSUE_EVERY)
        issues = issues[issues <= index[-1] + self.step]
        last = index.searchsorted(issues, side="left") - 1  # the last slot before each issue
        if (last < 0).any():
            raise DataError(f"{self.source.describe()} holds no {self.zone} intensity before "
                            f"{issued.isoformat()} to forecast from")
        offsets = ((issues - index[last]) // self.step).to_numpy()
        if (offsets != offsets[0]).any():  # a gap before some issue: one issue at a time
            issues, last, offsets = issues[:1], last[:1], offsets[:1]
        slots = max(1, math.ceil(self.horizon / self.step))
        values = self.values.to_numpy(dtype=float).reshape(-1, 1)
        out = model.predict_batch(values, index[0], np.asarray(last), int(offsets[0]), slots)
        for i, issue in enumerate(issues):
            grid = pd.date_range(issue, periods=slots, freq=self.step, name="time")
            self._forecasts[issue] = pd.Series(np.maximum(out[i, :, 0, 0], 0.0), index=grid,
                                               name=self.zone)


@dataclass
class _Served:
    """Where the live values came from at the last read (for the fallback notes)."""

    provider: str | None = None
    origin: str | None = None
    warned: list[str] = field(default_factory=list)


class LiveFeed(Feed):
    """The live providers for one ``zone`` (see the module docstring).

    ``config``, ``provider``, ``archive``, ``allow_default``: as for
    :class:`~greenepoch.data.live.source.LiveSource`; ``history``, ``model``: what the
    own model extending the provider forecast is fitted on and its name
    (:func:`~greenepoch.planner.pipeline.live_intensities`); ``horizon``: how far the
    forecast must reach (None: no forecast is fetched, e.g. for the threshold policy);
    ``slot``: the slots the latest actuals are read on (the decision interval, so that a
    provider answering every 5 or 15 minutes is seen at that pace; an hourly provider's
    value holds for its hour); ``clock``: now (real time; tests may pass another).
    """

    def __init__(self, zone: str, *, config: LiveConfig | None = None,
                 signal: str = "direct", provider: str | None = None,
                 archive: Archive | None = None, allow_default: bool | None = None,
                 history: str | Path | IntensitySource | None = None,
                 model: str | None = None, horizon: pd.Timedelta | None = None,
                 clock: Callable[[], pd.Timestamp] | None = None,
                 progress: Callable[[str], None] | None = None, slot: str = "1h") -> None:
        super().__init__()
        from greenepoch.data.archive.store import Archive, archive_url
        from greenepoch.data.live.source import LiveSource
        from greenepoch.data.providers.base import utc_now
        from greenepoch.data.providers.config import load_config

        self.zone = zone
        self.signal = signal
        self.provider = provider
        self.config = config or load_config()
        self.archive = archive or Archive(archive_url(self.config.archive))
        self.allow_default = allow_default
        self.history = history
        self.model = model
        self.horizon = horizon
        self.clock = clock or utc_now
        self.progress = progress
        self.slot = slot
        self._served = _Served()
        self.source = LiveSource(self.config, provider=provider, archive=self.archive,
                                 allow_default=allow_default, clock=self.clock,
                                 warn=self._served.warned.append)
        self._forecast: pd.Series | None = None
        self._issued: pd.Timestamp | None = None
        self._fetched_hour: pd.Timestamp | None = None
        self._last: float | None = None

    def observe(self, now: pd.Timestamp) -> Reading:
        self._served.warned.clear()
        try:
            data = self.source.load([self.zone], None, None, signal=self.signal,
                                    slot=self.slot)
        except ProviderAuthError:
            raise  # a refused key is the user's to fix, never a fallback
        except (ProviderError, DataError) as exc:
            self._note(None, None, f"no intensity for {self.zone}: {exc}")
            self._last = None
            return Reading(None, {"provider": None, "kind": "actual", "stale": True,
                                  "age_s": None}, True, *self._forecast_now(now))
        mark = self.source.provenance[-1]
        values = data.values[self.zone].dropna()
        step = pd.Timedelta(values.index[1] - values.index[0]) if len(values) > 1 \
            else ISSUE_EVERY
        age = max((now - (values.index[-1] + step)).total_seconds(), 0.0)
        provider = mark.provider if mark.origin != "archive" else f"archive ({mark.provider})"
        self._note(provider, mark.origin, "; ".join(self._served.warned))
        self._last = float(values.iloc[-1])
        stale_s = mark.stale_s if mark.stale_s is not None else age
        provenance = {"provider": provider, "kind": "actual", "stale": mark.stale,
                      "age_s": round(stale_s, 1)}
        return Reading(self._last, provenance, mark.stale, *self._forecast_now(now))

    def actual(self, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
        return self._last  # live: the intensity seen is the best known

    def _note(self, provider: str | None, origin: str | None, why: str) -> None:
        """A fallback note when the values now come from elsewhere than before and
        that is not a provider answering live (or the first read already falls back)."""
        served = self._served
        changed = (provider, origin) != (served.provider, served.origin)
        if changed and (origin != "live" or why):
            where = "nothing" if provider is None else f"{provider} ({origin})"
            self._notes.append(f"{why}; served by {where}" if why else f"served by {where}")
        served.provider, served.origin = provider, origin

    def _forecast_now(self, now: pd.Timestamp) -> tuple[pd.Series | None, pd.Timestamp | None]:
        """The forecast, fetched again at each new hour; the last one when that fails."""
        if self.horizon is None:
            return None, None
        hour = now.floor(ISSUE_EVERY)
        if self._fetched_hour != hour:
            self._fetched_hour = hour
            self._fetch_forecast(now)
        if self._forecast is None:
            return None, None
        return self._forecast, self._issued

    def _fetch_forecast(self, now: pd.Timestamp) -> None:
        from greenepoch.planner.pipeline import live_intensities

        assert self.horizon is not None

        try:
            got = live_intensities([self.zone], now, now + self.horizon, signal=self.signal,
                                   provider=self.provider, history=self.history,
                                   model=self.model, config=self.config,
                                   archive=self.archive, allow_default=self.allow_default,
                                   progress=self.progress, warn=lambda _m: None,
                                   clock=lambda: now)
        except ProviderAuthError:
            raise
        except (ProviderError, DataError, RequestError) as exc:
            self._notes.append(f"no new forecast at {now.isoformat()}: {exc}; keeping the "
                               "last one" if self._forecast is not None else
                               f"no forecast at {now.isoformat()}: {exc}")
            return
        self._forecast = got.judged.values[self.zone].dropna()
        issued = [p.issued for p in got.provenance if p.kind == "forecast" and p.issued]
        self._issued = min(max(issued), now) if issued else now
