"""LiveSource's fallback chain against real local servers speaking the providers'
documented shapes, with the archive on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fake_electricitymaps import NOW, serve, trace
from fake_http import FakeServer
from greenepoch.data.archive.source import ArchiveSource
from greenepoch.data.archive.store import Archive
from greenepoch.data.errors import DataError, ProviderAuthError, ProviderUnavailable
from greenepoch.data.live.source import LiveSource
from greenepoch.data.providers.config import LiveConfig
from greenepoch.data.providers.http import HttpPolicy
from greenepoch.data.providers.records import G_PER_KWH_PER_LBS_PER_MWH, fetched_series
from postgres import create_database, postgres_url  # noqa: F401 (session fixture)

TOKEN = "em-token-Never-Shown-91c2"
END = NOW.floor("h")
START = END - pd.Timedelta("6h")
#: nothing listens here: a provider that is down
DOWN = "http://127.0.0.1:1"
FAST = HttpPolicy(timeout_s=2.0, attempts=2, total_s=4.0, backoff_s=0.01, max_backoff_s=0.02)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Archive]:
    """An empty archive on each back end."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    else:
        url = create_database(request.getfixturevalue("postgres_url"),
                              f"t_{uuid.uuid4().hex[:12]}")
    with Archive(url) as opened:
        yield opened


EM_URL = "GREENEPOCH_ELECTRICITYMAPS_URL"


@contextmanager
def pointed(monkeypatch: pytest.MonkeyPatch, url_env: str, serve_fake: Callable[..., object],
            *args: object, **options: object) -> Iterator[FakeServer]:
    """A fake provider on a local server, with ``url_env`` (the configuration) pointing at it."""
    with FakeServer() as server:
        serve_fake(server, *args, now=NOW, **options)
        monkeypatch.setenv(url_env, server.url)
        yield server


@pytest.fixture
def em(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    with pointed(monkeypatch, EM_URL, serve, TOKEN) as server:
        yield server


def config(token: str = TOKEN, providers: tuple[str, ...] = ("electricitymaps",),
           **credentials: str) -> LiveConfig:
    return LiveConfig(credentials={"ELECTRICITYMAPS_TOKEN": token, **credentials},
                      providers=providers, http=FAST)


def live(archive: Archive, conf: LiveConfig | None = None, **kwargs: Any
         ) -> tuple[LiveSource, list[str]]:
    warnings: list[str] = []
    source = LiveSource(conf or config(), archive=archive, clock=lambda: NOW,
                        warn=warnings.append, **kwargs)
    return source, warnings


def down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENEPOCH_ELECTRICITYMAPS_URL", DOWN)


def archived(archive: Archive, zone: str = "DE", fetched: pd.Timestamp = NOW) -> None:
    """Earlier Electricity Maps actuals for ``zone`` over the test window, fetched then."""
    frame = trace(zone, START, END, "60min", "direct")
    points = [(t, v, e) for t, v, e in zip(frame.index, frame["value"], frame["estimated"],
                                             strict=True)]
    archive.put(fetched_series("electricitymaps", zone, "direct", "actual",
                               pd.Timedelta("1h"), points, fetched))


def rows(archive: Archive) -> int:
    return int(archive.summary()["rows"].sum())


def test_a_live_answer_is_archived_then_used(em: FakeServer, archive: Archive) -> None:
    source, warnings = live(archive)
    data = source.load(["DE"], START, END, signal="direct")
    expected = trace("DE", START, END, "60min", "direct")
    assert data.values["DE"].tolist() == expected["value"].tolist()
    assert data.estimated["DE"].tolist() == expected["estimated"].tolist()
    assert data.provider == "electricitymaps" and data.source == "real"
    [mark] = source.provenance
    assert (mark.zone, mark.kind, mark.origin, mark.provider, mark.signal) == (
        "DE", "actual", "live", "electricitymaps", "direct")
    assert mark.stale_s is None and mark.fetched is not None
    assert (mark.first, mark.last) == (START, END - pd.Timedelta("1h"))
    kept = archive.actuals("DE", "direct", START, END)
    assert kept["value"].tolist() == expected["value"].tolist()
    assert not warnings


def test_a_rerun_adds_nothing_to_the_archive(em: FakeServer, archive: Archive) -> None:
    source, _ = live(archive)
    first = source.load(["DE"], START, END)
    count = rows(archive)
    again = source.load(["DE"], START, END)
    assert rows(archive) == count
    pd.testing.assert_frame_equal(first.values, again.values)


def test_a_provider_down_falls_back_on_the_archive_marked_stale(
        monkeypatch: pytest.MonkeyPatch, archive: Archive) -> None:
    archived(archive, fetched=NOW - pd.Timedelta("3h"))
    down(monkeypatch)
    source, warnings = live(archive)
    data = source.load(["DE"], START, END)
    assert data.values["DE"].tolist() == trace("DE", START, END, "1h", "direct")[
        "value"].tolist()
    assert data.provider == "archive"  # never presented as live
    [mark] = source.provenance
    assert (mark.origin, mark.provider, mark.stale_s) == (
        "archive", "electricitymaps", 3 * 3600.0)
    assert mark.stale
    assert any("electricitymaps" in w and "next" in w for w in warnings)
    assert any("stale" in w and "3.0 h" in w for w in warnings)


def test_the_synthetic_default_only_when_allowed(monkeypatch: pytest.MonkeyPatch,
                                                archive: Archive) -> None:
    down(monkeypatch)
    source, warnings = live(archive)
    with pytest.raises(ProviderUnavailable) as refused:
        source.load(["DE"], START, END)
    message = str(refused.value)
    assert "electricitymaps" in message and "archive" in message
    assert "allow_default" in message
    source, warnings = live(archive, allow_default=True)
    data = source.load(["DE"], START, END)
    assert data.source == "synthetic" and data.provider == "climatology"
    [mark] = source.provenance
    assert (mark.origin, mark.provider) == ("default", "climatology")
    assert any("synthetic" in w for w in warnings)
    with pytest.raises(ProviderUnavailable, match=r"the synthetic default: .*XX"):
        source.load(["XX"], START, END)  # no climatology for it
    # the config's allow_default is the default
    source, _ = live(archive, LiveConfig(credentials={"ELECTRICITYMAPS_TOKEN": TOKEN},
                                         providers=("electricitymaps",), http=FAST,
                                         allow_default=True))
    assert source.load(["DE"], START, END).source == "synthetic"


def _negative(route: str, body: Any) -> Any:
    body["history"][2]["carbonIntensity"] = -40
    return body


def test_a_malformed_answer_is_not_archived_and_the_next_source_is_used(
        monkeypatch: pytest.MonkeyPatch, archive: Archive) -> None:
    with pointed(monkeypatch, EM_URL, serve, TOKEN, mutate=_negative):
        source, warnings = live(archive, allow_default=True)
        data = source.load(["DE"], START, END)
    assert rows(archive) == 0
    assert data.provider == "climatology"
    assert any("electricitymaps" in w and "outside" in w for w in warnings)


def _gap(route: str, body: Any) -> Any:
    body["history"] = body["history"][:19] + body["history"][23:]  # the window's 4 middle hours
    return body


def test_a_gap_longer_than_3h_moves_on_but_keeps_the_answer(
        monkeypatch: pytest.MonkeyPatch, archive: Archive) -> None:
    with pointed(monkeypatch, EM_URL, serve, TOKEN, mutate=_gap):
        source, warnings = live(archive, allow_default=True)
        data = source.load(["DE"], START, END)
    assert data.provider == "climatology"
    assert rows(archive) == 2  # a valid answer (its first and last hour): archived, not used
    assert any("gap of 4 h" in w for w in warnings)


def test_a_short_gap_is_interpolated_and_flagged(monkeypatch: pytest.MonkeyPatch,
                                                 archive: Archive) -> None:
    def hole(route: str, body: Any) -> Any:
        del body["history"][-3]
        return body

    with pointed(monkeypatch, EM_URL, serve, TOKEN, mutate=hole):
        source, _ = live(archive)
        data = source.load(["DE"], START, END)
    assert data.filled["DE"].tolist() == [False] * 3 + [True] + [False] * 2
    expected = trace("DE", START, END, "1h", "direct")["value"]
    assert data.values["DE"].iloc[3] == pytest.approx((expected.iloc[2] + expected.iloc[4]) / 2)


def test_a_refused_token_is_raised_never_skipped(em: FakeServer, archive: Archive) -> None:
    archived(archive)
    source, _ = live(archive, config(token="wrong-token"), allow_default=True)
    with pytest.raises(ProviderAuthError, match="ELECTRICITYMAPS_TOKEN"):
        source.load(["DE"], START, END)


def test_a_chosen_provider_without_credentials_is_raised(archive: Archive) -> None:
    source, _ = live(archive, LiveConfig(providers=("electricitymaps",), http=FAST),
                     provider="electricitymaps", allow_default=True)
    with pytest.raises(ProviderAuthError, match="ELECTRICITYMAPS_TOKEN"):
        source.load(["DE"], START, END)


def test_without_a_configured_provider_the_archive_serves(archive: Archive) -> None:
    archived(archive, fetched=NOW - pd.Timedelta("1h"))
    source, _ = live(archive, LiveConfig(providers=("electricitymaps",), http=FAST))
    assert source.load(["DE"], START, END).provider == "archive"
    assert source.provenance[0].stale_s == 3600.0


def test_zones_fall_back_separately(monkeypatch: pytest.MonkeyPatch, archive: Archive) -> None:
    # DE: 404 from this server
    with pointed(monkeypatch, EM_URL, serve, TOKEN, zones=("FR",)):
        archived(archive, "DE", fetched=NOW - pd.Timedelta("2h"))
        source, _ = live(archive)
        data = source.load(["FR", "DE"], START, END)
    assert data.zones == ["FR", "DE"]
    assert data.provider == "electricitymaps+archive"
    origins = {m.zone: m.origin for m in source.provenance}
    assert origins == {"FR": "live", "DE": "archive"}


def test_the_forecast_goes_through_the_chain_and_the_archive(
        monkeypatch: pytest.MonkeyPatch, em: FakeServer, archive: Archive) -> None:
    source, _ = live(archive)
    got = source.forecast(["DE"], "direct")["DE"]
    assert got is not None and got.kind == "forecast" and got.provider == "electricitymaps"
    assert source.provenance[-1].origin == "live"
    kept = archive.forecast_at("DE", "direct", NOW)
    assert kept is not None and kept.values.tolist() == got.values.tolist()
    down(monkeypatch)
    later = NOW + pd.Timedelta("2h")
    stale, warnings = live(archive)
    stale.clock = lambda: later
    again = stale.forecast(["DE"], "direct")["DE"]
    assert again is not None and again.values.tolist() == got.values.tolist()
    mark = stale.provenance[-1]
    assert (mark.kind, mark.origin) == ("forecast", "archive")
    assert mark.stale_s == (later - got.fetched).total_seconds()
    assert mark.issued == got.issued
    assert any("stale" in w for w in warnings)
    assert stale.forecast(["FR"], "direct") == {"FR": None}
    stale.clock = lambda: got.values.index[-1] + got.step  # the forecast has run out
    assert stale.forecast(["DE"], "direct") == {"DE": None}
    assert "ended at" in warnings[-1]


def test_no_credential_reaches_a_warning_or_the_provenance(
        monkeypatch: pytest.MonkeyPatch, archive: Archive) -> None:
    def body_with_the_token_echoed(route: str, body: Any) -> Any:
        return {"unexpected": "shape"}

    with pointed(monkeypatch, EM_URL, serve, TOKEN, mutate=body_with_the_token_echoed):
        source, warnings = live(archive, allow_default=True)
        source.load(["DE"], START, END)
        source.forecast(["DE"], "direct")
    assert warnings
    text = " ".join(warnings) + repr(source.provenance) + repr(source)
    assert TOKEN not in text


def test_archive_source_reads_what_the_archive_holds(archive: Archive) -> None:
    archived(archive, "DE", fetched=NOW - pd.Timedelta("30min"))
    source = ArchiveSource(archive, clock=lambda: NOW)
    assert source.zones("direct") == ["DE"] and source.zones("lca") == []
    data = source.load(["DE"], START, END, slot="30min")
    hourly = trace("DE", START, END, "1h", "direct")["value"].tolist()
    assert data.values["DE"].tolist() == [v for v in hourly for _ in (0, 1)]
    assert data.provider == "archive"
    assert source.age("DE") == pd.Timedelta("30min")
    with pytest.raises(DataError, match="holds no direct intensities for FR"):
        source.load(["FR"], START, END)



@pytest.fixture
def wt(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    from fake_watttime import serve as serve_watttime

    with pointed(monkeypatch, "GREENEPOCH_WATTTIME_URL", serve_watttime) as server:
        yield server


def test_marginal_comes_from_watttime_only_and_never_meets_direct(
        monkeypatch: pytest.MonkeyPatch, em: FakeServer, wt: FakeServer,
        archive: Archive) -> None:
    from fake_watttime import CREDENTIALS
    from fake_watttime import trace as moer

    both = config(providers=("electricitymaps", "watttime"), **CREDENTIALS)
    source, _ = live(archive, both)
    data = source.load(["DE"], START, END, signal="marginal")
    assert not em.requests  # an average provider is never asked for marginal
    lbs = moer("DE", START, END)
    hourly = (lbs * G_PER_KWH_PER_LBS_PER_MWH).groupby(lbs.index.floor("h")).mean()
    assert data.values["DE"].to_numpy() == pytest.approx(hourly.to_numpy())
    assert (data.signal, data.provider) == ("marginal", "watttime")
    assert source.provenance[-1].signal == "marginal"
    asked = len(wt.requests)
    direct = source.load(["DE"], START, END, signal="direct")
    assert (direct.signal, direct.provider) == ("direct", "electricitymaps")
    assert len(wt.requests) == asked  # nor WattTime for direct
    held = archive.summary().set_index("signal")["provider"]
    assert held.to_dict() == {"direct": "electricitymaps", "marginal": "watttime"}
    # WattTime down and no marginal archived for FR: the direct values never stand in
    monkeypatch.setenv("GREENEPOCH_WATTTIME_URL", DOWN)
    archived(archive, "FR")
    source, _ = live(archive, both, allow_default=True)
    with pytest.raises(ProviderUnavailable, match="no marginal intensities for FR"):
        source.load(["FR"], START, END, signal="marginal")


@pytest.fixture
def ukci(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    from fake_ukci import serve as serve_ukci

    with pointed(monkeypatch, "GREENEPOCH_UKCI_URL", serve_ukci) as server:
        yield server


def test_every_provider_down_in_turn_then_the_archive(
        monkeypatch: pytest.MonkeyPatch, ukci: FakeServer, archive: Archive) -> None:
    from fake_ukci import trace as uk

    down(monkeypatch)
    chain = config(providers=("electricitymaps", "ukci"))
    source, warnings = live(archive, chain)
    data = source.load(["GB"], START, END)
    half_hours = uk("GB", START, END, now=NOW)["actual"]
    hourly = half_hours.groupby(half_hours.index.floor("h")).mean()
    assert data.values["GB"].tolist() == hourly.tolist()  # 30-min periods, energy-weighted
    assert data.provider == "ukci"
    assert [(m.origin, m.provider) for m in source.provenance] == [("live", "ukci")]
    assert [w.split()[0] for w in warnings] == ["electricitymaps"]
    forecast = source.forecast(["GB"], "direct")["GB"]
    assert forecast is not None and forecast.provider == "ukci"
    # both down an hour later: the values ukci gave, stale by an hour
    monkeypatch.setenv("GREENEPOCH_UKCI_URL", DOWN)
    later, warnings = live(archive, chain)
    later.clock = lambda: NOW + pd.Timedelta("1h")
    again = later.load(["GB"], START, END)
    assert again.values["GB"].tolist() == hourly.tolist()
    assert again.provider == "archive"
    [mark] = later.provenance
    assert (mark.origin, mark.provider, mark.stale_s) == ("archive", "ukci", 3600.0)
    assert [w.split()[0] for w in warnings] == ["electricitymaps", "ukci", "GB:"]
    stale = later.forecast(["GB"], "direct")["GB"]
    assert stale is not None and stale.values.tolist() == forecast.values.tolist()
    assert later.provenance[-1].origin == "archive"


def test_a_malformed_answer_moves_on_to_the_next_provider(
        monkeypatch: pytest.MonkeyPatch, ukci: FakeServer, archive: Archive) -> None:
    def wrong_unit(route: str, body: Any) -> Any:
        for point in body.get("history", []):
            point["carbonIntensity"] *= 1000  # kg reported as g
        return body

    with pointed(monkeypatch, EM_URL, serve, TOKEN, mutate=wrong_unit):
        source, warnings = live(archive, config(providers=("electricitymaps", "ukci")))
        data = source.load(["GB"], START, END)
    assert data.provider == "ukci"
    assert set(archive.summary()["provider"]) == {"ukci"}  # nothing of the bad answer
    assert "outside" in warnings[0]
