"""The UK Carbon Intensity API on a :class:`~fake_http.FakeServer`, answering the documented
shapes (https://carbon-intensity.github.io/api-definitions/) from a deterministic
synthetic trace.

    with FakeServer() as server:
        fake = serve(server, now=NOW)
        provider = UKCarbonIntensity(base_url=server.url, clock=lambda: NOW, ...)
        fake.override("/intensity/", Reply(200, {...}))   # a malformed answer
        trace("GB-LONDON", start, end, now=NOW)  # forecast and actual the server answers

Routes: ``/intensity/{from}/{to}``, ``/intensity/{from}/fw48h``,
``/regional/intensity/{from}/{to}/regionid/{id}`` and
``/regional/intensity/{from}/fw48h/regionid/{id}``.  The fake is generous at both ends
(the period ending at ``{from}`` and the one starting at ``{to}`` are included), so a
client must trim; a range longer than 14 days is HTTP 400 with the API's error shape.
National periods have ``actual`` once they have ended (``now``), regional ones have a
``forecast`` only; the regional answer is the reference's one-element list, or the
object the live API answers with ``regional_object=True``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from fake_http import FakeServer, Reply, Seen

STEP = pd.Timedelta("30min")
MAX_RANGE = pd.Timedelta(days=14)
#: the reference's "Regions" table: region id -> short name
SHORTNAMES = {
    1: "North Scotland", 2: "South Scotland", 3: "North West England",
    4: "North East England", 5: "Yorkshire", 6: "North Wales", 7: "South Wales",
    8: "West Midlands", 9: "East Midlands", 10: "East England", 11: "South West England",
    12: "South England", 13: "London", 14: "South East England", 15: "England",
    16: "Scotland", 17: "Wales",
}
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z")


def trace(zone: str | int, start: pd.Timestamp, end: pd.Timestamp,
          step: pd.Timedelta = STEP, *, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """What the server answers for the periods starting in ``[start, end)``: columns
    ``forecast`` and ``actual`` (g/kWh, whole numbers; ``actual`` NaN where the server
    gives none: regional periods, and national ones not ended by ``now``).  ``zone`` is
    ``GB`` or a region id (1-17)."""
    region = 0 if zone == "GB" else int(zone)
    times = pd.date_range(pd.Timestamp(start).ceil(step), end, freq=step, inclusive="left",
                          name="time")
    hours = (times - pd.Timestamp("2000-01-01", tz="UTC")) / pd.Timedelta("1h")
    level = 150.0 + 12.0 * region
    base = np.array([level + 60.0 * math.sin(2 * math.pi * (h - 3.0) / 24.0) for h in hours])
    forecast = np.round(base * 1.04 + 3.0)
    actual = np.round(base)
    if region:
        actual[:] = np.nan
    elif now is not None:
        actual[np.asarray(times + step > now)] = np.nan
    return pd.DataFrame({"forecast": forecast, "actual": actual}, index=times)


@dataclass
class FakeUKCI:
    """What :func:`serve` registered: its state and the knobs the tests turn."""

    now: pd.Timestamp
    regional_object: bool = False
    overrides: dict[str, Reply | Callable[[Seen], Reply]] = field(default_factory=dict)

    def override(self, prefix: str, reply: Reply | Callable[[Seen], Reply]) -> None:
        """Answer paths starting with ``prefix`` with ``reply`` instead of the trace."""
        self.overrides[prefix] = reply

    def national(self, seen: Seen) -> Reply:
        return self._answer(seen, 0)

    def regional(self, seen: Seen) -> Reply:
        region = int(seen.path.rsplit("/", 1)[1])
        if region not in SHORTNAMES:
            return _error(400, f"regionid {region} is not 1-17")
        return self._answer(seen, region)

    def _answer(self, seen: Seen, region: int) -> Reply:
        for prefix, reply in self.overrides.items():
            if seen.path.startswith(prefix):
                return reply(seen) if callable(reply) else reply
        parts = seen.path.split("/")
        first, second = parts[-4:-2] if region else parts[-2:]
        if not TIME.fullmatch(first) or not (second == "fw48h" or TIME.fullmatch(second)):
            return _error(400, "Please enter a valid ISO 8601 datetime YYYY-MM-DDThh:mmZ")
        begin = pd.Timestamp(first)
        end = begin + pd.Timedelta("48h") if second == "fw48h" else pd.Timestamp(second)
        if end - begin > MAX_RANGE:
            return _error(400, "The maximum date range is limited to 14 days")
        rows = trace(region or "GB", begin - STEP, end + STEP, now=self.now)
        periods = [_period(t, row, national=not region) for t, row in rows.iterrows()]
        if not region:
            return Reply(200, {"data": periods})
        body = {"regionid": region, "dnoregion": f"DNO {SHORTNAMES[region]}",
                "shortname": SHORTNAMES[region], "data": periods}
        return Reply(200, {"data": body if self.regional_object else [body]})


def serve(server: FakeServer, *, now: pd.Timestamp, regional_object: bool = False) -> FakeUKCI:
    """Register the Carbon Intensity API routes on ``server``."""
    fake = FakeUKCI(now=pd.Timestamp(now).tz_convert("UTC"), regional_object=regional_object)
    server.route("GET", r"/intensity/[^/]+/[^/]+", fake.national)
    server.route("GET", r"/regional/intensity/[^/]+/[^/]+/regionid/\d+", fake.regional)
    return fake


def _period(start: pd.Timestamp, row: pd.Series, *, national: bool) -> dict[str, object]:
    intensity: dict[str, object] = {"forecast": int(row["forecast"])}
    if national:
        intensity["actual"] = None if math.isnan(row["actual"]) else int(row["actual"])
    intensity["index"] = "moderate"
    period: dict[str, object] = {"from": start.strftime("%Y-%m-%dT%H:%MZ"),
                                 "to": (start + STEP).strftime("%Y-%m-%dT%H:%MZ"),
                                 "intensity": intensity}
    if not national:
        period["generationmix"] = [{"fuel": "gas", "perc": 40.0}, {"fuel": "wind", "perc": 60.0}]
    return period


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"error": {"code": f"{status} Bad Request", "message": message}})
