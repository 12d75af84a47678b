"""The archive of every value and forecast fetched, in SQLite or PostgreSQL.

One SQLAlchemy Core schema (:mod:`greenepoch.data.archive.schema`) serves both: SQLite
in the user cache folder by default (no setup), PostgreSQL when a team's controllers
on several clusters share one archive (``GREENEPOCH_ARCHIVE=postgresql://...``).

* Writes are idempotent upserts (``INSERT ... ON CONFLICT``, the dialect's own): a
  re-fetch adds no row, a revised value or estimated flag updates its row, and an
  unchanged one is not touched.  One :class:`Fetched` is written in one transaction:
  all of it or nothing.
* Several processes may write one SQLite file at once: WAL journal, a busy timeout,
  and ``BEGIN IMMEDIATE`` so that a transaction waits for the write lock up front
  instead of failing when it would upgrade a read lock.
* Every database failure (a bad URL, a missing driver, no connection) is one
  :class:`DataError` naming the archive by its URL with the password masked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import platformdirs
from greenepoch.data.archive import schema
from greenepoch.data.archive.schema import SCHEMA_VERSION, actual, forecast, version
from greenepoch.data.errors import DataError
from greenepoch.data.providers.config import ARCHIVE_ENV
from greenepoch.data.providers.records import Fetched
from sqlalchemy import Connection, Engine, Table, create_engine, event, func, or_, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url

ARCHIVE_FILE = "archive.sqlite"
#: how long a writer waits for another one's lock (SQLite) before giving up
BUSY_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
_INSTALL = "pip install 'greenepoch[postgres]'"
_PG_LOCK = 0x6772_6565  # advisory lock id: one process creates or migrates the tables


def archive_url(configured: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The archive's database URL: ``$GREENEPOCH_ARCHIVE``, else ``configured`` (the
    config file's ``[live] archive``), else a SQLite file in the user cache folder
    (created if missing)."""
    env = os.environ if env is None else env
    chosen = (env.get(ARCHIVE_ENV) or "").strip() or (configured or "").strip()
    if chosen:
        return chosen
    folder = Path(platformdirs.user_cache_dir("greenepoch"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the archive folder {folder} ({exc.strerror}); set "
                        f"${ARCHIVE_ENV} to a database URL or a writable sqlite:/// path"
                        ) from exc
    return f"sqlite:///{folder / ARCHIVE_FILE}"


def masked(url: str) -> str:
    """``url`` with any password replaced by ``***`` (also when it does not parse)."""
    text = re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", text)


def _parse(url: str) -> URL:
    """The SQLAlchemy URL; ``postgresql://`` and ``postgres://`` take the psycopg 3 driver."""
    try:
        parsed = make_url(url.strip())
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise DataError(
            f"archive URL {masked(url)!r} cannot be read: expected sqlite:///PATH or "
            f"postgresql://USER:PASSWORD@HOST:PORT/DB (set ${ARCHIVE_ENV} or --archive)"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@dataclass(frozen=True)
class Stored:
    """What one :meth:`Archive.store` did: rows added, rows updated (a revised value or
    flag) and rows already there as they were."""

    new: int
    changed: int
    unchanged: int

    @property
    def written(self) -> int:
        return self.new + self.changed


class Archive:
    """A database of fetched actuals and forecasts (see the module docstring).

    ``url``: a SQLAlchemy URL (``sqlite:///path``, ``postgresql://user:pw@host/db``);
    the tables are created if missing.  ``shown`` is the URL for messages (password
    masked).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = masked(url)  # until the URL is parsed
        parsed = _parse(url)
        self._password = parsed.password if isinstance(parsed.password, str) else None
        self.shown = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise DataError(f"archive {self.shown}: {self.dialect} is not supported; use "
                            "sqlite:///PATH or postgresql://USER@HOST/DB")
        with self._errors("open"):
            self._engine = self._make_engine(parsed)
            self._prepare()

    # -- plumbing -----------------------------------------------------------------

    def _make_engine(self, parsed: URL) -> Engine:
        if self.dialect == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S})
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        args = {} if "connect_timeout" in parsed.query else {
            "connect_timeout": CONNECT_TIMEOUT_S}
        return create_engine(parsed, connect_args=args, pool_pre_ping=True)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Database and driver failures as one DataError naming the archive."""
        try:
            yield
        except (ImportError, sa_exc.NoSuchModuleError) as exc:
            raise DataError(
                f"archive {self.shown}: the database driver is missing ({exc}); install it "
                f"with {_INSTALL}") from None
        except sa_exc.DBAPIError as exc:
            raise DataError(f"archive {self.shown}: cannot {action}: {self._why(exc)}"
                            ) from None
        except sa_exc.SQLAlchemyError as exc:
            raise DataError(f"archive {self.shown}: cannot {action}: {self._hide(str(exc))}"
                            ) from None

    def _why(self, exc: sa_exc.DBAPIError) -> str:
        text = str(exc.orig).strip().splitlines()
        first = text[0] if text else type(exc.orig).__name__
        hint = ""
        if self.dialect == "sqlite" and "unable to open" in first:
            hint = " (does its folder exist and can you write there?)"
        return self._hide(first) + hint

    def _hide(self, text: str) -> str:
        text = masked(text)
        if self._password:
            text = text.replace(self._password, "***")
        return text

    def _prepare(self) -> None:
        """Create the tables of a new archive, refuse one written by a newer version."""
        with self._engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_PG_LOCK)))
            schema.metadata.create_all(conn, checkfirst=True)
            found = conn.execute(select(func.max(version.c.version))).scalar()
            if found is None:
                conn.execute(version.insert().values(version=SCHEMA_VERSION))
            elif found > SCHEMA_VERSION:
                raise DataError(
                    f"archive {self.shown} has schema version {found}, newer than this "
                    f"GreenEpoch's ({SCHEMA_VERSION}): upgrade GreenEpoch to use it")
            # found < SCHEMA_VERSION: the migrations of later versions go here

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------

    def put(self, fetched: Fetched) -> int:
        """Write one answer; return the rows new or changed (0 for a re-fetch)."""
        return self.store(fetched).written

    def store(self, fetched: Fetched) -> Stored:
        """Write one answer in one transaction and say what changed (see :class:`Stored`)."""
        is_forecast = fetched.kind == "forecast"
        table = forecast if is_forecast else actual
        rows = _rows(fetched)
        if not rows:
            return Stored(0, 0, 0)
        compared = ("value",) if is_forecast else ("value", "estimated")
        with self._errors("write"), self._engine.begin() as conn:
            known = self._known(conn, table, fetched, rows)
            new = [r for r in rows if r["time"] not in known]
            changed = [r for r in rows if r["time"] in known
                       and known[r["time"]] != tuple(r[c] for c in compared)]
            if new or changed:
                conn.execute(self._upsert(table, compared), new + changed)
        return Stored(len(new), len(changed), len(rows) - len(new) - len(changed))

    def _known(self, conn: Connection, table: Table, fetched: Fetched,
               rows: list[dict[str, Any]]) -> dict[datetime, tuple[Any, ...]]:
        """The rows already archived for the times of ``rows``: time -> compared columns."""
        compared = [table.c.value] + ([] if table is forecast else [table.c.estimated])
        query = select(table.c.time, *compared).where(
            table.c.provider == fetched.provider, table.c.zone == fetched.zone,
            table.c.signal == fetched.signal, table.c.step == rows[0]["step"],
            table.c.time >= rows[0]["time"], table.c.time <= rows[-1]["time"])
        if table is forecast:
            query = query.where(table.c.issued == rows[0]["issued"])
        return {r[0]: tuple(r[1:]) for r in conn.execute(query)}

    def _upsert(self, table: Table, compared: Sequence[str]) -> Any:
        """INSERT ... ON CONFLICT (key) DO UPDATE, only where a compared column differs."""
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = insert(table)
        key = schema.FORECAST_KEY if table is forecast else schema.ACTUAL_KEY
        updated = (*compared, "fetched")
        return stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={c: stmt.excluded[c] for c in updated},
            where=or_(*(table.c[c] != stmt.excluded[c] for c in compared)),
        )

    # -- reading ------------------------------------------------------------------

    def actuals(self, zone: str, signal: str, start: pd.Timestamp | None = None,
                end: pd.Timestamp | None = None, provider: str | None = None) -> pd.DataFrame:
        """Archived actuals of ``zone`` with periods starting in ``[start, end)``: index
        ``time`` (UTC), columns value, estimated, provider, step (Timedelta), fetched;
        sorted by time (several providers or steps may share a time)."""
        query = select(actual.c.time, actual.c.value, actual.c.estimated, actual.c.provider,
                       actual.c.step, actual.c.fetched).where(
            actual.c.zone == zone, actual.c.signal == signal)
        if provider is not None:
            query = query.where(actual.c.provider == provider)
        if start is not None:
            query = query.where(actual.c.time >= _utc(start, "start"))
        if end is not None:
            query = query.where(actual.c.time < _utc(end, "end"))
        query = query.order_by(actual.c.time, actual.c.provider, actual.c.step)
        with self._errors("read"), self._engine.connect() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame({
            "value": pd.Series([r.value for r in rows], dtype=float),
            "estimated": pd.Series([bool(r.estimated) for r in rows], dtype=bool),
            "provider": pd.Series([r.provider for r in rows], dtype=object),
            "step": pd.to_timedelta([r.step for r in rows], unit="min"),
            "fetched": _times([r.fetched for r in rows]),
        })
        frame.index = _times([r.time for r in rows], name="time")
        return frame

    def forecast_at(self, zone: str, signal: str, at: pd.Timestamp,
                    provider: str | None = None) -> Fetched | None:
        """The newest forecast issued at or before ``at`` (what was available then), or
        None.  Of two providers' forecasts issued at the same time, the first by name."""
        when = _utc(at, "at")
        query = select(forecast.c.provider, forecast.c.issued, forecast.c.step).where(
            forecast.c.zone == zone, forecast.c.signal == signal, forecast.c.issued <= when)
        if provider is not None:
            query = query.where(forecast.c.provider == provider)
        query = query.order_by(forecast.c.issued.desc(), forecast.c.provider,
                               forecast.c.step.desc()).limit(1)
        with self._errors("read"), self._engine.connect() as conn:
            head = conn.execute(query).first()
            if head is None:
                return None
            rows = conn.execute(
                select(forecast.c.time, forecast.c.value, forecast.c.fetched).where(
                    forecast.c.provider == head.provider, forecast.c.zone == zone,
                    forecast.c.signal == signal, forecast.c.issued == head.issued,
                    forecast.c.step == head.step).order_by(forecast.c.time)).all()
        index = _times([r.time for r in rows], name="time")
        values = pd.Series([r.value for r in rows], index=index, dtype=float, name=zone)
        flags = pd.Series(False, index=index, dtype=bool, name=zone)
        return Fetched(head.provider, zone, signal, "forecast", pd.Timedelta(head.step, "min"),
                       values, flags, max(pd.Timestamp(r.fetched) for r in rows),
                       pd.Timestamp(head.issued))

    def forecasts(self, zone: str, signal: str, issued_from: pd.Timestamp,
                  issued_to: pd.Timestamp, provider: str | None = None) -> pd.DataFrame:
        """Every archived forecast value of ``zone`` issued in ``[issued_from,
        issued_to]``: columns provider, issued, fetched, time, step (Timedelta), value."""
        query = select(forecast.c.provider, forecast.c.issued, forecast.c.fetched,
                       forecast.c.time, forecast.c.step, forecast.c.value).where(
            forecast.c.zone == zone, forecast.c.signal == signal,
            forecast.c.issued >= _utc(issued_from, "issued_from"),
            forecast.c.issued <= _utc(issued_to, "issued_to"))
        if provider is not None:
            query = query.where(forecast.c.provider == provider)
        query = query.order_by(forecast.c.issued, forecast.c.provider, forecast.c.time)
        with self._errors("read"), self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return pd.DataFrame({
            "provider": pd.Series([r.provider for r in rows], dtype=object),
            "issued": _times([r.issued for r in rows]),
            "fetched": _times([r.fetched for r in rows]),
            "time": _times([r.time for r in rows]),
            "step": pd.to_timedelta([r.step for r in rows], unit="min"),
            "value": pd.Series([r.value for r in rows], dtype=float),
        })

    def summary(self) -> pd.DataFrame:
        """One row per provider, zone, signal and kind: first and last period start,
        rows, and the last fetch time."""
        parts: list[tuple[Any, ...]] = []
        with self._errors("read"), self._engine.connect() as conn:
            for kind, table in (("actual", actual), ("forecast", forecast)):
                query = select(
                    table.c.provider, table.c.zone, table.c.signal,
                    func.min(table.c.time).label("first"), func.max(table.c.time).label("last"),
                    func.count().label("rows"), func.max(table.c.fetched).label("last_fetched"),
                ).group_by(table.c.provider, table.c.zone, table.c.signal)
                parts.extend((r.provider, r.zone, r.signal, kind, r.first, r.last, int(r.rows),
                              r.last_fetched) for r in conn.execute(query))
        parts.sort(key=lambda p: (p[1], p[2], p[0], p[3]))
        columns = ["provider", "zone", "signal", "kind", "first", "last", "rows",
                   "last_fetched"]
        frame = pd.DataFrame(parts, columns=columns)
        for column in ("first", "last", "last_fetched"):  # SQLite's aggregates give text
            frame[column] = _times(list(frame[column]))
        frame["rows"] = frame["rows"].astype(int)
        return frame


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver's own BEGIN is replaced by _sqlite_begin
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _rows(fetched: Fetched) -> list[dict[str, Any]]:
    """The archive rows of one answer (times as UTC datetimes, step in minutes)."""
    step = int(fetched.step / pd.Timedelta("1min"))
    fixed: dict[str, Any] = {"provider": fetched.provider, "zone": fetched.zone,
                             "signal": fetched.signal, "step": step,
                             "fetched": fetched.fetched.tz_convert("UTC").to_pydatetime()}
    if fetched.kind == "forecast":
        assert fetched.issued is not None  # Fetched checks it
        fixed["issued"] = fetched.issued.tz_convert("UTC").to_pydatetime()
    times = pd.DatetimeIndex(fetched.values.index).to_pydatetime()
    values = fetched.values.to_numpy(dtype=float)
    flags = fetched.estimated.to_numpy(dtype=bool)
    rows = []
    for when, value, flag in zip(times, values, flags, strict=True):
        row = {**fixed, "time": when, "value": float(value)}
        if fetched.kind == "actual":
            row["estimated"] = bool(flag)
        rows.append(row)
    return rows


def _utc(stamp: Any, name: str) -> datetime:
    moment = pd.Timestamp(stamp)
    if moment.tzinfo is None:
        raise DataError(f"archive query: {name} must be a UTC time (with an offset), "
                        f"found {stamp!r}")
    result: datetime = moment.tz_convert("UTC").to_pydatetime()
    return result


def _times(values: list[Any], name: str | None = None) -> pd.DatetimeIndex:
    """UTC times from what the driver returned (datetimes, or text from SQLite's min/max)."""
    if not values:
        return pd.DatetimeIndex([], tz="UTC", name=name)
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True), name=name)
