"""WattTime API v3: marginal operating emission rates (MOER), always the ``marginal`` signal.

Documentation: https://docs.watttime.org (the v3 reference, OpenAPI at
https://docs.watttime.org/openapi.json); WattTime's own client,
https://github.com/WattTime/watttime-python-client (``watttime/api.py``), for the login
URL, the inclusive ``end`` of ``/v3/historical`` and its 30-day request chunks.

What is used, as documented:

* ``GET /login`` with HTTP basic auth (``WATTTIME_USERNAME``, ``WATTTIME_PASSWORD``)
  answers ``{"token": ...}``, a bearer token valid 30 minutes.  The token is kept and
  reused for 25 minutes; a data call refused with HTTP 401 (the kept token expired or
  was revoked) logs in again once and repeats the call; HTTP 403 (the token is valid but
  the account's plan does not cover the region or signal) is said as such, without a new
  login.  The password goes in that one request only, never in
  a message or a log.
* every other call sends ``Authorization: Bearer <token>`` and answers
  ``{"data": [{"point_time", "value", ...}], "meta": {"region", "signal_type",
  "units", "data_point_period_seconds", ...}}``:
  ``/v3/historical`` (``region``, ``signal_type=co2_moer``, ``start``, ``end``, both
  ends inclusive; asked 30 days at a time), ``/v3/forecast`` (the latest forecast;
  ``meta.generated_at`` is its issue time), ``/v3/signal-index`` (the current MOER
  percentile, ``units`` ``percentile``: :meth:`WattTime.signal_index`) and
  ``/v3/region-from-loc`` (``latitude``, ``longitude``, ``signal_type`` ->
  ``{"region", "region_full_name", "signal_type"}``).

Values are MOER in lbs CO2/MWh (``meta.units`` must say ``lbs_co2_per_mwh``), converted
to g/kWh with :data:`~greenepoch.data.providers.records.G_PER_KWH_PER_LBS_PER_MWH`;
periods are the API's own (``data_point_period_seconds``, 5 minutes today), kept as they
are (the resampling layer aggregates).  A historical point's ``imputed_data_used`` is
its ``estimated`` flag; WattTime adds it only when asked with
``include_imputed_marker=true`` (docs.watttime.org, "Upgrading from v2 to v3",
/v2/avgemissions -> /v3/historical), so every historical request asks for it.

Zones: a zone of the region catalog (``data/regions.toml``) is located through
``/v3/region-from-loc`` at the catalog's latitude/longitude (once per process and base
URL); any other zone written like a WattTime region code (capitals, digits and
underscores, e.g. ``CAISO_NORTH``) is taken as that region.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from greenepoch.data.errors import (
    DataError,
    ProviderDataError,
    ProviderError,
)
from greenepoch.data.providers.answers import Answers, is_number
from greenepoch.data.providers.base import Provider, chunks
from greenepoch.data.providers.http import HttpAuthError, HttpStatusError
from greenepoch.data.providers.records import (
    G_PER_KWH_PER_LBS_PER_MWH,
    PERIODS,
    Fetched,
    fetched_series,
)

USERNAME_VAR = "WATTTIME_USERNAME"
PASSWORD_VAR = "WATTTIME_PASSWORD"
#: WattTime's name for the MOER signal
SIGNAL_TYPE = "co2_moer"
MOER_UNITS = "lbs_co2_per_mwh"
INDEX_UNITS = "percentile"
#: a token lives 30 minutes (docs); renewed a little before
TOKEN_LIFE_S = 25 * 60
#: /v3/historical is asked this much at a time (WattTime's own client does the same)
HISTORICAL_CHUNK = pd.Timedelta(days=30)
#: how a WattTime region code is written (CAISO_NORTH, PJM_DC, PSCO, ...)
REGION_CODE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
ANSWERS = Answers("watttime")

#: (base URL, zone) -> WattTime region, resolved once per process
_regions: dict[tuple[str, str], str] = {}
#: (base URL, username) -> (token, time.monotonic() of its login): every provider object
#: of the process shares it (the fallback chain builds one per zone and read)
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class SignalIndex:
    """The current MOER of a region as a percentile (0-100) of its recent values."""

    region: str
    time: pd.Timestamp
    percentile: float
    fetched: pd.Timestamp


class WattTime(Provider):
    """The WattTime v3 API (see the module docstring)."""

    name = "watttime"
    url_env = "GREENEPOCH_WATTTIME_URL"
    default_url = "https://api.watttime.org"
    signals = ("marginal",)
    credential_vars = (USERNAME_VAR, PASSWORD_VAR)

    # -- zones ----------------------------------------------------------------------------

    def covers(self, zone: str) -> bool:
        return zone in _catalog() or REGION_CODE.fullmatch(zone) is not None

    def region(self, zone: str) -> str:
        """The WattTime region of ``zone`` (see the module docstring)."""
        self._check_zone(zone)
        regions = _catalog()
        if zone not in regions:
            return zone
        key = (self.base_url, zone)
        with _lock:
            known = _regions.get(key)
        if known is None:
            latitude, longitude = regions[zone]
            known = self.region_from_loc(latitude, longitude, zone=zone)
            with _lock:
                _regions[key] = known
        return known

    def region_from_loc(self, latitude: float, longitude: float, *, zone: str = "") -> str:
        """The WattTime region serving a location (``/v3/region-from-loc``)."""
        where = f"{latitude:g}, {longitude:g}" + (f" (zone {zone})" if zone else "")
        try:
            body = self._get("/v3/region-from-loc", {
                "latitude": f"{latitude:g}", "longitude": f"{longitude:g}",
                "signal_type": SIGNAL_TYPE})
        except HttpStatusError as exc:
            raise ProviderError(
                f"watttime has no {SIGNAL_TYPE} region at {where}: {exc.detail}") from None
        region = ANSWERS.field(body, "region", "/v3/region-from-loc")
        if not isinstance(region, str) or REGION_CODE.fullmatch(region) is None:
            raise ProviderDataError(
                f"watttime answered /v3/region-from-loc for {where} with region {region!r}")
        return region

    # -- data -----------------------------------------------------------------------------

    def actuals(self, zone: str, signal: str, start: pd.Timestamp,
                end: pd.Timestamp) -> Fetched:
        self._check(zone, signal)
        start, end = self.window(start, end)
        region = self.region(zone)
        points: list[tuple[pd.Timestamp, float, bool]] = []
        step: pd.Timedelta | None = None
        for lo, hi in chunks(start, end, HISTORICAL_CHUNK):
            body = self._get("/v3/historical", {
                "region": region, "signal_type": SIGNAL_TYPE,
                "start": lo.isoformat(), "end": hi.isoformat(),
                "include_imputed_marker": "true"})
            chunk_step, chunk = _moer_points(body, region, "/v3/historical")
            if step is not None and chunk_step != step:
                raise ProviderDataError(
                    f"watttime changed its period from {step} to {chunk_step} within one "
                    f"range for {region}")
            step = chunk_step
            # both ends are inclusive: each chunk keeps [lo, hi) so none overlaps
            points.extend(p for p in chunk if lo <= p[0] < hi)
        return fetched_series(self.name, zone, "marginal", "actual",
                              step or PERIODS[0], points, self.clock(),
                              region=_other(region, zone))

    def forecast(self, zone: str, signal: str) -> Fetched:
        self._check(zone, signal)
        region = self.region(zone)
        body = self._get("/v3/forecast", {"region": region, "signal_type": SIGNAL_TYPE})
        step, points = _moer_points(body, region, "/v3/forecast")
        issued = ANSWERS.time(
            ANSWERS.field(body["meta"], "generated_at", "/v3/forecast meta"),
            "/v3/forecast meta.generated_at")
        return fetched_series(self.name, zone, "marginal", "forecast", step, points,
                              self.clock(), issued=issued, region=_other(region, zone))

    def signal_index(self, zone: str) -> SignalIndex:
        """The region's current MOER percentile (``/v3/signal-index``)."""
        region = self.region(zone)
        path = "/v3/signal-index"
        body = self._get(path, {"region": region, "signal_type": SIGNAL_TYPE})
        _, data = _meta(body, region, path, INDEX_UNITS)
        if not data:
            raise ProviderDataError(f"watttime answered {path} for {region} with no point")
        when, value = _point(data[-1], path)
        if not 0.0 <= value <= 100.0:
            raise ProviderDataError(
                f"watttime answered {path} for {region} with percentile {value:g}, "
                "outside 0..100")
        return SignalIndex(region, when, value, self.clock())

    # -- requests -------------------------------------------------------------------------

    def login(self) -> str:
        """A new token from ``GET /login`` (basic auth; the only request that sends the
        password), kept for the process."""
        user, password = self.credential(USERNAME_VAR), self.credential(PASSWORD_VAR)
        body = self.http.get_json("/login", auth=(user, password))
        token = ANSWERS.field(body, "token", "/login")
        if not isinstance(token, str) or not token:
            raise ProviderDataError("watttime answered /login without a token")
        with _lock:
            _tokens[(self.base_url, user)] = (token, time.monotonic())
        return token

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        key = (self.base_url, self.credential(USERNAME_VAR))
        self.credential(PASSWORD_VAR)  # both are needed, even with a kept token
        with _lock:
            token, since = _tokens.get(key, ("", 0.0))
        if not token or time.monotonic() - since >= TOKEN_LIFE_S:
            return self._bearer(path, params, self.login())
        try:
            return self._bearer(path, params, token)
        except HttpAuthError as refused:
            if refused.status != 401:  # 403: a valid token, not allowed this
                raise
        # the kept token expired or was revoked: one new login, one more try
        with _lock:
            _tokens.pop(key, None)
        return self._bearer(path, params, self.login())

    def _bearer(self, path: str, params: Mapping[str, str], token: str) -> Any:
        try:
            return self.http.get_json(path, params=dict(params),
                                      headers={"Authorization": f"Bearer {token}"})
        except HttpAuthError as refused:
            if refused.status != 403:
                raise
            # the login worked: the account's plan does not include this region/signal
            region = params.get("region")
            what = f"region {region!r}" if region else path
            # (docs.watttime.org: without a subscription, /v3/historical and /v3/forecast
            # answer for CAISO_NORTH only)
            raise HttpAuthError(
                f"watttime refused {path} for {what} (HTTP 403): the login worked, but the "
                f"WattTime plan of this {USERNAME_VAR} does not cover {what} (without a "
                "subscription only CAISO_NORTH is served); pick a region your plan covers, "
                "or another provider", 403) from None

    def _check(self, zone: str, signal: str) -> None:
        self.check_signal(signal)
        self._check_zone(zone)

    def _check_zone(self, zone: str) -> None:
        if not self.covers(zone):
            raise DataError(
                f"watttime does not cover zone {zone!r}: give a zone of the region "
                "catalog or a WattTime region code such as 'CAISO_NORTH'")


def _catalog() -> dict[str, tuple[float, float]]:
    from greenepoch.data.regions import load_catalog

    return {z: (r.latitude, r.longitude) for z, r in load_catalog().items()}


def _moer_points(body: Any, region: str,
                 path: str) -> tuple[pd.Timedelta, list[tuple[pd.Timestamp, float, bool]]]:
    """The period and the ``(time, g/kWh, estimated)`` points of a MOER answer."""
    meta, data = _meta(body, region, path, MOER_UNITS)
    seconds = ANSWERS.field(meta, "data_point_period_seconds", f"{path} meta")
    step = pd.Timedelta(seconds, "s") if is_number(seconds) else None
    if step not in PERIODS:
        raise ProviderDataError(
            f"watttime answered {path} with data_point_period_seconds {seconds!r}; "
            "expected 300, 900, 1800 or 3600")
    points = []
    for raw in data:
        when, lbs = _point(raw, path)
        imputed = raw.get("imputed_data_used", False)
        if imputed is None:
            imputed = False
        if not isinstance(imputed, bool):
            raise ProviderDataError(
                f"watttime answered {path} with imputed_data_used {imputed!r} at {when}")
        points.append((when, lbs * G_PER_KWH_PER_LBS_PER_MWH, imputed))
    return step, points


def _meta(body: Any, region: str, path: str,
          units: str) -> tuple[Mapping[str, Any], list[Any]]:
    """``meta`` and ``data`` of an answer, checked: units, signal type and region."""
    meta = ANSWERS.mapping(ANSWERS.field(body, "meta", path), path, "a meta")
    data = ANSWERS.listed(ANSWERS.field(body, "data", path), path)
    found = ANSWERS.field(meta, "units", f"{path} meta")
    if found != units:
        raise ProviderDataError(
            f"watttime answered {path} in units {found!r}; expected {units!r}")
    for key, expected in (("signal_type", SIGNAL_TYPE), ("region", region)):
        if key in meta and meta[key] != expected:
            raise ProviderDataError(
                f"watttime answered {path} with {key} {meta[key]!r}; asked {expected!r}")
    return meta, data


def _point(raw: Any, path: str) -> tuple[pd.Timestamp, float]:
    ANSWERS.mapping(raw, path, "a point")
    when = ANSWERS.time(ANSWERS.field(raw, "point_time", f"{path} point"),
                        f"{path} point_time")
    value = ANSWERS.field(raw, "value", f"{path} point")
    if not is_number(value):
        raise ProviderDataError(
            f"watttime answered {path} with value {value!r} at {when.isoformat()}")
    return when, float(value)


def _other(region: str, zone: str) -> str:
    return "" if region == zone else region

