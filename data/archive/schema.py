"""The archive's tables: one SQLAlchemy Core schema for SQLite and PostgreSQL.

Two tables of values in gCO2eq/kWh, one row per provider period:

* ``intensity_actual``: what a provider reported happened (or estimated), unique on
  (provider, zone, signal, time, step); a re-fetch that changes the value or the
  estimated flag updates the row (and its ``fetched``), one that does not changes nothing;
* ``intensity_forecast``: every forecast fetched, unique on (provider, zone, signal,
  issued, time, step): what was available at each issue time stays available.

``time`` is the start of the period, ``step`` its length in minutes, ``issued`` the
provider's issue time and ``fetched`` when the answer arrived; every time is UTC
(``timestamptz`` on PostgreSQL, UTC text on SQLite, which has no time zones).
``archive_schema`` holds the schema version so that a later change can migrate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 1


class UTCTime(TypeDecorator[datetime]):
    """A UTC instant: written as UTC (naive on SQLite), read back as a tz-aware UTC time."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None:
            raise ValueError(f"archive times must be tz-aware, found {value!r}")
        moment: datetime = stamp.tz_convert("UTC").to_pydatetime()
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


metadata = MetaData()

version = Table(
    "archive_schema", metadata,
    Column("version", Integer, nullable=False),
)


def _key() -> list[Column[Any]]:
    return [
        Column("provider", String(32), nullable=False),
        Column("zone", String(64), nullable=False),
        Column("signal", String(16), nullable=False),
    ]


actual = Table(
    "intensity_actual", metadata,
    *_key(),
    Column("time", UTCTime, nullable=False),
    Column("step", Integer, nullable=False),  # minutes
    Column("value", Double, nullable=False),  # gCO2eq/kWh
    Column("estimated", Boolean, nullable=False),
    Column("fetched", UTCTime, nullable=False),
    UniqueConstraint("provider", "zone", "signal", "time", "step", name="actual_key"),
)

forecast = Table(
    "intensity_forecast", metadata,
    *_key(),
    Column("issued", UTCTime, nullable=False),
    Column("time", UTCTime, nullable=False),
    Column("step", Integer, nullable=False),
    Column("value", Double, nullable=False),
    Column("fetched", UTCTime, nullable=False),
    UniqueConstraint("provider", "zone", "signal", "issued", "time", "step",
                     name="forecast_key"),
)

ACTUAL_KEY = ("provider", "zone", "signal", "time", "step")
FORECAST_KEY = ("provider", "zone", "signal", "issued", "time", "step")
