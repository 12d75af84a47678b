"""The region catalog: Electricity Maps grid zones and the cloud regions inside them.

The catalog ships as ``regions.toml`` in package ``greenepoch_data`` (the repository's
``data/`` folder).  Cloud regions are mapped to zones by data-centre location; every
cloud region name belongs to exactly one zone.  Names are matched case-insensitively,
and spaces are ignored so Azure display names ("Germany West Central") also resolve.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from greenepoch.data.errors import CatalogError
from greenepoch.data.shipped import shipped_file

CLOUDS = ("aws", "gcp", "azure")
CATALOG_FILE = "regions.toml"
REQUIRED_KEYS = ("id", "name", "country", "timezone", "latitude", "longitude", *CLOUDS)
OPTIONAL_KEYS = ("electricity_market", "market_kind", "market_publish", "market_note")
MARKET_KINDS = ("day_ahead", "real_time")
_LIST_HINT = "Run 'greenepoch regions' to list them"


@dataclass(frozen=True)
class Region:
    """One grid zone of the catalog.

    ``latitude``/``longitude`` are decimal degrees (approximate middle of the zone's main
    load).  ``aws``/``gcp``/``azure`` are cloud region names whose data centres draw from
    this zone.  ``electricity_market`` is the price market code (bidding zone) of the
    zone's price files.  ``market_kind`` (``day_ahead`` or ``real_time``; empty: prices
    are not used as forecast covariates), ``market_publish`` (``HH:MM`` local time on
    the day before delivery, day-ahead markets only) and ``market_note`` (where that
    time comes from) say when each hour's price becomes public: :meth:`market`.
    """

    id: str
    name: str
    country: str
    timezone: str
    latitude: float
    longitude: float
    aws: tuple[str, ...] = ()
    gcp: tuple[str, ...] = ()
    azure: tuple[str, ...] = ()
    electricity_market: str = ""  # empty means: same as id
    market_kind: str = ""
    market_publish: str = ""
    market_note: str = ""

    def __post_init__(self) -> None:
        where = f"zone '{self.id}'"
        for key in ("id", "name", "timezone"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise CatalogError(f"{where}: '{key}' must be a non-empty string, found {value!r}")
        if any(c.isspace() or c == "," for c in self.id):
            raise CatalogError(
                f"{where}: 'id' must not contain spaces or commas; use the Electricity Maps "
                "zone id, e.g. 'US-CAL-CISO'"
            )
        if not (
            isinstance(self.country, str)
            and len(self.country) == 2
            and self.country.isascii()
            and self.country.isupper()
        ):
            raise CatalogError(
                f"{where}: 'country' must be an ISO 3166-1 alpha-2 code such as 'DE', "
                f"found {self.country!r}"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CatalogError(
                f"{where}: 'timezone' {self.timezone!r} is not an IANA time zone; "
                "use a name such as 'Europe/Berlin'"
            ) from None
        for key, bound in (("latitude", 90.0), ("longitude", 180.0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CatalogError(
                    f"{where}: '{key}' must be a number in decimal degrees, found {value!r}"
                )
            if not (math.isfinite(value) and -bound <= value <= bound):
                raise CatalogError(
                    f"{where}: '{key}' must be between -{bound:g} and {bound:g} decimal "
                    f"degrees, found {value!r}"
                )
        for cloud in CLOUDS:
            names = getattr(self, cloud)
            if not isinstance(names, tuple) or not all(
                isinstance(n, str) and n.strip() for n in names
            ):
                raise CatalogError(
                    f"{where}: '{cloud}' must be a list of region names (use [] for none), "
                    f"found {names!r}"
                )
        if not isinstance(self.electricity_market, str):
            raise CatalogError(
                f"{where}: 'electricity_market' must be a string such as 'DE-LU', "
                f"found {self.electricity_market!r}"
            )
        if not self.electricity_market:
            object.__setattr__(self, "electricity_market", self.id)
        self._check_market(where)

    def _check_market(self, where: str) -> None:
        for key in ("market_kind", "market_publish", "market_note"):
            if not isinstance(getattr(self, key), str):
                raise CatalogError(f"{where}: '{key}' must be a string, "
                                   f"found {getattr(self, key)!r}")
        kind, publish = self.market_kind, self.market_publish
        if kind and kind not in MARKET_KINDS:
            raise CatalogError(f"{where}: 'market_kind' must be one of "
                               f"{', '.join(MARKET_KINDS)}, found {kind!r}")
        if kind == "day_ahead" and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", publish):
            raise CatalogError(f"{where}: a day-ahead market needs 'market_publish' as HH:MM "
                               f"(local time on the day before delivery), found {publish!r}")
        if kind != "day_ahead" and publish:
            raise CatalogError(f"{where}: 'market_publish' is for day-ahead markets only "
                               f"(market_kind = 'day_ahead'), found {publish!r}")

    def market(self) -> Market | None:
        """When this zone's prices become public, or None if they are not forecast
        covariates (no ``market_kind``)."""
        if not self.market_kind:
            return None
        return Market(self.electricity_market, self.timezone, self.market_kind,
                      self.market_publish or None, self.market_note)

    def cloud_regions(self, cloud: str | None = None) -> tuple[str, ...]:
        """Cloud region names in this zone: of one cloud (``aws``, ``gcp``, ``azure``) or all."""
        if cloud is None:
            return self.aws + self.gcp + self.azure
        if cloud not in CLOUDS:
            raise CatalogError(f"unknown cloud {cloud!r}; expected one of {', '.join(CLOUDS)}")
        return tuple(getattr(self, cloud))

    def summary(self) -> dict[str, Any]:
        """Plain dict for tables and JSON: id, name, country, timezone, lat, lon, aws, gcp,
        azure (lists)."""
        return {
            "id": self.id,
            "name": self.name,
            "country": self.country,
            "timezone": self.timezone,
            "lat": self.latitude,
            "lon": self.longitude,
            "aws": list(self.aws),
            "gcp": list(self.gcp),
            "azure": list(self.azure),
        }


@dataclass(frozen=True)
class Market:
    """Where a zone's prices come from and when each delivery day becomes public."""

    market: str  # file prefix in ``prices/`` (bidding zone id)
    tz: str  # IANA zone of the delivery-day convention and the publication time
    kind: str  # "day_ahead" | "real_time"
    publish_local: str | None  # "HH:MM" local time on D-1 (day-ahead only)
    source: str  # one-line note on the publication time


def price_markets(catalog: str | Path | None = None) -> dict[str, Market]:
    """Zone id -> :class:`Market` for the zones whose prices are forecast covariates."""
    return {z.id: m for z in load_catalog(catalog).values() if (m := z.market()) is not None}


def market_code(zone: str, catalog: str | Path | None = None) -> str:
    """The price market (file prefix) of ``zone``: its ``electricity_market``, or the
    zone id itself for a zone not in the catalog."""
    region = load_catalog(catalog).get(zone)
    return region.electricity_market if region is not None else zone


def _key(name: str) -> str:
    """Matching key: case-insensitive, spaces ignored."""
    return "".join(name.split()).lower()


def _default_source() -> Path:
    return shipped_file(CATALOG_FILE)


@functools.lru_cache(maxsize=8)
def _cached(path: Path | None) -> tuple[dict[str, Region], dict[str, str]]:
    """Parsed catalog at ``path`` (None: the shipped one), cached per path."""
    return _load(_default_source() if path is None else path)


def _load(source: Path | Traversable) -> tuple[dict[str, Region], dict[str, str]]:
    """Parse and validate a catalog; return (zones by id, zone id by matching key)."""
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(
            f"region catalog {source} not found; pass an existing regions.toml or reinstall "
            "greenepoch"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"region catalog {source} is not valid TOML: {exc}") from None
    try:
        return _build(raw)
    except CatalogError as exc:
        raise CatalogError(f"region catalog {source}: {exc}") from None


def _build(raw: dict[str, Any]) -> tuple[dict[str, Region], dict[str, str]]:
    extra = sorted(set(raw) - {"zone"})
    if extra:
        raise CatalogError(
            f"unknown top-level key(s) {', '.join(extra)}; only [[zone]] tables are allowed"
        )
    tables = raw.get("zone")
    if not isinstance(tables, list) or not tables:
        raise CatalogError("no zones; add at least one [[zone]] table")
    zones: dict[str, Region] = {}
    index: dict[str, str] = {}  # matching key -> zone id
    owner: dict[str, str] = {}  # matching key -> "zone 'X' field 'aws'" for messages
    for n, table in enumerate(tables, start=1):
        zone = _zone(table, n)
        if _key(zone.id) in index:
            raise CatalogError(f"zone '{zone.id}' (zone #{n}): duplicate id; ids must be unique")
        index[_key(zone.id)] = zone.id
        owner[_key(zone.id)] = f"zone id '{zone.id}'"
        for cloud in CLOUDS:
            for name in getattr(zone, cloud):
                key = _key(name)
                if key in owner:
                    raise CatalogError(
                        f"zone '{zone.id}': '{cloud}' name '{name}' is already used by "
                        f"{owner[key]}; a cloud region must map to exactly one zone"
                    )
                owner[key] = f"zone '{zone.id}' field '{cloud}'"
                index[key] = zone.id
        zones[zone.id] = zone
    return zones, index


def _zone(table: Any, n: int) -> Region:
    if not isinstance(table, dict):
        raise CatalogError(f"zone #{n}: expected a [[zone]] table, found {table!r}")
    where = f"zone '{table['id']}'" if isinstance(table.get("id"), str) else f"zone #{n}"
    allowed = (*REQUIRED_KEYS, *OPTIONAL_KEYS)
    for key in table:
        if key not in allowed:
            near = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise CatalogError(
                f"{where}: unknown key '{key}'{hint} (allowed: {', '.join(allowed)})"
            )
    missing = [key for key in REQUIRED_KEYS if key not in table]
    if missing:
        raise CatalogError(
            f"{where}: missing key(s) {', '.join(repr(k) for k in missing)}; every zone needs "
            f"{', '.join(REQUIRED_KEYS)} (cloud lists may be [])"
        )
    fields = dict(table)
    for cloud in CLOUDS:
        if not isinstance(fields[cloud], list):
            raise CatalogError(
                f"{where}: '{cloud}' must be a list of region names (use [] for none), "
                f"found {fields[cloud]!r}"
            )
        fields[cloud] = tuple(fields[cloud])
    return Region(**fields)


def load_catalog(path: str | Path | None = None) -> dict[str, Region]:
    """Zones of a catalog by id, in file order.

    Parameters
    ----------
    path
        A ``regions.toml``; default: the catalog shipped with GreenEpoch.  Parsed once
        per path and cached.

    Raises
    ------
    CatalogError
        When the file is missing or malformed; the message names the zone and field.
    """
    return dict(_index(path)[0])


def _index(path: str | Path | None) -> tuple[dict[str, Region], dict[str, str]]:
    return _cached(None if path is None else Path(path).resolve())


def resolve_zone(name: str, catalog: str | Path | None = None) -> str:
    """Zone id for a zone id or an AWS/GCP/Azure region name (case-insensitive).

    ``resolve_zone("eu-central-1") == "DE"``; ``resolve_zone("de") == "DE"``.

    Raises
    ------
    CatalogError
        For an unknown name, suggesting the closest known one.
    """
    zones, index = _index(catalog)
    key = _key(name) if isinstance(name, str) else ""
    if not key:
        raise CatalogError(
            f"empty zone name {name!r}; give a zone id or cloud region such as 'DE' or "
            f"'eu-central-1'. {_LIST_HINT}"
        )
    if key in index:
        return index[key]
    display = {_key(z): z for z in zones}
    for zone in zones.values():
        display.update({_key(r): r for r in zone.cloud_regions()})
    near = difflib.get_close_matches(key, list(display), n=1)
    hint = f"; did you mean {display[near[0]]}? " if near else ". "
    raise CatalogError(f"unknown zone or cloud region '{name}'{hint}{_LIST_HINT}")


def resolve_zones(spec: str | list[str], catalog: str | Path | None = None, *,
                  outside: Callable[[str], bool] | None = None) -> list[str]:
    """Zone ids for comma-separated names (or a list of them); ``all`` means every zone.

    Order is kept and duplicates dropped: ``resolve_zones("DE,eu-central-1,GB") ==
    ["DE", "GB"]``.  ``outside``: says whether a name the catalog lacks is a zone all
    the same (a live provider's, e.g. ``GB-LONDON`` or ``CAISO_NORTH``); such a name is
    kept as written.  Any other unknown name is the catalog's CatalogError.
    """
    items = [spec] if isinstance(spec, str) else list(spec)
    names = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
    if not names:
        raise CatalogError(
            f"no zones given ({spec!r}); pass comma-separated zone ids or cloud regions, "
            "e.g. 'DE,eu-north-1', or 'all'"
        )
    out: dict[str, None] = {}
    for name in names:
        if name.lower() == "all":
            out.update(dict.fromkeys(_index(catalog)[0]))
        else:
            out[_resolve_or_outside(name, catalog, outside)] = None
    return list(out)


def _resolve_or_outside(name: str, catalog: str | Path | None,
                        outside: Callable[[str], bool] | None) -> str:
    try:
        return resolve_zone(name, catalog)
    except CatalogError:
        if outside is not None and outside(name):
            return name
        raise


def zones_on(cloud: str | None = None, catalog: str | Path | None = None) -> list[Region]:
    """Catalog zones in file order; with ``cloud``, only those having regions on it."""
    zones = list(load_catalog(catalog).values())
    if cloud is None:
        return zones
    cloud = cloud.lower()
    if cloud not in CLOUDS:
        raise CatalogError(f"unknown cloud {cloud!r}; expected one of {', '.join(CLOUDS)}")
    return [z for z in zones if z.cloud_regions(cloud)]
