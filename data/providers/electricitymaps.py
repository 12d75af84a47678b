"""Electricity Maps API v3: latest, history (last 24 h), past-range and forecast.

Documentation read (cite these when the API changes):

* https://portal.electricitymaps.com/developer-hub/api/reference (and its copy at
  https://app.electricitymaps.com/developer-hub/api/reference): endpoints
  ``/v3/carbon-intensity/{latest,history,past-range,forecast}`` "in gCO2eq/kWh";
  parameters ``zone``, ``emissionFactorType`` ("lifecycle" (LCA) or "direct"
  (operational)), ``disableEstimations``, ``temporalGranularity`` (default ``hourly``;
  ``5_minutes``, ``15_minutes``, ``hourly``); past-range takes ``start`` and ``end``
  and "is limited to 10 days (240 hours) for an hourly granularity"; each point is
  ``{zone, carbonIntensity, datetime, updatedAt, createdAt, emissionFactorType,
  isEstimated, estimationMethod}``.
* https://docs.electricitymaps.com (= https://static.electricitymap.org/api/docs/):
  the ``auth-token`` header; "history endpoints only cover recent history (last 24
  hours)"; the ``isEstimated`` flag and ``estimationMethod``; the default emission
  factor is lifecycle; ``shouldUseFallbackCallerLookup=false`` stops the API from
  answering for the caller's IP location when it does not know the zone.
* Response envelopes: latest is one point; history ``{zone, history: [points]}``;
  past-range ``{zone, data: [points]}``; forecast ``{zone, forecast: [{carbonIntensity,
  datetime}], updatedAt}``.  ``horizonHours`` takes 6, 24, 48 or 72.

Choices where the documentation is silent (say so if it changes):

* the forecast's issue time is its top-level ``updatedAt`` (the only time the forecast
  answer carries about itself);
* past-range chunks are 10 days at hourly granularity (documented) and 1 day at 5 or
  15 minutes (the documentation gives no bound for them; one day is what the
  API's own examples loop over);
* a point whose ``carbonIntensity`` is null is a gap (left out, never filled); any
  other non-number, a missing field, a ``unit`` other than gCO2eq/kWh, an
  ``emissionFactorType`` or ``temporalGranularity`` other than the one asked for, or
  an answer for another zone is :class:`ProviderDataError`.

The token goes in the ``auth-token`` header and nowhere else (never the URL).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd
from greenepoch.data.errors import DataError, ProviderAuthError, param
from greenepoch.data.providers.answers import Answers, is_number
from greenepoch.data.providers.base import Provider, chunks
from greenepoch.data.providers.records import Fetched, fetched_series

TOKEN_VAR = "ELECTRICITYMAPS_TOKEN"
UNIT = "gCO2eq/kWh"
#: our signal -> the API's emissionFactorType
FACTOR_TYPES = {"direct": "direct", "lca": "lifecycle"}
#: temporalGranularity -> period
GRANULARITIES = {"5_minutes": pd.Timedelta("5min"), "15_minutes": pd.Timedelta("15min"),
                 "hourly": pd.Timedelta("60min")}
#: longest past-range request per granularity (see the module docstring)
MAX_RANGE = {"hourly": pd.Timedelta(days=10), "15_minutes": pd.Timedelta(days=1),
             "5_minutes": pd.Timedelta(days=1)}
HORIZONS_H = (6, 24, 48, 72)
HISTORY_SPAN = pd.Timedelta(hours=24)
#: Electricity Maps zone keys: a country code, then optional dash-separated parts
ZONE_KEY = re.compile(r"[A-Z]{2,3}(-[A-Z0-9]+)*")
ANSWERS = Answers("electricitymaps")


class ElectricityMaps(Provider):
    """Average (direct or life-cycle) intensities from Electricity Maps (see the module
    docstring).  ``granularity``: ``hourly`` (every plan), ``15_minutes`` or
    ``5_minutes`` (where the plan allows); ``horizon_hours``: forecast length."""

    name = "electricitymaps"
    url_env = "GREENEPOCH_ELECTRICITYMAPS_URL"
    default_url = "https://api.electricitymaps.com"
    signals = ("direct", "lca")
    credential_vars = (TOKEN_VAR,)

    def __init__(self, *, granularity: str = "hourly", horizon_hours: int = 72,
                 **kwargs: Any) -> None:
        if granularity not in GRANULARITIES:
            raise DataError(f"electricitymaps {param('granularity')} must be one of "
                            f"{', '.join(GRANULARITIES)}, not {granularity!r}")
        if horizon_hours not in HORIZONS_H:
            raise DataError(f"electricitymaps {param('horizon_hours')} must be one of "
                            f"{', '.join(map(str, HORIZONS_H))}, not {horizon_hours!r}")
        super().__init__(**kwargs)
        self.granularity = granularity
        self.step = GRANULARITIES[granularity]
        self.horizon_hours = horizon_hours

    def covers(self, zone: str) -> bool:
        return bool(ZONE_KEY.fullmatch(zone))

    # -- the four endpoints ------------------------------------------------------------

    def latest(self, zone: str, signal: str) -> Fetched:
        """The latest value (one point, or none when the API gives null)."""
        body = self._get("/v3/carbon-intensity/latest", zone, signal)
        points = self._points([ANSWERS.mapping(body, "latest")], zone, signal, "latest")
        return self._series(zone, signal, "actual", points)

    def history(self, zone: str, signal: str) -> Fetched:
        """The last 24 hours."""
        body = ANSWERS.mapping(self._get("/v3/carbon-intensity/history", zone, signal),
                               "history")
        points = self._points(_list(body, "history", "history"), zone, signal, "history",
                              body)
        return self._series(zone, signal, "actual", points)

    def past_range(self, zone: str, signal: str, start: pd.Timestamp,
                   end: pd.Timestamp) -> Fetched:
        """``[start, end)``, in as many requests as the documented maximum range needs."""
        self._check(zone, signal)
        start, end = self.window(start, end)
        points: list[tuple[pd.Timestamp, float, bool]] = []
        for lo, hi in chunks(start, end, MAX_RANGE[self.granularity]):
            body = ANSWERS.mapping(self._get("/v3/carbon-intensity/past-range", zone,
                                             signal, start=_iso(lo), end=_iso(hi)),
                                   "past-range")
            chunk = self._points(_list(body, "data", "past-range"), zone, signal,
                                 "past-range", body)
            _check_order(chunk, "past-range")
            points += [p for p in chunk if lo <= p[0] < hi]
        return self._series(zone, signal, "actual", points)

    def forecast(self, zone: str, signal: str) -> Fetched:
        body = ANSWERS.mapping(self._get("/v3/carbon-intensity/forecast", zone, signal,
                                         horizonHours=self.horizon_hours), "forecast")
        points = self._points(_list(body, "forecast", "forecast"), zone, signal, "forecast",
                              body)
        issued = ANSWERS.time(body.get("updatedAt"), "forecast updatedAt")
        return self._series(zone, signal, "forecast", points, issued)

    def actuals(self, zone: str, signal: str, start: pd.Timestamp,
                end: pd.Timestamp) -> Fetched:
        """``[start, end)``: from history when it lies in the last 24 hours (the free
        endpoint), from past-range otherwise."""
        self._check(zone, signal)
        start, end = self.window(start, end)
        # history's first period is the one holding now - 24 h: a range from that
        # period's start (the last day on whole slots, what a live read asks) is in it
        if start >= (self.clock() - HISTORY_SPAN).floor(self.step):
            recent = self.history(zone, signal)
            keep = (recent.values.index >= start) & (recent.values.index < end)
            points = [(t, float(v), bool(e)) for t, v, e in zip(
                recent.values.index[keep], recent.values[keep], recent.estimated[keep],
                strict=True)]
            return self._series(zone, signal, "actual", points, fetched=recent.fetched)
        return self.past_range(zone, signal, start, end)

    # -- shared ------------------------------------------------------------------------

    def _get(self, path: str, zone: str, signal: str, **extra: Any) -> Any:
        """One request; the signal and zone are checked before it, the token is read
        (or ProviderAuthError raised) just before it."""
        self._check(zone, signal)
        params = {"zone": zone, "emissionFactorType": FACTOR_TYPES[signal],
                  "temporalGranularity": self.granularity,
                  "shouldUseFallbackCallerLookup": "false", **extra}
        headers = {"auth-token": self.credential(TOKEN_VAR)}
        try:
            return self.http.get_json(path, params=params, headers=headers)
        except ProviderAuthError as refused:
            if path.endswith(("/history", "/latest")):
                raise
            # a valid free-plan token is refused here too: say so
            raise ProviderAuthError(
                f"{refused} (or the plan of this token does not include {path}: the free "
                "plan serves the last 24 hours only, without forecasts)") from None

    def _check(self, zone: str, signal: str) -> None:
        self.check_signal(signal)
        if not self.covers(zone):
            raise DataError(f"{self.name} does not cover zone {zone!r} (expected an "
                            "Electricity Maps zone key such as DE or US-CAL-CISO)")

    def _points(self, raw: list[Any], zone: str, signal: str, what: str,
                envelope: Mapping[str, Any] | None = None
                ) -> list[tuple[pd.Timestamp, float, bool]]:
        where = f"{what} for {zone}"
        if envelope is not None:
            self._check_meta(envelope, zone, signal, where)
        points = []
        for i, item in enumerate(raw):
            at = f"{where}, point {i}"
            ANSWERS.mapping(item, at, "a point")
            self._check_meta(item, zone, signal, at)
            stamp = ANSWERS.field(item, "datetime", at)
            value = ANSWERS.field(item, "carbonIntensity", at)
            if value is None:
                continue  # a gap in the provider's data: kept as a gap
            if not is_number(value):
                raise ANSWERS.error(at, f"with carbonIntensity {value!r}; it must be a "
                                        f"number in {UNIT}")
            estimated = item.get("isEstimated", False)
            if not isinstance(estimated, bool):
                raise ANSWERS.error(at, f"with isEstimated {estimated!r}; it must be true "
                                        "or false")
            points.append((ANSWERS.time(stamp, f"{at} datetime"), float(value), estimated))
        return points

    def _check_meta(self, item: Mapping[str, Any], zone: str, signal: str,
                    where: str) -> None:
        """Fields that, when present, must match what was asked (the documentation
        gives no unit field; one that says anything but gCO2eq/kWh is refused)."""
        expected = {"zone": zone, "emissionFactorType": FACTOR_TYPES[signal],
                    "temporalGranularity": self.granularity, "unit": UNIT}
        for key, want in expected.items():
            if key in item and item[key] != want:
                raise ANSWERS.error(where, f"with {key} {item[key]!r}; expected {want!r}")

    def _series(self, zone: str, signal: str, kind: str,
                points: list[tuple[pd.Timestamp, float, bool]],
                issued: pd.Timestamp | None = None,
                fetched: pd.Timestamp | None = None) -> Fetched:
        return fetched_series(self.name, zone, signal, kind, self.step, points,
                              fetched if fetched is not None else self.clock(), issued)


def _list(body: Mapping[str, Any], key: str, what: str) -> list[Any]:
    return ANSWERS.listed(ANSWERS.field(body, key, what), what, repr(key))


def _check_order(points: list[tuple[pd.Timestamp, float, bool]], what: str) -> None:
    """Refuse out-of-order or duplicated points in one answer before it is trimmed to
    its chunk (Fetched checks the whole series again)."""
    for i in range(1, len(points)):
        if points[i][0] <= points[i - 1][0]:
            how = "duplicated" if points[i][0] == points[i - 1][0] else "out of order"
            raise ANSWERS.error(what, f"with point {i} ({points[i][0].isoformat()}) "
                                      f"{how}")


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
