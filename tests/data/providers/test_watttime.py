"""WattTime v3 against the fake API on 127.0.0.1 (tests/support/fake_watttime.py)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pandas as pd
import pytest
from fake_http import FakeServer, Reply
from fake_watttime import CREDENTIALS, PASSWORD, USERNAME, FakeWattTime, serve, trace
from greenepoch.data.errors import (
    DataError,
    ProviderAuthError,
    ProviderDataError,
    ProviderError,
)
from greenepoch.data.providers import watttime
from greenepoch.data.providers.http import HttpAuthError, HttpPolicy
from greenepoch.data.providers.records import G_PER_KWH_PER_LBS_PER_MWH
from greenepoch.data.providers.watttime import WattTime

NOW = pd.Timestamp("2026-03-02 12:02:30", tz="UTC")
FAST = HttpPolicy(timeout_s=2.0, attempts=2, total_s=5.0, backoff_s=0.01, max_backoff_s=0.02)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    # regions and tokens are kept per process and base URL; a port may be reused
    watttime._regions.clear()
    watttime._tokens.clear()
    yield
    watttime._regions.clear()
    watttime._tokens.clear()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> FakeWattTime:
    return serve(server, now=NOW)


def provider(server: FakeServer, credentials: dict[str, str] | None = None) -> WattTime:
    return WattTime(base_url=server.url, credentials=CREDENTIALS if credentials is None
                    else credentials, http=FAST, clock=lambda: NOW)


def paths(server: FakeServer) -> list[str]:
    return [seen.path for seen in server.requests]


# -- login and tokens -----------------------------------------------------------------------

def test_login_with_basic_auth_then_bearer_token(server: FakeServer, fake: FakeWattTime) -> None:
    provider(server).forecast("CAISO_NORTH", "marginal")
    login, data = server.requests
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert (login.path, login.headers["authorization"]) == ("/login", f"Basic {basic}")
    assert data.path == "/v3/forecast"
    assert data.headers["authorization"] == "Bearer token-1"
    assert data.query == {"region": "CAISO_NORTH", "signal_type": "co2_moer"}


def test_the_password_is_sent_to_login_only(server: FakeServer, fake: FakeWattTime) -> None:
    wt = provider(server)
    wt.forecast("US-CAL-CISO", "marginal")
    wt.actuals("CAISO_NORTH", "marginal", NOW - pd.Timedelta("1h"), NOW)
    wt.signal_index("CAISO_NORTH")
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    for seen in server.requests:
        sent = repr((seen.path, seen.query, seen.headers))
        assert PASSWORD not in sent
        assert (basic in sent) == (seen.path == "/login")


def test_the_token_is_kept_between_calls(server: FakeServer, fake: FakeWattTime) -> None:
    wt = provider(server)
    wt.forecast("CAISO_NORTH", "marginal")
    wt.forecast("CAISO_NORTH", "marginal")
    assert fake.logins == 1
    assert paths(server) == ["/login", "/v3/forecast", "/v3/forecast"]


def test_the_token_is_shared_by_the_providers_of_the_process(
        server: FakeServer, fake: FakeWattTime) -> None:
    provider(server).forecast("CAISO_NORTH", "marginal")
    provider(server).forecast("CAISO_NORTH", "marginal")
    assert fake.logins == 1
    other = {**CREDENTIALS, "WATTTIME_USERNAME": "someone-else"}
    with pytest.raises(ProviderAuthError):  # another user's token is not borrowed
        provider(server, other).forecast("CAISO_NORTH", "marginal")


def test_a_kept_token_needs_the_password_still_set(server: FakeServer,
                                                   fake: FakeWattTime) -> None:
    provider(server).forecast("CAISO_NORTH", "marginal")
    with pytest.raises(ProviderAuthError, match="WATTTIME_PASSWORD"):
        provider(server, {"WATTTIME_USERNAME": USERNAME}).forecast("CAISO_NORTH", "marginal")


def test_a_refused_kept_token_logs_in_again_once(server: FakeServer,
                                                 fake: FakeWattTime) -> None:
    wt = provider(server)
    wt.forecast("CAISO_NORTH", "marginal")
    fake.revoke()  # the token expired on WattTime's side
    again = wt.forecast("CAISO_NORTH", "marginal")
    assert len(again) == 24 * 12
    assert paths(server) == ["/login", "/v3/forecast", "/v3/forecast", "/login",
                             "/v3/forecast"]
    assert server.requests[-1].headers["authorization"] == "Bearer token-2"


def test_a_refusal_after_the_new_login_is_raised(server: FakeServer,
                                                 fake: FakeWattTime) -> None:
    wt = provider(server)
    wt.forecast("CAISO_NORTH", "marginal")
    fake.override("/v3/forecast", Reply(401, {"error": "Invalid token"}))
    with pytest.raises(HttpAuthError, match="WATTTIME_USERNAME and WATTTIME_PASSWORD") \
            as caught:
        wt.forecast("CAISO_NORTH", "marginal")
    assert caught.value.status == 401
    assert fake.logins == 2  # one new login, not a loop


def test_a_403_with_a_kept_token_says_the_plan_and_does_not_log_in_again(
        server: FakeServer, fake: FakeWattTime) -> None:
    """403: the token is valid, the account's plan does not cover the region; logging in
    again cannot help (only a 401 does that)."""
    wt = provider(server)
    wt.forecast("CAISO_NORTH", "marginal")
    fake.override("/v3/forecast", Reply(403, {"error": "Invalid scope"}))
    with pytest.raises(HttpAuthError) as caught:
        wt.forecast("PJM_DC", "marginal")
    assert caught.value.status == 403
    message = str(caught.value)
    assert "HTTP 403" in message and "plan" in message and "'PJM_DC'" in message
    assert PASSWORD not in message
    assert fake.logins == 1
    assert paths(server) == ["/login", "/v3/forecast", "/v3/forecast"]


def test_a_fresh_token_refused_is_not_retried(server: FakeServer, fake: FakeWattTime) -> None:
    fake.override("/v3/forecast", Reply(403, {"error": "Invalid scope"}))
    with pytest.raises(ProviderAuthError, match=r"HTTP 403.*does not cover region "
                                                r"'CAISO_NORTH'"):
        provider(server).forecast("CAISO_NORTH", "marginal")
    assert paths(server) == ["/login", "/v3/forecast"]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_login_names_both_variables(server: FakeServer, status: int) -> None:
    server.route("GET", r"/login", lambda seen: Reply(status, {"error": "no"}))
    with pytest.raises(ProviderAuthError) as caught:
        provider(server).forecast("CAISO_NORTH", "marginal")
    message = str(caught.value)
    assert "watttime" in message and f"HTTP {status}" in message
    assert "WATTTIME_USERNAME" in message and "WATTTIME_PASSWORD" in message
    assert PASSWORD not in message


def test_wrong_password_is_refused_by_the_fake(server: FakeServer, fake: FakeWattTime) -> None:
    wrong = {**CREDENTIALS, "WATTTIME_PASSWORD": "not-it"}
    with pytest.raises(ProviderAuthError, match=r"/login .*HTTP 401"):
        provider(server, wrong).forecast("CAISO_NORTH", "marginal")
    assert fake.logins == 0


def test_missing_credentials_name_the_variable_before_any_request(server: FakeServer) -> None:
    wt = provider(server, {"WATTTIME_USERNAME": USERNAME})
    assert not wt.configured()
    with pytest.raises(ProviderAuthError, match="WATTTIME_PASSWORD"):
        wt.forecast("CAISO_NORTH", "marginal")
    assert server.requests == []


def test_no_password_or_token_in_logs(server: FakeServer, fake: FakeWattTime,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.fail(Reply(503))  # a retry, logged
    wt = provider(server)
    wt.forecast("CAISO_NORTH", "marginal")
    fake.revoke()
    wt.forecast("CAISO_NORTH", "marginal")
    assert caplog.records  # the retries were logged
    assert PASSWORD not in caplog.text and "token-1" not in caplog.text
    assert PASSWORD not in repr(wt)


# -- zones and regions -------------------------------------------------------------------

def test_covers_catalog_zones_and_region_codes(server: FakeServer) -> None:
    wt = provider(server)
    assert wt.covers("US-CAL-CISO") and wt.covers("DE")
    assert wt.covers("CAISO_NORTH") and wt.covers("PSCO") and wt.covers("PJM_DC")
    assert not wt.covers("GB-LONDON") and not wt.covers("caiso_north")
    assert not wt.covers("XX-NOWHERE")


def test_a_zone_not_covered_or_another_signal_is_refused_before_any_request(
        server: FakeServer) -> None:
    wt = provider(server)
    with pytest.raises(DataError, match="does not cover zone 'GB-LONDON'"):
        wt.forecast("GB-LONDON", "marginal")
    with pytest.raises(DataError, match="serves the marginal signal, not 'direct'"):
        wt.forecast("CAISO_NORTH", "direct")
    assert server.requests == []


def test_a_catalog_zone_is_located_once_per_process(server: FakeServer,
                                                    fake: FakeWattTime) -> None:
    first = provider(server).forecast("US-CAL-CISO", "marginal")
    assert (first.zone, first.region) == ("US-CAL-CISO", "CAISO_NORTH")
    located = [s for s in server.requests if s.path == "/v3/region-from-loc"]
    assert [(s.query["latitude"], s.query["longitude"], s.query["signal_type"])
            for s in located] == [("36.8", "-119.4", "co2_moer")]
    assert server.requests[-1].query["region"] == "CAISO_NORTH"
    provider(server).forecast("US-CAL-CISO", "marginal")  # a new instance, same URL
    assert paths(server).count("/v3/region-from-loc") == 1


def test_a_region_code_is_asked_as_is(server: FakeServer, fake: FakeWattTime) -> None:
    got = provider(server).forecast("CAISO_NORTH", "marginal")
    assert (got.zone, got.region) == ("CAISO_NORTH", "")
    assert "/v3/region-from-loc" not in paths(server)


def test_a_location_without_coverage_is_a_provider_error(server: FakeServer,
                                                         fake: FakeWattTime) -> None:
    where = r"no co2_moer region at 52.36, -1.17 \(zone GB\).*No coverage"
    with pytest.raises(ProviderError, match=where):
        provider(server).forecast("GB", "marginal")


def test_region_from_loc_answer_without_region_is_refused(server: FakeServer,
                                                          fake: FakeWattTime) -> None:
    fake.override("/v3/region-from-loc", Reply(200, {"region_full_name": "x"}))
    with pytest.raises(ProviderDataError, match="without 'region'"):
        provider(server).forecast("DE", "marginal")


# -- data ------------------------------------------------------------------------------------

def test_forecast_is_marginal_5_minute_g_per_kwh_issued_at_generated_at(
        server: FakeServer, fake: FakeWattTime) -> None:
    got = provider(server).forecast("CAISO_NORTH", "marginal")
    issued = NOW.floor("5min")
    expected = trace("CAISO_NORTH", issued, issued + pd.Timedelta("24h"))
    assert (got.kind, got.signal, got.provider) == ("forecast", "marginal", "watttime")
    assert got.step == pd.Timedelta("5min")
    assert got.issued == issued and got.fetched == NOW
    assert got.values.index.equals(expected.index)
    pd.testing.assert_series_equal(got.values, expected * G_PER_KWH_PER_LBS_PER_MWH,
                                   check_names=False, check_freq=False)
    assert not got.estimated.any()


def test_lbs_per_mwh_to_g_per_kwh_by_hand(server: FakeServer, fake: FakeWattTime) -> None:
    # 1,000 lbs/MWh = 1,000 x 453.59237 g / 1,000 kWh = 453.59237 g/kWh
    body = {"data": [{"point_time": "2026-03-02T12:00:00+00:00", "value": 1000},
                     {"point_time": "2026-03-02T12:05:00+00:00", "value": 220.5}],
            "meta": {"data_point_period_seconds": 300, "region": "CAISO_NORTH",
                     "signal_type": "co2_moer", "units": "lbs_co2_per_mwh",
                     "generated_at": "2026-03-02T12:00:00+00:00", "warnings": []}}
    fake.override("/v3/forecast", Reply(200, body))
    got = provider(server).forecast("CAISO_NORTH", "marginal")
    assert got.values.tolist() == pytest.approx([453.59237, 100.01711758])


def test_actuals_come_from_historical_in_30_day_chunks(server: FakeServer,
                                                       fake: FakeWattTime) -> None:
    start, end = NOW.floor("D") - pd.Timedelta(days=70), NOW.floor("D")
    got = provider(server).actuals("CAISO_NORTH", "marginal", start, end)
    asked = [s for s in server.requests if s.path == "/v3/historical"]
    spans = [(pd.Timestamp(s.query["start"]), pd.Timestamp(s.query["end"])) for s in asked]
    assert spans == [(start, start + pd.Timedelta(days=30)),
                     (start + pd.Timedelta(days=30), start + pd.Timedelta(days=60)),
                     (start + pd.Timedelta(days=60), end)]
    expected = trace("CAISO_NORTH", start, end)
    assert (got.kind, got.issued, got.step) == ("actual", None, pd.Timedelta("5min"))
    assert got.values.index.equals(expected.index)  # each chunk border once, end excluded
    pd.testing.assert_series_equal(got.values, expected * G_PER_KWH_PER_LBS_PER_MWH,
                                   check_names=False, check_freq=False)


def test_actuals_stop_at_what_the_provider_has(server: FakeServer, fake: FakeWattTime) -> None:
    got = provider(server).actuals("CAISO_NORTH", "marginal", NOW - pd.Timedelta("1h"),
                                   NOW + pd.Timedelta("1h"))
    assert got.values.index[-1] == NOW.floor("5min")
    assert len(got) == 12  # 11:05 .. 12:00


def test_imputed_points_are_estimated(server: FakeServer, fake: FakeWattTime) -> None:
    body = {"data": [{"point_time": "2026-03-02T11:00:00Z", "value": 900.0,
                      "imputed_data_used": True},
                     {"point_time": "2026-03-02T11:05:00Z", "value": 910.0,
                      "imputed_data_used": False}],
            "meta": {"data_point_period_seconds": 300, "region": "CAISO_NORTH",
                     "signal_type": "co2_moer", "units": "lbs_co2_per_mwh"}}
    fake.override("/v3/historical", Reply(200, body))
    got = provider(server).actuals("CAISO_NORTH", "marginal",
                                   pd.Timestamp("2026-03-02 11:00", tz="UTC"),
                                   pd.Timestamp("2026-03-02 12:00", tz="UTC"))
    assert got.estimated.tolist() == [True, False]


def test_historical_asks_for_the_imputed_marker(server: FakeServer, fake: FakeWattTime) -> None:
    # without include_imputed_marker=true WattTime leaves imputed_data_used out of every
    # point, and no value could ever be flagged estimated
    provider(server).actuals("CAISO_NORTH", "marginal", NOW - pd.Timedelta("1h"), NOW)
    asked = [r for r in server.requests if r.path == "/v3/historical"]
    assert asked and all(r.query.get("include_imputed_marker") == "true" for r in asked)


def test_signal_index_is_a_percentile(server: FakeServer, fake: FakeWattTime) -> None:
    index = provider(server).signal_index("US-CAL-CISO")
    assert index.region == "CAISO_NORTH" and index.time == NOW.floor("5min")
    assert 0.0 <= index.percentile <= 100.0
    assert server.requests[-1].path == "/v3/signal-index"


def test_signal_index_in_other_units_is_refused(server: FakeServer, fake: FakeWattTime) -> None:
    fake.override("/v3/signal-index", Reply(200, {
        "data": [{"point_time": "2026-03-02T12:00:00Z", "value": 840.0}],
        "meta": {"region": "CAISO_NORTH", "units": "lbs_co2_per_mwh",
                 "data_point_period_seconds": 300}}))
    with pytest.raises(ProviderDataError, match=r"units 'lbs_co2_per_mwh'.*'percentile'"):
        provider(server).signal_index("CAISO_NORTH")


# -- faults -------------------------------------------------------------------------------

def _forecast(points: list[tuple[str, object]], **meta: object) -> dict[str, object]:
    base: dict[str, object] = {
        "data_point_period_seconds": 300, "region": "CAISO_NORTH", "signal_type": "co2_moer",
        "units": "lbs_co2_per_mwh", "generated_at": "2026-03-02T12:00:00+00:00"}
    base.update(meta)
    return {"data": [{"point_time": t, "value": v} for t, v in points],
            "meta": {k: v for k, v in base.items() if v is not None}}


T0, T1, T2 = ("2026-03-02T12:00:00+00:00", "2026-03-02T12:05:00+00:00",
              "2026-03-02T12:10:00+00:00")


@pytest.mark.parametrize("body, match", [
    ("<html>oops</html>", "not JSON"),
    ({"meta": {}}, "without 'data'"),
    ({"data": []}, "without 'meta'"),
    (_forecast([(T0, 900.0)], units="kg_co2_per_mwh"), "units 'kg_co2_per_mwh'"),
    (_forecast([(T0, 900.0)], units=None), "without 'units'"),
    (_forecast([(T0, 900.0)], generated_at=None), "without 'generated_at'"),
    (_forecast([(T0, 900.0)], signal_type="co2_aoer"), "signal_type 'co2_aoer'"),
    (_forecast([(T0, 900.0)], region="PJM_DC"), "region 'PJM_DC'"),
    (_forecast([(T0, 900.0)], data_point_period_seconds=60), "data_point_period_seconds 60"),
    (_forecast([(T1, 900.0), (T0, 910.0)]), "out of order"),
    (_forecast([(T0, 900.0), (T0, 910.0)]), "duplicated"),
    (_forecast([(T0, 900.0), ("2026-03-02T12:07:00+00:00", 910.0)]), "off the 5-minute grid"),
    (_forecast([(T0, 900.0), (T1, 5000.0)]), "outside 0..2000"),
    (_forecast([(T0, -3.0)]), "outside 0..2000"),
    (_forecast([(T0, "900")]), "value '900'"),
    (_forecast([(T0, None)]), "value None"),
    (_forecast([("2026-03-02 12:00", 900.0)]), "with its offset"),
    (_forecast([(T0, 900.0), (T2, 905.0)], generated_at="2026-03-03T00:00:00Z"),
     "after it was fetched"),
    ({"data": [{"value": 900.0}], "meta": _forecast([])["meta"]}, "without 'point_time'"),
])
def test_malformed_forecasts_are_refused(server: FakeServer, fake: FakeWattTime,
                                         body: object, match: str) -> None:
    fake.override("/v3/forecast", Reply(200, body))
    with pytest.raises(ProviderDataError, match=match):
        provider(server).forecast("CAISO_NORTH", "marginal")


def test_a_token_missing_from_login_is_refused(server: FakeServer) -> None:
    server.route("GET", r"/login", lambda seen: Reply(200, {"ok": "yes"}))
    with pytest.raises(ProviderDataError, match="without 'token'"):
        provider(server).forecast("CAISO_NORTH", "marginal")


def test_historical_in_wrong_units_is_refused(server: FakeServer) -> None:
    serve(server, now=NOW, units="g_co2_per_kwh")
    with pytest.raises(ProviderDataError, match="units 'g_co2_per_kwh'"):
        provider(server).actuals("CAISO_NORTH", "marginal", NOW - pd.Timedelta("1h"), NOW)


def test_naive_times_are_refused(server: FakeServer) -> None:
    with pytest.raises(DataError, match="`start` must be a time with a time zone"):
        provider(server).actuals("CAISO_NORTH", "marginal", pd.Timestamp("2026-03-01"), NOW)
