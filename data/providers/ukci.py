"""The UK Carbon Intensity API (NESO): Great Britain and its 17 regions, half-hourly, no key.

Documentation: https://carbon-intensity.github.io/api-definitions/ (the API reference;
its "Regions" table gives the region ids and short names below); methodology: "Carbon
Intensity Forecast Methodology" (NESO, linked from that page).

Signal: ``direct``.  The API's intensity counts "CO2 emissions related to electricity
generation only": large metered power stations, interconnector imports, transmission
and distribution losses (API summary and methodology), with operational emission factors
per fuel (wind, solar and nuclear at 0 g/kWh), not life-cycle ones; it is the
operational (direct) intensity of the electricity consumed in GB or in the region.

Endpoints used, as documented (times ``YYYY-MM-DDThh:mmZ``, UTC, 30-minute periods
``{"from", "to", "intensity": {...}}``):

* zone ``GB``: ``GET /intensity/{from}/{to}`` (actuals; at most 14 days per request,
  so longer ranges are asked in pieces) and ``GET /intensity/{from}/fw48h`` (the 48 h
  forecast); ``intensity`` holds ``forecast`` and ``actual`` ("the estimated actual
  carbon intensity"; null until the API has it);
* a region: ``GET /regional/intensity/{from}/{to}/regionid/{id}`` and
  ``GET /regional/intensity/{from}/fw48h/regionid/{id}``, answering ``{"data":
  {"regionid", "dnoregion", "shortname", "data": [periods]}}`` (the reference shows
  ``data`` as a one-element list; both are accepted); a regional period has a
  ``forecast`` only.

Rules GreenEpoch applies (the API states none of them itself):

* actuals are the periods that have started by the fetch time; a period's value is
  ``actual`` when the API gives one (``estimated`` False), else its ``forecast``
  flagged ``estimated`` True: always so for the regions, whose past values are forecasts
  only, and for GB's latest half hours, whose actual is not published yet;
* a forecast is issued at the start of the half hour in which it was fetched: the API
  gives no issue time, publishes a new 48 h forecast every half hour (methodology), and
  its forecast starts with that half hour;
* each request is padded by one period on both sides and trimmed to the range asked,
  so how the API rounds ``{from}`` and ``{to}`` does not matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from greenepoch.data.errors import DataError, ProviderDataError
from greenepoch.data.providers.answers import Answers, is_number
from greenepoch.data.providers.base import Provider, chunks
from greenepoch.data.providers.records import Fetched, fetched_series

NATIONAL = "GB"
#: GreenEpoch zone id -> (the API's region id, its short name), from the reference's
#: "Regions" table; 15-17 are the nations, 1-14 the DNO regions.
REGIONS: dict[str, tuple[int, str]] = {
    "GB-NORTH-SCOTLAND": (1, "North Scotland"),
    "GB-SOUTH-SCOTLAND": (2, "South Scotland"),
    "GB-NORTH-WEST-ENGLAND": (3, "North West England"),
    "GB-NORTH-EAST-ENGLAND": (4, "North East England"),
    "GB-YORKSHIRE": (5, "Yorkshire"),
    "GB-NORTH-WALES": (6, "North Wales"),
    "GB-SOUTH-WALES": (7, "South Wales"),
    "GB-WEST-MIDLANDS": (8, "West Midlands"),
    "GB-EAST-MIDLANDS": (9, "East Midlands"),
    "GB-EAST-ENGLAND": (10, "East England"),
    "GB-SOUTH-WEST-ENGLAND": (11, "South West England"),
    "GB-SOUTH-ENGLAND": (12, "South England"),
    "GB-LONDON": (13, "London"),
    "GB-SOUTH-EAST-ENGLAND": (14, "South East England"),
    "GB-ENGLAND": (15, "England"),
    "GB-SCOTLAND": (16, "Scotland"),
    "GB-WALES": (17, "Wales"),
}
STEP = pd.Timedelta("30min")
#: the documented maximum range of /intensity/{from}/{to}, also used for the regions
MAX_RANGE = pd.Timedelta(days=14)
#: what one request asks for, so that with its padding it stays within MAX_RANGE
CHUNK = MAX_RANGE - 2 * STEP
TIME_FORMAT = "%Y-%m-%dT%H:%MZ"
ANSWERS = Answers("ukci", time_form="YYYY-MM-DDThh:mmZ")

Point = tuple[pd.Timestamp, float, bool]


class UKCarbonIntensity(Provider):
    """The UK Carbon Intensity API (see the module docstring)."""

    name = "ukci"
    url_env = "GREENEPOCH_UKCI_URL"
    default_url = "https://api.carbonintensity.org.uk"
    signals = ("direct",)
    credential_vars = ()

    def covers(self, zone: str) -> bool:
        return zone == NATIONAL or zone in REGIONS

    def actuals(self, zone: str, signal: str, start: pd.Timestamp,
                end: pd.Timestamp) -> Fetched:
        self._check(zone, signal)
        start, end = self.window(start, end)
        fetched = self.clock()
        end = min(end, fetched.floor(STEP) + STEP)  # periods that have started
        points: list[Point] = []
        for lo, hi in chunks(start.floor(STEP), end, CHUNK):
            periods = self._periods(zone, _stamp(lo - STEP), _stamp(hi + STEP))
            points.extend(p for p in map(_actual, periods) if max(lo, start) <= p[0] < hi)
        return fetched_series(self.name, zone, "direct", "actual", STEP, points, fetched,
                              region=_region_of(zone))

    def forecast(self, zone: str, signal: str) -> Fetched:
        self._check(zone, signal)
        fetched = self.clock()
        issued = fetched.floor(STEP)
        periods = self._periods(zone, _stamp(issued), "fw48h")
        points = [p for p in map(_forecast, periods) if p[0] >= issued]
        return fetched_series(self.name, zone, "direct", "forecast", STEP, points, fetched,
                              issued=issued, region=_region_of(zone))

    def _periods(self, zone: str, first: str, second: str) -> list[Mapping[str, Any]]:
        """The periods of one answer, each checked to be 30 minutes long."""
        if zone == NATIONAL:
            path = f"/intensity/{first}/{second}"
            body = self.http.get_json(path)
            periods = ANSWERS.listed(ANSWERS.field(body, "data", path), path)
        else:
            region_id = REGIONS[zone][0]
            path = f"/regional/intensity/{first}/{second}/regionid/{region_id}"
            periods = _regional(self.http.get_json(path), region_id, path)
        for period in periods:
            _check_period(period, path)
        return periods

    def _check(self, zone: str, signal: str) -> None:
        self.check_signal(signal)
        if not self.covers(zone):
            raise DataError(
                f"ukci covers zone {NATIONAL} and its regions "
                f"({', '.join(REGIONS)}), not {zone!r}")


def _regional(body: Any, region_id: int, path: str) -> list[Mapping[str, Any]]:
    data = ANSWERS.field(body, "data", path)
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, Mapping):
        raise ProviderDataError(f"ukci answered {path} without one region object")
    if "regionid" in data and data["regionid"] != region_id:
        raise ProviderDataError(
            f"ukci answered {path} for regionid {data['regionid']!r}, not {region_id}")
    return ANSWERS.listed(ANSWERS.field(data, "data", path), path)


def _check_period(period: Any, path: str) -> None:
    ANSWERS.mapping(period, path, "a period")
    begins = ANSWERS.time(ANSWERS.field(period, "from", path), path)
    ends = ANSWERS.time(ANSWERS.field(period, "to", path), path)
    if ends - begins != STEP:
        raise ProviderDataError(
            f"ukci answered {path} with a period from {begins.isoformat()} to "
            f"{ends.isoformat()}; expected 30 minutes")
    ANSWERS.mapping(ANSWERS.field(period, "intensity", path),
                    f"{path} at {begins.isoformat()}", "an intensity")


def _actual(period: Mapping[str, Any]) -> Point:
    actual = period["intensity"].get("actual")
    if actual is None:  # no estimated actual (yet): the forecast, flagged estimated
        when, value, _ = _forecast(period)
        return when, value, True
    return ANSWERS.time(period["from"], "from"), _value(actual, "actual", period), False


def _forecast(period: Mapping[str, Any]) -> Point:
    value = _value(period["intensity"].get("forecast"), "forecast", period)
    return ANSWERS.time(period["from"], "from"), value, False


def _value(raw: Any, key: str, period: Mapping[str, Any]) -> float:
    if not is_number(raw):
        raise ProviderDataError(
            f"ukci answered intensity.{key} {raw!r} for the period from {period['from']}")
    return float(raw)


def _stamp(when: pd.Timestamp) -> str:
    return when.strftime(TIME_FORMAT)


def _region_of(zone: str) -> str:
    return str(REGIONS[zone][0]) if zone in REGIONS else ""
