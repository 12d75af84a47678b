"""The UK Carbon Intensity API against the fake API on 127.0.0.1 (tests/support/fake_ukci.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from fake_http import FakeServer, Reply
from fake_ukci import SHORTNAMES, FakeUKCI, serve, trace
from greenepoch.data.errors import (
    DataError,
    ProviderAuthError,
    ProviderDataError,
    ProviderError,
    ProviderUnavailable,
)
from greenepoch.data.providers.http import HttpPolicy
from greenepoch.data.providers.ukci import REGIONS, UKCarbonIntensity

NOW = pd.Timestamp("2026-03-02 12:47:10", tz="UTC")
FAST = HttpPolicy(timeout_s=2.0, attempts=2, total_s=5.0, backoff_s=0.01, max_backoff_s=0.02)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> FakeUKCI:
    return serve(server, now=NOW)


def provider(server: FakeServer) -> UKCarbonIntensity:
    return UKCarbonIntensity(base_url=server.url, http=FAST, clock=lambda: NOW)


# -- zones -----------------------------------------------------------------------------------

def test_the_region_table_is_the_references() -> None:
    assert sorted(i for i, _ in REGIONS.values()) == list(range(1, 18))
    assert {i: name for i, name in REGIONS.values()} == SHORTNAMES
    assert REGIONS["GB-LONDON"] == (13, "London")
    assert all(zone.startswith("GB-") and zone.upper() == zone for zone in REGIONS)


def test_covers_gb_and_its_regions_only(server: FakeServer) -> None:
    uk = provider(server)
    assert uk.configured()  # no key
    assert uk.covers("GB") and uk.covers("GB-LONDON") and uk.covers("GB-SCOTLAND")
    assert not uk.covers("DE") and not uk.covers("GB-NIR") and not uk.covers("gb")


def test_another_zone_or_signal_is_refused_before_any_request(server: FakeServer) -> None:
    uk = provider(server)
    with pytest.raises(DataError, match=r"covers zone GB and its regions .*not 'FR'"):
        uk.forecast("FR", "direct")
    with pytest.raises(DataError, match="serves the direct signal, not 'lca'"):
        uk.forecast("GB", "lca")
    assert server.requests == []


# -- national ----------------------------------------------------------------------------

def test_national_forecast_is_48h_of_half_hours_issued_this_half_hour(
        server: FakeServer, fake: FakeUKCI) -> None:
    got = provider(server).forecast("GB", "direct")
    issued = pd.Timestamp("2026-03-02 12:30", tz="UTC")
    assert server.requests[0].path == "/intensity/2026-03-02T12:30Z/fw48h"
    assert (got.kind, got.signal, got.provider, got.zone) == ("forecast", "direct", "ukci",
                                                             "GB")
    assert got.issued == issued and got.fetched == NOW
    assert got.step == pd.Timedelta("30min")
    expected = trace("GB", issued, issued + pd.Timedelta("48h") + pd.Timedelta("30min"))
    assert got.values.index[0] == issued  # the period before it, also answered, is trimmed
    assert got.values.tolist() == expected["forecast"].tolist()
    assert not got.estimated.any()


def test_national_actuals_use_actual_else_the_forecast_flagged_estimated(
        server: FakeServer, fake: FakeUKCI) -> None:
    start, end = pd.Timestamp("2026-03-02 06:00", tz="UTC"), NOW + pd.Timedelta("3h")
    got = provider(server).actuals("GB", "direct", start, end)
    [seen] = server.requests
    assert seen.path == "/intensity/2026-03-02T05:30Z/2026-03-02T13:30Z"
    # up to the half hour in progress (12:30), none in the future
    assert got.values.index[0] == start
    assert got.values.index[-1] == pd.Timestamp("2026-03-02 12:30", tz="UTC")
    expected = trace("GB", start, NOW, now=NOW)
    assert expected["actual"].isna().tolist() == [False] * 13 + [True]  # 12:30 not ended
    assert got.values.tolist() == expected["actual"].fillna(expected["forecast"]).tolist()
    assert got.estimated.tolist() == [False] * 13 + [True]
    assert (got.kind, got.issued, got.region) == ("actual", None, "")


def test_long_ranges_are_asked_in_pieces_of_at_most_14_days(server: FakeServer,
                                                             fake: FakeUKCI) -> None:
    start = pd.Timestamp("2026-01-01", tz="UTC")
    end = pd.Timestamp("2026-02-15", tz="UTC")
    got = provider(server).actuals("GB", "direct", start, end)
    spans = [tuple(pd.Timestamp(p) for p in s.path.split("/")[2:4]) for s in server.requests]
    assert len(spans) == 4
    assert all(b - a <= pd.Timedelta(days=14) for a, b in spans)
    expected = trace("GB", start, end, now=NOW)
    assert got.values.index.equals(expected.index)  # each border once, end excluded
    assert got.values.tolist() == expected["actual"].tolist()


# -- regions -------------------------------------------------------------------------------

@pytest.mark.parametrize("object_form", [False, True])
def test_regional_forecast(server: FakeServer, object_form: bool) -> None:
    serve(server, now=NOW, regional_object=object_form)
    got = provider(server).forecast("GB-LONDON", "direct")
    assert server.requests[0].path == "/regional/intensity/2026-03-02T12:30Z/fw48h/regionid/13"
    assert (got.zone, got.region, got.step) == ("GB-LONDON", "13", pd.Timedelta("30min"))
    issued = pd.Timestamp("2026-03-02 12:30", tz="UTC")
    expected = trace(13, issued, issued + pd.Timedelta("48h") + pd.Timedelta("30min"))
    assert got.issued == issued
    assert got.values.tolist() == expected["forecast"].tolist()


def test_regional_actuals_are_forecasts_flagged_estimated(server: FakeServer,
                                                          fake: FakeUKCI) -> None:
    start = pd.Timestamp("2026-03-01 00:00", tz="UTC")
    got = provider(server).actuals("GB-SCOTLAND", "direct", start,
                                   pd.Timestamp("2026-03-02", tz="UTC"))
    assert server.requests[0].path == ("/regional/intensity/2026-02-28T23:30Z/"
                                       "2026-03-02T00:30Z/regionid/16")
    expected = trace(16, start, pd.Timestamp("2026-03-02", tz="UTC"))
    assert len(got) == 48 and got.estimated.all()
    assert got.values.tolist() == expected["forecast"].tolist()


def test_every_region_is_asked_by_its_id(server: FakeServer, fake: FakeUKCI) -> None:
    uk = provider(server)
    for zone, (region_id, _) in REGIONS.items():
        got = uk.forecast(zone, "direct")
        assert server.requests[-1].path.endswith(f"/regionid/{region_id}")
        assert got.region == str(region_id) and len(got) > 90


def test_an_answer_for_another_region_is_refused(server: FakeServer, fake: FakeUKCI) -> None:
    fake.override("/regional/", Reply(200, {"data": [{"regionid": 3, "data": []}]}))
    with pytest.raises(ProviderDataError, match="regionid 3, not 13"):
        provider(server).forecast("GB-LONDON", "direct")


# -- faults -----------------------------------------------------------------------------------

def _period(begins: str, ends: str, **intensity: object) -> dict[str, object]:
    return {"from": begins, "to": ends, "intensity": {**intensity, "index": "low"}}


A = ("2026-03-02T12:30Z", "2026-03-02T13:00Z")
B = ("2026-03-02T13:00Z", "2026-03-02T13:30Z")


@pytest.mark.parametrize("body, match", [
    ("Service Unavailable", "not JSON"),
    ({"error": {"code": "400", "message": "x"}}, "without 'data'"),
    ({"data": {"from": A[0]}}, "not a list"),
    ({"data": [["12:30", 100]]}, "not an object"),
    ({"data": [{"from": A[0], "intensity": {"forecast": 100}}]}, "without 'to'"),
    ({"data": [{"from": A[0], "to": A[1]}]}, "without 'intensity'"),
    ({"data": [_period(*A)]}, "intensity.forecast None"),
    ({"data": [_period(*A, forecast="120")]}, "intensity.forecast '120'"),
    ({"data": [_period(*A, forecast=True)]}, "intensity.forecast True"),
    ({"data": [_period(A[0], B[1], forecast=120)]}, "expected 30 minutes"),
    ({"data": [_period("2026-03-02 12:30", "2026-03-02 13:00", forecast=1)]}, "hh:mmZ"),
    ({"data": [_period(*B, forecast=120), _period(*A, forecast=121)]}, "out of order"),
    ({"data": [_period(*A, forecast=120), _period(*A, forecast=121)]}, "duplicated"),
    ({"data": [_period(*A, forecast=120), _period(*B, forecast=2600)]}, "outside 0..2000"),
    ({"data": [_period(*A, forecast=-5)]}, "outside 0..2000"),
])
def test_malformed_national_forecasts_are_refused(server: FakeServer, fake: FakeUKCI,
                                                  body: object, match: str) -> None:
    fake.override("/intensity/", Reply(200, body))
    with pytest.raises(ProviderDataError, match=match):
        provider(server).forecast("GB", "direct")


def test_a_malformed_actual_is_refused(server: FakeServer, fake: FakeUKCI) -> None:
    fake.override("/intensity/", Reply(200, {"data": [
        _period("2026-03-02T11:30Z", "2026-03-02T12:00Z", forecast=120, actual="n/a")]}))
    with pytest.raises(ProviderDataError, match=r"intensity\.actual 'n/a'"):
        provider(server).actuals("GB", "direct", NOW - pd.Timedelta("2h"), NOW)


@pytest.mark.parametrize("body, match", [
    ({"data": []}, "without one region object"),
    ({"data": [{"regionid": 13}]}, "without 'data'"),
    ({"data": {"regionid": 13, "data": [_period(*A, forecast=9999)]}}, "outside 0..2000"),
])
def test_malformed_regional_answers_are_refused(server: FakeServer, fake: FakeUKCI,
                                                body: object, match: str) -> None:
    fake.override("/regional/", Reply(200, body))
    with pytest.raises(ProviderDataError, match=match):
        provider(server).forecast("GB-LONDON", "direct")


def test_a_server_down_is_unavailable(server: FakeServer, fake: FakeUKCI) -> None:
    server.fail(Reply(503), Reply(502))
    with pytest.raises(ProviderUnavailable, match="ukci did not answer"):
        provider(server).forecast("GB", "direct")


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_without_a_key_is_no_credential_error(server: FakeServer, fake: FakeUKCI,
                                                        status: int) -> None:
    # ukci takes no key, so no variable can mend a 401/403 (a proxy, a block): it is a
    # provider error the fallback chain moves past, not a ProviderAuthError that stops it
    server.fail(Reply(status, {"error": "blocked"}))
    with pytest.raises(ProviderError, match=f"HTTP {status}") as caught:
        provider(server).forecast("GB", "direct")
    assert not isinstance(caught.value, ProviderAuthError)


def test_naive_times_are_refused(server: FakeServer) -> None:
    with pytest.raises(DataError, match="`end` must be a time with a time zone"):
        provider(server).actuals("GB", "direct", NOW, pd.Timestamp("2026-03-03"))
