"""Live forecasts at a time off the hour (issue 16 follow-up): the slot holding now is
judged on the part of it from the provider's first forecast period on, for marginal
(WattTime) and direct (UK Carbon Intensity) alike; a marginal output ends where
WattTime's forecast ends, with a note; and a zone outside the catalog with no history
says how to get one.  Against the fake servers at NOW, 12:34: WattTime's forecast runs
from 12:30 for 24 h in 5-minute periods, UK CI's from 12:30 in half hours."""

from __future__ import annotations

import json
import os

import fake_ukci
import fake_watttime as fwt
import pandas as pd
import pytest
from greenepoch.data.archive.store import Archive
from greenepoch.data.errors import DataError
from greenepoch.data.providers.config import load_config
from greenepoch.data.providers.records import G_PER_KWH_PER_LBS_PER_MWH
from greenepoch.planner.pipeline import live_intensities

# the fake UK CI and WattTime servers at NOW (12:34), an archive, no data folder
from tests.planner.test_live_zones import (  # noqa: F401 (live_env: a fixture)
    LONDON,
    MODEL,
    NOW,
    _archive_london,
    _one_error_line,
    _run,
    live_env,
)

pytestmark = pytest.mark.usefixtures("live_env")
HOUR = pd.Timedelta("1h")
MARGINAL = ["--zones", "CAISO_NORTH", "--live", "--provider", "watttime", "--signal",
            "marginal"]


def _moer(start: pd.Timestamp, end: pd.Timestamp) -> float:
    """The mean the fake answers over [start, end), in g/kWh."""
    return float(fwt.trace("CAISO_NORTH", start, end).mean()) * G_PER_KWH_PER_LBS_PER_MWH


def test_marginal_show_off_the_hour_with_the_default_horizon() -> None:
    result = _run("forecast", "show", *MARGINAL, "--json")
    assert result.exit_code == 0, result.output
    table = pd.DataFrame(json.loads(result.stdout)["forecast"])
    times = pd.to_datetime(table["time"], utc=True)
    # 12:00 (judged on 12:30..13:00) .. 11:00 tomorrow; 12:00 tomorrow is only half
    # covered (the forecast ends at 12:30), so the 48 h asked end after 24 rows
    noon = NOW.floor("h")
    assert list(times) == list(pd.date_range(noon, periods=24, freq="1h"))
    assert set(table["origin"]) == {"provider"}
    first = noon + pd.Timedelta("30min")
    assert table["p50"].iloc[0] == pytest.approx(_moer(first, noon + HOUR), abs=0.01)
    assert table["p50"].iloc[0] != pytest.approx(_moer(noon, noon + HOUR), abs=0.01)
    assert table["p50"].iloc[1] == pytest.approx(_moer(noon + HOUR, noon + 2 * HOUR),
                                                 abs=0.01)
    last = noon + 23 * HOUR
    assert table["p50"].iloc[-1] == pytest.approx(_moer(last, last + HOUR), abs=0.01)
    assert (table["p10"] == table["p50"]).all() and (table["p90"] == table["p50"]).all()
    assert ("the marginal forecast covers the slots up to 2026-03-03 12:00 UTC, where the "
            "output ends instead of at 2026-03-04 12:00 UTC" in result.stderr)


def test_marginal_when_off_the_hour_starts_now_and_ends_within_the_forecast() -> None:
    result = _run("when", "--duration", "1h", *MARGINAL, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    noon = NOW.floor("h")
    slot12 = _moer(noon + pd.Timedelta("30min"), noon + HOUR)  # the rest of 12:00
    slot13 = _moer(noon + HOUR, noon + 2 * HOUR)
    # a run from 12:34 to 13:34: 26 min of the 12:00 slot, 34 of the 13:00 one
    assert doc["now"][0]["p50"] == pytest.approx((26 * slot12 + 34 * slot13) / 60, abs=0.01)
    # the default --within 24h is cut so that every 1 h run ends by 12:00 tomorrow
    assert "starts considered up to 2026-03-03 11:00 UTC, not within 1D" in result.stderr
    assert NOW <= pd.Timestamp(doc["start"]) <= pd.Timestamp("2026-03-03T11:00Z")
    assert pd.Timestamp(doc["end"]) <= pd.Timestamp("2026-03-03T12:00Z")


def test_marginal_when_longer_than_the_forecast_says_where_it_ends() -> None:
    line = _one_error_line(_run("when", "--duration", "30h", *MARGINAL, "--within", "0h"))
    assert "the live forecast ends at 2026-03-03 12:00 UTC: a 30h job starting now" in line


def test_a_marginal_plan_beyond_the_forecast_says_what_it_covers() -> None:
    config = load_config()
    with pytest.raises(DataError) as refused:
        live_intensities(["CAISO_NORTH"], NOW.floor("h"), NOW + 30 * HOUR,
                         signal="marginal", provider="watttime", config=config,
                         archive=Archive(os.environ["GREENEPOCH_ARCHIVE"]), clock=lambda: NOW)
    message = str(refused.value)
    assert ("the marginal forecast covers the 1h slots 2026-03-02T12:00:00+00:00 .. "
            "2026-03-03T12:00:00+00:00 (its periods: 2026-03-02T12:30:00+00:00 .. "
            "2026-03-03T12:30:00+00:00;" in message)
    assert "not up to 2026-03-03T19:00:00+00:00" in message
    # within the forecast: every slot, the one holding now from 12:30 on
    got = live_intensities(["CAISO_NORTH"], NOW.floor("h"), NOW + 6 * HOUR,
                           signal="marginal", provider="watttime", config=config,
                           archive=Archive(os.environ["GREENEPOCH_ARCHIVE"]), clock=lambda: NOW)
    p50 = got.judged.values["CAISO_NORTH"]
    assert len(p50) == 7
    assert p50.iloc[0] == pytest.approx(_moer(NOW.floor("30min"), NOW.ceil("h")), abs=0.01)


def test_direct_show_off_the_hour_judges_the_first_hour_the_same_way() -> None:
    _archive_london({"archive": os.environ["GREENEPOCH_ARCHIVE"]})
    result = _run("forecast", "show", "--zones", "GB-LONDON", "--live", "--provider", "ukci",
                  "--horizon", "6h", *MODEL, "--json")
    assert result.exit_code == 0, result.output
    table = pd.DataFrame(json.loads(result.stdout)["forecast"])
    noon = NOW.floor("h")
    assert pd.Timestamp(table["time"].iloc[0]) == noon
    assert table["origin"].iloc[0] == "provider"
    # 12:00 is judged on its one half hour from 12:30; 13:00 on both of its half hours
    answered = fake_ukci.trace(LONDON, noon, noon + 2 * HOUR)["forecast"]
    assert table["p50"].iloc[0] == pytest.approx(answered.iloc[1])
    assert table["p50"].iloc[1] == pytest.approx(answered.iloc[2:4].mean())


def test_a_zone_outside_the_catalog_without_history_says_how_to_get_one() -> None:
    line = _one_error_line(_run("forecast", "show", "--zones", "GB-LONDON", "--live", "--provider",
                       "ukci", "--horizon", "6h", *MODEL))
    assert "GB-LONDON: no history to fit the own forecast model on" in line
    assert "greenepoch data pull --provider ukci --zones GB-LONDON --since 2026-" in line
    assert "--data" in line and "climatology" not in line and "calibrate" not in line


@pytest.mark.parametrize("command", [
    ["when", "--duration", "1h"],
    ["forecast", "show"],
])
def test_no_marginal_forecast_at_all_says_so(monkeypatch: pytest.MonkeyPatch,
                                             command: list[str]) -> None:
    # no WattTime account and nothing archived: no marginal forecast, which is the error
    # (not the own model's, which never extends a marginal forecast)
    monkeypatch.delenv("WATTTIME_USERNAME")
    monkeypatch.delenv("WATTTIME_PASSWORD")
    result = _run(*command, "--zones", "CAISO_NORTH", "--live", "--signal", "marginal")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert "CAISO_NORTH: no marginal forecast" in errors[0]
    assert "WATTTIME_USERNAME" in errors[0]
    assert "the model forecast" not in result.stderr
