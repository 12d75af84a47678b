"""The Electricity Maps API v3 provider against its fake (tests/support/fake_electricitymaps.py)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from fake_electricitymaps import NOW, issued, serve, trace
from fake_http import FakeServer, Reply
from greenepoch.data.errors import (
    DataError,
    ProviderAuthError,
    ProviderDataError,
    ProviderUnavailable,
)
from greenepoch.data.providers.electricitymaps import ElectricityMaps
from greenepoch.data.providers.http import HttpPolicy
from greenepoch.data.regions import load_catalog

TOKEN = "em-very-secret-token-4711"
QUICK = HttpPolicy(timeout_s=2.0, attempts=2, total_s=5.0, backoff_s=0.01, max_backoff_s=0.02)
H = pd.Timedelta("1h")


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as server:
        serve(server, token=TOKEN)
        yield server


def em(server: FakeServer, token: str | None = TOKEN, **options: Any) -> ElectricityMaps:
    credentials = {"ELECTRICITYMAPS_TOKEN": token} if token else {}
    return ElectricityMaps(base_url=server.url, credentials=credentials, http=QUICK,
                           clock=lambda: NOW, **options)


def mutated(change: Callable[[str, Any], Any]) -> Iterator[FakeServer]:
    with FakeServer() as server:
        serve(server, token=TOKEN, mutate=change)
        yield server


def assert_matches(fetched: Any, expected: pd.DataFrame) -> None:
    assert list(fetched.values.index) == list(expected.index)
    assert fetched.values.to_numpy().tolist() == expected["value"].tolist()
    assert fetched.estimated.to_numpy().tolist() == expected["estimated"].tolist()


# -- endpoints -----------------------------------------------------------------------------

def test_latest(server: FakeServer) -> None:
    fetched = em(server).latest("DE", "lca")
    assert fetched.kind == "actual" and len(fetched) == 1
    assert fetched.values.index[0] == NOW.floor("h") - H
    seen = server.requests[-1]
    assert seen.path == "/v3/carbon-intensity/latest"
    assert seen.query["zone"] == "DE" and seen.query["emissionFactorType"] == "lifecycle"
    assert seen.query["shouldUseFallbackCallerLookup"] == "false"


@pytest.mark.parametrize("signal, factor", [("direct", "direct"), ("lca", "lifecycle")])
def test_history_is_the_last_24_hours(server: FakeServer, signal: str, factor: str) -> None:
    fetched = em(server).history("FR", signal)
    end = NOW.floor("h")
    assert_matches(fetched, trace("FR", end - pd.Timedelta("24h"), end, "60min", signal))
    assert (fetched.provider, fetched.zone, fetched.signal) == ("electricitymaps", "FR", signal)
    assert fetched.step == H and fetched.fetched == NOW and fetched.issued is None
    assert fetched.estimated.any() and not fetched.estimated.all()
    assert server.requests[-1].query["emissionFactorType"] == factor


def test_lca_and_direct_differ(server: FakeServer) -> None:
    lca = em(server).history("DE", "lca").values
    direct = em(server).history("DE", "direct").values
    assert (lca > direct).all()


@pytest.mark.parametrize("granularity, step", [("5_minutes", "5min"), ("15_minutes", "15min"),
                                               ("hourly", "60min")])
def test_granularities(server: FakeServer, granularity: str, step: str) -> None:
    provider = em(server, granularity=granularity)
    start = NOW - pd.Timedelta("3h")
    fetched = provider.actuals("DE", "direct", start, NOW)
    assert fetched.step == pd.Timedelta(step)
    expected = trace("DE", start, NOW, step, "direct")
    # history ends at the last whole period before now
    assert_matches(fetched, expected[expected.index < NOW.floor(step)])
    assert server.requests[-1].query["temporalGranularity"] == granularity


def test_the_last_day_on_whole_hours_comes_from_history(server: FakeServer) -> None:
    # what a live read asks by default (the last day to the hour): the free plan's
    # history serves it, where past-range would be refused to a free token
    end = NOW.floor("1h")
    em(server).actuals("DE", "lca", end - pd.Timedelta("24h"), end)
    assert [s.path for s in server.requests] == ["/v3/carbon-intensity/history"]


def test_recent_actuals_come_from_history(server: FakeServer) -> None:
    start, end = NOW - pd.Timedelta("20h"), NOW - pd.Timedelta("2h")
    fetched = em(server).actuals("DE", "lca", start, end)
    assert [s.path for s in server.requests] == ["/v3/carbon-intensity/history"]
    assert_matches(fetched, trace("DE", start, end, "60min"))


def test_older_actuals_come_from_past_range_in_chunks(server: FakeServer) -> None:
    start = pd.Timestamp("2026-01-01T00:00Z")
    end = pd.Timestamp("2026-01-25T06:00Z")
    fetched = em(server).actuals("DE", "lca", start, end)
    assert_matches(fetched, trace("DE", start, end, "60min"))
    ranges = [(pd.Timestamp(s.query["start"]), pd.Timestamp(s.query["end"]))
              for s in server.requests]
    assert [s.path for s in server.requests] == ["/v3/carbon-intensity/past-range"] * 3
    assert ranges[0][0] == start and ranges[-1][1] == end
    assert all(hi - lo <= pd.Timedelta(days=10) for lo, hi in ranges)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def test_fine_past_range_chunks_by_day(server: FakeServer) -> None:
    start = pd.Timestamp("2026-02-01T00:00Z")
    fetched = em(server, granularity="15_minutes").past_range(
        "DE", "lca", start, start + pd.Timedelta("2D12h"))
    assert len(server.requests) == 3 and len(fetched) == 240
    assert fetched.step == pd.Timedelta("15min")


def test_past_range_overlapping_chunk_answers_are_trimmed() -> None:
    """An API that also returns the point at ``end`` must not duplicate it."""
    def inclusive(route: str, body: Any) -> Any:
        if route == "past-range" and body["data"]:
            last = pd.Timestamp(body["data"][-1]["datetime"])
            extra = dict(body["data"][-1], datetime=(last + H).strftime("%Y-%m-%dT%H:%MZ"))
            body["data"].append(extra)
        return body

    for server in mutated(inclusive):
        start = pd.Timestamp("2026-01-01T00:00Z")
        end = start + pd.Timedelta("15D")
        fetched = em(server).past_range("DE", "lca", start, end)
        assert len(fetched) == 360 and fetched.values.index.is_unique


def test_forecast(server: FakeServer) -> None:
    fetched = em(server).forecast("GB", "lca")
    assert fetched.kind == "forecast" and fetched.issued == issued(NOW)
    assert len(fetched) == 72 and fetched.values.index[0] == NOW.floor("h")
    assert not fetched.estimated.any()
    assert server.requests[-1].query["horizonHours"] == "72"
    assert em(server, horizon_hours=24).forecast("GB", "lca").values.size == 24


def test_forecast_without_issue_time_is_refused() -> None:
    def drop(route: str, body: Any) -> Any:
        body.pop("updatedAt", None)
        return body

    for server in mutated(drop):
        with pytest.raises(ProviderDataError, match="updatedAt"):
            em(server).forecast("DE", "lca")


# -- refusals before any request -----------------------------------------------------------

def test_signal_zone_and_credentials_are_checked_before_any_request(server: FakeServer) -> None:
    with pytest.raises(DataError, match="direct and lca signals, not 'marginal'"):
        em(server).actuals("DE", "marginal", NOW - H, NOW)
    with pytest.raises(DataError, match="does not cover zone 'not a zone'"):
        em(server).forecast("not a zone", "lca")
    with pytest.raises(ProviderAuthError, match="ELECTRICITYMAPS_TOKEN"):
        em(server, token=None).forecast("DE", "lca")
    assert server.requests == []


def test_covers_every_catalog_zone_without_a_request(server: FakeServer) -> None:
    provider = em(server)
    assert all(provider.covers(zone) for zone in load_catalog())
    assert provider.covers("US-CAL-CISO") and provider.covers("SE-SE3")
    assert not provider.covers("de") and not provider.covers("")
    assert server.requests == []


def test_options_are_checked(server: FakeServer) -> None:
    with pytest.raises(DataError, match="granularity"):
        em(server, granularity="30_minutes")
    with pytest.raises(DataError, match="horizon_hours"):
        em(server, horizon_hours=12)


@pytest.mark.parametrize("token", ["wrong-token"])
def test_wrong_token_names_the_variable(server: FakeServer, token: str) -> None:
    with pytest.raises(ProviderAuthError, match=r"electricitymaps.*ELECTRICITYMAPS_TOKEN"):
        em(server, token=token).history("DE", "lca")


# -- faults ----------------------------------------------------------------------------------

def _history_change(change: Callable[[list[dict[str, Any]]], None]) -> Callable[[str, Any], Any]:
    def mutate(route: str, body: Any) -> Any:
        if route == "history":
            change(body["history"])
        return body
    return mutate


def _swap(points: list[dict[str, Any]]) -> None:
    points[3], points[4] = points[4], points[3]


def _duplicate(points: list[dict[str, Any]]) -> None:
    points.insert(5, dict(points[5]))


def _set(index: int, **fields: Any) -> Callable[[list[dict[str, Any]]], None]:
    def change(points: list[dict[str, Any]]) -> None:
        points[index].update(fields)
    return change


def _drop(index: int, key: str) -> Callable[[list[dict[str, Any]]], None]:
    def change(points: list[dict[str, Any]]) -> None:
        del points[index][key]
    return change


@pytest.mark.parametrize("change, words", [
    (_swap, "out of order"),
    (_duplicate, "duplicated"),
    (_set(2, carbonIntensity=-5), "outside 0..2000"),
    (_set(2, carbonIntensity=31000.0), "outside 0..2000"),
    (_set(2, carbonIntensity="300"), "must be a number"),
    (_set(2, carbonIntensity=True), "must be a number"),
    (_set(2, unit="gCO2eq/MWh"), "unit"),
    (_set(2, unit="lbs/MWh"), "unit"),
    (_set(2, emissionFactorType="direct"), "emissionFactorType"),
    (_set(2, zone="FR"), "zone"),
    (_set(2, temporalGranularity="15_minutes"), "temporalGranularity"),
    (_set(2, isEstimated="yes"), "isEstimated"),
    (_set(2, datetime="yesterday"), "not an ISO 8601 time"),
    (_set(2, datetime="2026-03-01T10:00:00"), "no time zone"),
    (_set(2, datetime="2026-03-01T10:07:00Z"), "off the 60-minute grid|out of order"),
    (_drop(2, "carbonIntensity"), "without 'carbonIntensity'"),
    (_drop(2, "datetime"), "without 'datetime'"),
])
def test_bad_points_are_refused(change: Callable[[list[dict[str, Any]]], None],
                                words: str) -> None:
    for server in mutated(_history_change(change)):
        with pytest.raises(ProviderDataError, match=words):
            em(server).history("DE", "lca")


@pytest.mark.parametrize("body, words", [
    ({"zone": "DE"}, "without 'history'"),
    ({"zone": "DE", "history": {"a": 1}}, "'history' that is not a list"),
    ([1, 2, 3], "not an object but list"),
    ({"zone": "DE", "history": [1]}, "point 0 with a point that is not an object"),
    ({"zone": "DE", "unit": "kgCO2/MWh", "history": []}, "unit"),
])
def test_bad_envelopes_are_refused(server: FakeServer, body: Any, words: str) -> None:
    server.fail(Reply(200, body))
    with pytest.raises(ProviderDataError, match=words):
        em(server).history("DE", "lca")


def test_malformed_json_is_refused(server: FakeServer) -> None:
    server.fail(Reply(200, '{"zone": "DE", "history": [', ))
    with pytest.raises(ProviderDataError, match="not JSON"):
        em(server).history("DE", "lca")


def test_null_values_are_gaps_not_fills() -> None:
    for server in mutated(_history_change(_set(4, carbonIntensity=None))):
        fetched = em(server).history("DE", "lca")
        assert len(fetched) == 23
        times = fetched.values.index
        assert (times[4] - times[3]) == 2 * H


def test_the_token_travels_only_in_the_auth_header(
        server: FakeServer, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    provider = em(server)
    provider.latest("DE", "lca")
    provider.actuals("DE", "direct", NOW - pd.Timedelta("30D"), NOW - pd.Timedelta("2D"))
    provider.forecast("DE", "lca")
    server.fail(Reply(503), Reply(503))
    with pytest.raises(ProviderUnavailable) as unavailable:
        provider.history("DE", "lca")
    server.fail(Reply(401, {"message": f"token {TOKEN} refused"}))
    with pytest.raises(ProviderAuthError) as refused:
        provider.history("DE", "lca")
    for seen in server.requests:
        assert seen.headers.get("auth-token") == TOKEN
        assert TOKEN not in seen.path and TOKEN not in repr(seen.query)
        assert all(TOKEN not in v for k, v in seen.headers.items() if k != "auth-token")
    shown = str(unavailable.value) + str(refused.value) + repr(provider)
    out = capsys.readouterr()
    assert TOKEN not in shown + caplog.text + out.out + out.err


def test_refused_paid_endpoint_mentions_the_plan(server: FakeServer) -> None:
    server.fail(Reply(403, {"message": "Forbidden"}))
    with pytest.raises(ProviderAuthError, match=r"ELECTRICITYMAPS_TOKEN.*free plan") as caught:
        em(server).forecast("DE", "lca")
    assert "/v3/carbon-intensity/forecast" in str(caught.value)
    server.fail(Reply(403, {"message": "Forbidden"}))
    with pytest.raises(ProviderAuthError) as free:
        em(server).history("DE", "lca")
    assert "free plan" not in str(free.value)
