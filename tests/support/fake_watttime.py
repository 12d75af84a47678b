"""A WattTime v3 API on a :class:`~fake_http.FakeServer`, answering the documented shapes
(https://docs.watttime.org) from a deterministic synthetic MOER trace.

    with FakeServer() as server:
        fake = serve(server, now=NOW)
        provider = WattTime(base_url=server.url, credentials=CREDENTIALS, ...)
        fake.revoke()                       # every token handed out so far now gets 401
        fake.override("/v3/forecast", Reply(200, {...}))   # a malformed answer
        trace("CAISO_NORTH", start, end)    # lbs/MWh the server answers for those times

Routes: ``GET /login`` (basic auth; a new token each time), ``/v3/region-from-loc``,
``/v3/signal-index``, ``/v3/forecast`` (24 h from the 5-minute period holding ``now``,
``generated_at`` that period's start), ``/v3/historical`` (``start``..``end`` inclusive,
nothing after ``now``, at most :data:`MAX_HISTORICAL` per request; longer is HTTP 400;
``imputed_data_used`` on each point only with ``include_imputed_marker=true``).
Every ``/v3`` route wants ``Authorization: Bearer <token>`` with a token still valid,
else HTTP 401.
"""

from __future__ import annotations

import base64
import itertools
import math
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

import pandas as pd
from fake_http import FakeServer, Reply, Seen

USERNAME = "grid-user"
PASSWORD = "pw-Never-Shown-7f3a"
CREDENTIALS = {"WATTTIME_USERNAME": USERNAME, "WATTTIME_PASSWORD": PASSWORD}
STEP = pd.Timedelta("5min")
MAX_HISTORICAL = pd.Timedelta(days=32)
FORECAST_HOURS = 24
MODEL_DATE = "2024-10-01"
#: latitude, longitude -> (region, full name); matched to 0.01 degrees
LOCATIONS = {
    (36.8, -119.4): ("CAISO_NORTH", "California ISO Northern"),   # catalog US-CAL-CISO
    (51.0, 10.4): ("DE", "Germany"),                               # catalog DE
}

Points = list[dict[str, object]]


def trace(region: str, start: pd.Timestamp, end: pd.Timestamp,
          step: pd.Timedelta = STEP) -> pd.Series:
    """MOER in lbs/MWh the server answers for ``region`` at the times of ``[start, end)``
    on the ``step`` grid: a daily wave around a level that depends on the region, to
    0.1 lbs/MWh."""
    first = pd.Timestamp(start).ceil(step)
    times = pd.date_range(first, end, freq=step, inclusive="left", name="time")
    level = 700.0 + zlib.crc32(region.encode()) % 400
    hours = (times - pd.Timestamp("2000-01-01", tz="UTC")) / pd.Timedelta("1h")
    values = [round(level + 250.0 * math.sin(2 * math.pi * h / 24.0), 1) for h in hours]
    return pd.Series(values, index=times, dtype=float, name=region)


@dataclass
class FakeWattTime:
    """What :func:`serve` registered: its state and the knobs the tests turn."""

    now: pd.Timestamp
    username: str = USERNAME
    password: str = PASSWORD
    locations: Mapping[tuple[float, float], tuple[str, str]] = field(
        default_factory=lambda: dict(LOCATIONS))
    units: str = "lbs_co2_per_mwh"
    tokens: set[str] = field(default_factory=set)
    logins: int = 0
    overrides: dict[str, Reply | Callable[[Seen], Reply]] = field(default_factory=dict)
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def revoke(self) -> None:
        """Every token handed out so far is refused from now on (an expired token)."""
        with self._lock:
            self.tokens.clear()

    def override(self, path: str, reply: Reply | Callable[[Seen], Reply]) -> None:
        """Answer ``path`` with ``reply`` (after the auth check) instead of the trace."""
        self.overrides[path] = reply

    # -- handlers ---------------------------------------------------------------------

    def login(self, seen: Seen) -> Reply:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if seen.headers.get("authorization") != f"Basic {expected}":
            return Reply(401, {"error": "invalid credentials"})
        with self._lock:
            self.logins += 1
            token = f"token-{next(self._counter)}"
            self.tokens.add(token)
        return Reply(200, {"token": token})

    def guarded(self, answer: Callable[[Seen], Reply]) -> Callable[[Seen], Reply]:
        def handler(seen: Seen) -> Reply:
            auth = seen.headers.get("authorization", "")
            with self._lock:
                valid = auth.startswith("Bearer ") and auth[7:] in self.tokens
            if not valid:
                return Reply(401, {"error": "Unauthorized"})
            replaced = self.overrides.get(seen.path)
            if replaced is not None:
                return replaced(seen) if callable(replaced) else replaced
            return answer(seen)
        return handler

    def region_from_loc(self, seen: Seen) -> Reply:
        try:
            lat, lon = float(seen.query["latitude"]), float(seen.query["longitude"])
        except (KeyError, ValueError):
            return Reply(400, {"error": "latitude and longitude are required"})
        for (a, b), (region, full) in self.locations.items():
            if abs(a - lat) < 0.01 and abs(b - lon) < 0.01:
                return Reply(200, {"region": region, "region_full_name": full,
                                   "signal_type": seen.query.get("signal_type", "co2_moer")})
        return Reply(400, {"error": "No coverage available for these coordinates and "
                                    "signal_type", "latitude": str(lat),
                           "longitude": str(lon), "signal_type": "co2_moer"})

    def signal_index(self, seen: Seen) -> Reply:
        region = seen.query.get("region", "")
        at = self.now.floor(STEP)
        day = trace(region, at - pd.Timedelta("1D"), at + STEP)
        percentile = round(100.0 * float((day <= day.iloc[-1]).mean()), 1)
        return Reply(200, {"data": [{"point_time": at.isoformat(), "value": percentile}],
                           "meta": self._meta(region, "percentile")})

    def forecast(self, seen: Seen) -> Reply:
        region = seen.query.get("region", "")
        generated = self.now.floor(STEP)
        values = trace(region, generated, generated + pd.Timedelta(hours=FORECAST_HOURS))
        meta = {**self._meta(region, self.units), "generated_at": generated.isoformat(),
                "generated_at_period_seconds": 300}
        return Reply(200, {"data": _points(values), "meta": meta})

    def historical(self, seen: Seen) -> Reply:
        region = seen.query.get("region", "")
        try:
            start = pd.Timestamp(unquote(seen.query["start"])).tz_convert("UTC")
            end = pd.Timestamp(unquote(seen.query["end"])).tz_convert("UTC")
        except (KeyError, ValueError, TypeError):
            return Reply(400, {"error": "start and end are required ISO 8601 times"})
        if end - start > MAX_HISTORICAL:
            return Reply(400, {"error": "Requested time range is too long; split it"})
        values = trace(region, start, min(end, self.now) + pd.Timedelta("1ns"))
        points = _points(values)
        if seen.query.get("include_imputed_marker") == "true":  # only then (v3 docs)
            for point in points:
                point["imputed_data_used"] = False
        return Reply(200, {"data": points, "meta": self._meta(region, self.units)})

    def _meta(self, region: str, units: str) -> dict[str, object]:
        return {"data_point_period_seconds": 300, "region": region, "warnings": [],
                "signal_type": "co2_moer", "model": {"date": MODEL_DATE}, "units": units}


def serve(server: FakeServer, *, now: pd.Timestamp, **options: object) -> FakeWattTime:
    """Register the WattTime routes on ``server``; ``options`` set :class:`FakeWattTime`
    fields (``username``, ``password``, ``locations``, ``units``)."""
    fake = FakeWattTime(now=pd.Timestamp(now).tz_convert("UTC"), **options)  # type: ignore[arg-type]
    server.route("GET", r"/login", fake.login)
    server.route("GET", r"/v3/region-from-loc", fake.guarded(fake.region_from_loc))
    server.route("GET", r"/v3/signal-index", fake.guarded(fake.signal_index))
    server.route("GET", r"/v3/forecast", fake.guarded(fake.forecast))
    server.route("GET", r"/v3/historical", fake.guarded(fake.historical))
    return fake


def _points(values: pd.Series) -> Points:
    return [{"point_time": t.isoformat(), "value": v} for t, v in values.items()]
