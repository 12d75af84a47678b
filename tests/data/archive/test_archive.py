"""The archive: one suite over SQLite (a temp file) and a real PostgreSQL server
(tests/support/postgres.py), so both back ends keep the same contract."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from greenepoch.data.archive import store
from greenepoch.data.archive.store import ARCHIVE_ENV, Archive, archive_url, masked
from greenepoch.data.errors import DataError
from greenepoch.data.providers.records import Fetched, fetched_series
from postgres import create_database, postgres_url  # noqa: F401 (session fixture)

T0 = pd.Timestamp("2024-03-01T00:00Z")
FETCHED = pd.Timestamp("2024-03-02T00:00Z")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty archive's URL on each back end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.sqlite'}"
    server = request.getfixturevalue("postgres_url")
    return create_database(server, f"t_{uuid.uuid4().hex[:12]}")


def actual(values: list[float], flags: list[bool] | None = None, *, zone: str = "GB",
           provider: str = "ukci", step: str = "30min", start: pd.Timestamp = T0,
           fetched: pd.Timestamp = FETCHED, signal: str = "direct") -> Fetched:
    times = pd.date_range(start, periods=len(values), freq=step)
    flags = flags or [False] * len(values)
    return fetched_series(provider, zone, signal, "actual", pd.Timedelta(step),
                          list(zip(times, values, flags, strict=True)), fetched)


def forecast(values: list[float], issued: pd.Timestamp, *, provider: str = "ukci",
             step: str = "30min", zone: str = "GB") -> Fetched:
    times = pd.date_range(issued.ceil(step), periods=len(values), freq=step)
    return fetched_series(provider, zone, "direct", "forecast", pd.Timedelta(step),
                          [(t, v, False) for t, v in zip(times, values, strict=True)],
                          issued + pd.Timedelta("2min"), issued=issued)


def rows(archive: Archive) -> int:
    return int(archive.summary()["rows"].sum())


def test_put_and_read_back_keep_every_field(url: str) -> None:
    with Archive(url) as archive:
        assert archive.put(actual([120.5, 130.25, 99.0], [False, True, False])) == 3
        got = archive.actuals("GB", "direct")
    assert list(got.index) == list(pd.date_range(T0, periods=3, freq="30min"))
    assert str(got.index.tz) == "UTC" and got.index.name == "time"
    assert got["value"].tolist() == [120.5, 130.25, 99.0]
    assert got["estimated"].tolist() == [False, True, False]
    assert set(got["provider"]) == {"ukci"}
    assert set(got["step"]) == {pd.Timedelta("30min")}
    assert set(got["fetched"]) == {FETCHED}


def test_actuals_filter_by_range_provider_and_signal(url: str) -> None:
    with Archive(url) as archive:
        archive.put(actual([100.0] * 4))
        archive.put(actual([200.0] * 2, provider="electricitymaps", step="1h"))
        archive.put(actual([300.0] * 4, signal="lca"))
        window = archive.actuals("GB", "direct", T0 + pd.Timedelta("30min"),
                                 T0 + pd.Timedelta("90min"), provider="ukci")
        both = archive.actuals("GB", "direct")
        assert archive.actuals("DE", "direct").empty
    assert window["value"].tolist() == [100.0, 100.0]
    assert sorted(set(both["provider"])) == ["electricitymaps", "ukci"]
    assert len(both) == 6 and both.index.is_monotonic_increasing


def test_refetch_is_idempotent(url: str) -> None:
    with Archive(url) as archive:
        archive.put(actual([100.0, 110.0, 120.0]))
        archive.put(forecast([150.0, 160.0], T0))
        before = archive.summary()
        assert archive.put(actual([100.0, 110.0, 120.0], fetched=FETCHED + pd.Timedelta("1h"))) == 0
        assert archive.put(forecast([150.0, 160.0], T0)) == 0
        after = archive.summary()
        got = archive.actuals("GB", "direct")
    pd.testing.assert_frame_equal(before, after)
    assert set(got["fetched"]) == {FETCHED}  # an unchanged row is not touched


def test_revised_values_and_flags_are_updated(url: str) -> None:
    later = FETCHED + pd.Timedelta("6h")
    with Archive(url) as archive:
        archive.put(actual([100.0, 110.0, 120.0], [True, True, True]))
        stored = archive.store(actual([100.0, 111.0, 120.0], [True, True, False], fetched=later))
        got = archive.actuals("GB", "direct")
        assert rows(archive) == 3
    assert (stored.new, stored.changed, stored.unchanged) == (0, 2, 1)
    assert got["value"].tolist() == [100.0, 111.0, 120.0]
    assert got["estimated"].tolist() == [True, True, False]
    assert got["fetched"].tolist() == [FETCHED, later, later]


def test_overlapping_fetch_adds_only_the_new_periods(url: str) -> None:
    with Archive(url) as archive:
        archive.put(actual([100.0, 110.0]))
        stored = archive.store(actual([110.0, 120.0, 130.0], start=T0 + pd.Timedelta("30min")))
        assert rows(archive) == 4
    assert (stored.new, stored.changed, stored.unchanged) == (2, 0, 1)


def test_forecast_at_is_the_one_available_then(url: str) -> None:
    early, late = T0, T0 + pd.Timedelta("6h")
    with Archive(url) as archive:
        archive.put(forecast([150.0, 160.0, 170.0], early))
        archive.put(forecast([250.0, 260.0], late))
        archive.put(forecast([350.0], late + pd.Timedelta("1h"), provider="electricitymaps",
                             step="1h"))
        assert archive.forecast_at("GB", "direct", early - pd.Timedelta("1s")) is None
        first = archive.forecast_at("GB", "direct", late - pd.Timedelta("1s"))
        second = archive.forecast_at("GB", "direct", late)
        newest = archive.forecast_at("GB", "direct", late + pd.Timedelta("2h"))
        only = archive.forecast_at("GB", "direct", late + pd.Timedelta("2h"), provider="ukci")
        table = archive.forecasts("GB", "direct", early, late)
    assert first is not None and first.issued == early
    assert first.values.tolist() == [150.0, 160.0, 170.0] and first.kind == "forecast"
    assert first.step == pd.Timedelta("30min") and first.fetched == early + pd.Timedelta("2min")
    assert second is not None and second.values.tolist() == [250.0, 260.0]
    assert newest is not None and newest.provider == "electricitymaps"
    assert newest.step == pd.Timedelta("1h")
    assert only is not None and only.issued == late
    assert table.columns.tolist() == ["provider", "issued", "fetched", "time", "step", "value"]
    assert table["issued"].tolist() == [early] * 3 + [late] * 2


def test_a_failed_put_writes_nothing(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = store._rows

    def broken(fetched: Fetched) -> list[dict]:
        made = real(fetched)
        made[-1]["value"] = None  # the database refuses the last row (NOT NULL)
        return made

    with Archive(url) as archive:
        monkeypatch.setattr(store, "_rows", broken)
        with pytest.raises(DataError, match="cannot write"):
            archive.put(actual([100.0, 110.0, 120.0, 130.0]))
        monkeypatch.setattr(store, "_rows", real)
        assert archive.actuals("GB", "direct").empty
        assert archive.put(actual([100.0])) == 1  # and the archive still works


def test_messages_mask_the_password(url: str) -> None:
    if url.startswith("sqlite"):
        # nothing listens on port 1
        bad = "postgresql://greenepoch:s3cret-pw@127.0.0.1:1/archive"
    else:
        bad = url.replace("://greenepoch:", "://greenepoch:s3cret-pw")
    with pytest.raises(DataError) as caught:
        Archive(bad)
    message = str(caught.value)
    assert "s3cret-pw" not in message and "***" in message
    assert "cannot open" in message
    if not url.startswith("sqlite"):
        real_password = url.split(":")[2].split("@")[0]
        assert real_password not in message


def test_concurrent_writers_do_not_fail(url: str, tmp_path: Path) -> None:
    """Two processes open a new archive and put overlapping series into it at the same
    time."""
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import sys, time, pathlib
        import pandas as pd
        from greenepoch.data.archive.store import Archive
        from greenepoch.data.providers.records import fetched_series
        me = int(sys.argv[1])
        while not pathlib.Path({str(go)!r}).exists():
            time.sleep(0.01)
        archive = Archive({url!r})  # both create the tables of a new archive at once
        fetched = pd.Timestamp("2024-03-02T00:00Z")
        for chunk in range(25):
            start = pd.Timestamp("2024-03-01T00:00Z") + pd.Timedelta(hours=12 * chunk)
            times = pd.date_range(start, periods=48, freq="30min")  # overlaps the next one
            points = [(t, 100.0 + i, False) for i, t in enumerate(times)]
            for zone in ("GB", "GB-" + str(me)):
                archive.put(fetched_series("ukci", zone, "direct", "actual",
                                           pd.Timedelta("30min"), points, fetched))
        archive.close()
    """)
    writers = [subprocess.Popen([sys.executable, "-c", script, str(i)],
                                stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    time.sleep(2.0)  # both have imported and opened the archive
    go.touch()
    errors = []
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        if writer.returncode:
            errors.append(err[-2000:])
    assert not errors, errors
    with Archive(url) as archive:
        table = archive.summary().set_index("zone")
    # 25 chunks of 24 h every 12 h: 26 half-days of 24 half-hours
    assert table["rows"].to_dict() == {"GB": 26 * 24, "GB-1": 26 * 24, "GB-2": 26 * 24}


def test_summary_has_one_row_per_series(url: str) -> None:
    with Archive(url) as archive:
        assert archive.summary().empty
        archive.put(actual([100.0, 110.0, 120.0]))
        archive.put(actual([300.0, 310.0], zone="DE", provider="electricitymaps", step="1h"))
        archive.put(forecast([150.0, 160.0], T0))
        table = archive.summary()
    assert table.columns.tolist() == ["provider", "zone", "signal", "kind", "first", "last",
                                      "rows", "last_fetched"]
    got = {(r.provider, r.zone, r.kind): (r.first, r.last, r.rows) for r in table.itertuples()}
    assert got == {
        ("electricitymaps", "DE", "actual"): (T0, T0 + pd.Timedelta("1h"), 2),
        ("ukci", "GB", "actual"): (T0, T0 + pd.Timedelta("1h"), 3),
        ("ukci", "GB", "forecast"): (T0, T0 + pd.Timedelta("30min"), 2),
    }
    assert table["last_fetched"].dt.tz is not None


def test_a_newer_schema_is_refused(url: str) -> None:
    from greenepoch.data.archive.schema import version

    with Archive(url) as archive, archive._engine.begin() as conn:
        conn.execute(version.update().values(version=99))
    with pytest.raises(DataError, match="schema version 99"):
        Archive(url)


@pytest.mark.postgres
def test_plain_postgresql_urls_take_the_psycopg_driver(postgres_url: str) -> None:  # noqa: F811
    for scheme in ("postgresql://", "postgres://"):
        with Archive(postgres_url.replace("postgresql://", scheme)) as archive:
            assert archive.shown.startswith("postgresql+psycopg://greenepoch:***@")
            archive.summary()


def test_bad_urls_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cannot be read.*sqlite:///PATH"):
        Archive("not a url")
    with pytest.raises(DataError, match=r"pip install 'greenepoch\[postgres\]'"):
        Archive("postgresql+pg8000://u:pw@127.0.0.1:1/db")
    with pytest.raises(DataError, match="folder exist"):
        Archive(f"sqlite:///{tmp_path / 'no' / 'such' / 'archive.sqlite'}")
    with pytest.raises(DataError, match="not supported"):
        Archive("mysql://u:pw@127.0.0.1/db")
    assert masked("postgresql://u:pw@h/db?password=x") == "postgresql://u:***@h/db?password=***"


def test_archive_url_prefers_env_then_config_then_cache(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    env = {ARCHIVE_ENV: "postgresql://a@h/db"}
    assert archive_url("sqlite:///x.sqlite", env) == "postgresql://a@h/db"
    assert archive_url("sqlite:///x.sqlite", {}) == "sqlite:///x.sqlite"
    default = archive_url(None, {ARCHIVE_ENV: " "})
    assert default == f"sqlite:///{tmp_path / 'cache' / 'greenepoch' / 'archive.sqlite'}"
    assert (tmp_path / "cache" / "greenepoch").is_dir()
    with Archive(default) as archive:
        assert archive.summary().empty
