"""A fake Electricity Maps API v3 on a FakeServer: the documented routes and shapes
(data/providers/electricitymaps.py cites the pages), answering from a deterministic
synthetic trace.

    with FakeServer() as server:
        fake = serve(server, token="t0ken", now=NOW)
        ...  # ElectricityMaps(base_url=server.url, credentials={...}, clock=lambda: NOW)
        trace("DE", start, end, "60min", "lca")   # what the server answers

Requests without the right ``auth-token`` header get 401; a past-range longer than the
documented maximum gets 400; unknown parameters values get 400.  ``mutate(path, body)``
may corrupt a documented answer before it is sent (fault tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd
from fake_http import FakeServer, Reply, Seen

NOW = pd.Timestamp("2026-03-02T12:34:00Z")
GRANULARITIES = {"5_minutes": "5min", "15_minutes": "15min", "hourly": "60min"}
MAX_RANGE = {"hourly": pd.Timedelta(days=10), "15_minutes": pd.Timedelta(days=1),
             "5_minutes": pd.Timedelta(days=1)}
FACTOR_TYPES = {"direct": "direct", "lifecycle": "lca"}
HORIZONS = ("6", "24", "48", "72")
#: an estimated point every this many periods
ESTIMATED_EVERY = 7


def value_at(zone: str, time: pd.Timestamp, signal: str = "lca") -> float:
    """The synthetic intensity (g/kWh) of ``zone`` at ``time``: a daily wave around a
    zone-dependent level; life-cycle above direct by a fixed margin."""
    level = 150 + sum(map(ord, zone)) % 200
    hours = time.value / 3.6e12
    direct = level + 80 * math.sin(2 * math.pi * hours / 24) + 10 * math.sin(hours / 3)
    return round(direct + (45.0 if signal == "lca" else 0.0), 1)


def estimated_at(time: pd.Timestamp, step: pd.Timedelta) -> bool:
    return (time.value // step.value) % ESTIMATED_EVERY == 0


def trace(zone: str, start: pd.Timestamp, end: pd.Timestamp, step: str | pd.Timedelta,
          signal: str = "lca") -> pd.DataFrame:
    """What the fake answers for ``[start, end)`` at ``step``: columns value, estimated
    on a UTC index ``time`` (starts rounded up to the step)."""
    step = pd.Timedelta(step)
    times = pd.date_range(pd.Timestamp(start).ceil(step), pd.Timestamp(end), freq=step,
                          inclusive="left", name="time")
    return pd.DataFrame({"value": [value_at(zone, t, signal) for t in times],
                         "estimated": [estimated_at(t, step) for t in times]}, index=times)


class FakeElectricityMaps:
    """The routes' state: the token, "now", the zones served and the fault hook."""

    def __init__(self, token: str, now: pd.Timestamp, zones: tuple[str, ...] | None,
                 mutate: Callable[[str, Any], Any] | None) -> None:
        self.token = token
        self.now = now
        self.zones = zones
        self.mutate = mutate

    def handler(self, route: str) -> Callable[[Seen], Reply]:
        answer = getattr(self, "_" + route.replace("-", "_"))

        def handle(seen: Seen) -> Reply:
            if seen.headers.get("auth-token") != self.token:
                return Reply(401, {"status": "error", "message": "Invalid auth-token"})
            zone = seen.query.get("zone")
            if not zone or (self.zones is not None and zone not in self.zones):
                return Reply(404, {"status": "error", "message": f"Zone '{zone}' not found"})
            granularity = seen.query.get("temporalGranularity", "hourly")
            factor = seen.query.get("emissionFactorType", "lifecycle")
            if granularity not in GRANULARITIES or factor not in FACTOR_TYPES:
                return Reply(400, {"status": "error", "message": "Invalid parameter"})
            body = answer(seen, zone, granularity, factor)
            if isinstance(body, Reply):
                return body
            if self.mutate is not None:
                body = self.mutate(route, body)
            return Reply(200, body)

        return handle

    def _point(self, zone: str, time: pd.Timestamp, granularity: str,
               factor: str) -> dict[str, Any]:
        step = pd.Timedelta(GRANULARITIES[granularity])
        estimated = estimated_at(time, step)
        return {"zone": zone, "carbonIntensity": value_at(zone, time, FACTOR_TYPES[factor]),
                "datetime": _iso(time), "updatedAt": _iso(self.now - pd.Timedelta("2min")),
                "createdAt": _iso(time + step), "emissionFactorType": factor,
                "isEstimated": estimated,
                "estimationMethod": "TIME_SLICER_AVERAGE" if estimated else None,
                "temporalGranularity": granularity}

    def _points(self, zone: str, start: pd.Timestamp, end: pd.Timestamp, granularity: str,
                factor: str) -> list[dict[str, Any]]:
        frame = trace(zone, start, end, GRANULARITIES[granularity], FACTOR_TYPES[factor])
        return [self._point(zone, t, granularity, factor) for t in frame.index]

    def _latest(self, seen: Seen, zone: str, granularity: str, factor: str) -> Any:
        step = pd.Timedelta(GRANULARITIES[granularity])
        return self._point(zone, self.now.floor(step) - step, granularity, factor)

    def _history(self, seen: Seen, zone: str, granularity: str, factor: str) -> Any:
        end = self.now.floor(GRANULARITIES[granularity])
        return {"zone": zone, "history": self._points(zone, end - pd.Timedelta("24h"), end,
                                                       granularity, factor),
                "temporalGranularity": granularity}

    def _past_range(self, seen: Seen, zone: str, granularity: str, factor: str) -> Any:
        try:
            start = pd.Timestamp(seen.query["start"])
            end = pd.Timestamp(seen.query["end"])
        except (KeyError, ValueError):
            return Reply(400, {"status": "error", "message": "start and end are required"})
        if end - start > MAX_RANGE[granularity]:
            return Reply(400, {"status": "error", "message": "Time range too long"})
        return {"zone": zone, "data": self._points(zone, start, end, granularity, factor),
                "temporalGranularity": granularity}

    def _forecast(self, seen: Seen, zone: str, granularity: str, factor: str) -> Any:
        horizon = seen.query.get("horizonHours", "24")
        if horizon not in HORIZONS:
            return Reply(400, {"status": "error", "message": "Invalid horizonHours"})
        step = pd.Timedelta(GRANULARITIES[granularity])
        start = self.now.floor(step)
        frame = trace(zone, start, start + pd.Timedelta(hours=int(horizon)), step,
                      FACTOR_TYPES[factor])
        return {"zone": zone,
                "forecast": [{"carbonIntensity": v, "datetime": _iso(t)}
                             for t, v in frame["value"].items()],
                "updatedAt": _iso(issued(self.now))}


def issued(now: pd.Timestamp) -> pd.Timestamp:
    """The forecast's ``updatedAt`` the fake gives at ``now``."""
    return now.floor("h") - pd.Timedelta("10min")


def serve(server: FakeServer, token: str = "em-test-token", *, now: pd.Timestamp = NOW,
          zones: tuple[str, ...] | None = None,
          mutate: Callable[[str, Any], Any] | None = None) -> FakeElectricityMaps:
    """Register the four carbon-intensity routes on ``server``."""
    fake = FakeElectricityMaps(token, now, zones, mutate)
    for route in ("latest", "history", "past-range", "forecast"):
        server.route("GET", f"/v3/carbon-intensity/{route}", fake.handler(route))
    return fake


def _iso(time: pd.Timestamp) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z")
