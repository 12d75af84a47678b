"""Live zones outside the region catalog (issue 16 follow-up): with ``--live``, ``when``
and ``forecast show`` take a zone a provider covers though the catalog lacks it (a UK
Carbon Intensity region such as GB-LONDON, a WattTime region code such as CAISO_NORTH),
decided without a request; without ``--live``, or when no provider covers it, the name
is refused in one error line before any request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_ukci
import fake_watttime as fwt
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from fake_http import FakeServer
from greenepoch.data.archive.store import Archive
from greenepoch.data.errors import CatalogError
from greenepoch.data.providers import base
from greenepoch.data.providers.records import G_PER_KWH_PER_LBS_PER_MWH, fetched_series
from greenepoch.data.providers.registry import providers_covering
from greenepoch.data.regions import resolve_zones
from greenepoch.planner.cli.main import cli

NOW = pd.Timestamp("2026-03-02T12:34:00Z")
LONDON = 13  # GB-LONDON's region id in the UK Carbon Intensity API
MODEL = ["--forecast", "mean7d"]


@pytest.fixture
def live_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The fake UK Carbon Intensity and WattTime servers at NOW, an archive in tmp_path,
    no Electricity Maps token, no model cache, no data folder."""
    config = tmp_path / "config.toml"
    config.write_text('[live]\nproviders = ["ukci", "watttime"]\n'
                      "[http]\nattempts = 1\ntotal_s = 5\n", encoding="utf-8")
    config.chmod(0o600)
    archive = f"sqlite:///{tmp_path / 'archive.db'}"
    with FakeServer() as uk, FakeServer() as wt:
        fake_ukci.serve(uk, now=NOW)
        fwt.serve(wt, now=NOW)
        for name, value in {
            "GREENEPOCH_UKCI_URL": uk.url, "GREENEPOCH_WATTTIME_URL": wt.url,
            "WATTTIME_USERNAME": fwt.USERNAME, "WATTTIME_PASSWORD": fwt.PASSWORD,
            "GREENEPOCH_ARCHIVE": archive,
            "GREENEPOCH_CONFIG": str(config), "GREENEPOCH_CACHE": "off",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
        monkeypatch.setattr(base, "utc_now", lambda: NOW)
        yield {"uk": uk, "wt": wt, "archive": archive}


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error:"), result.stderr
    return lines[0]


# -- the library: resolve_zones(outside=) and providers_covering -------------------------

def test_outside_admits_only_what_the_catalog_lacks_and_the_callable_accepts() -> None:
    asked: list[str] = []

    def outside(name: str) -> bool:
        asked.append(name)
        return name == "GB-LONDON"

    assert resolve_zones("eu-central-1,GB-LONDON,de", outside=outside) == ["DE", "GB-LONDON"]
    assert asked == ["GB-LONDON"]  # catalog names never reach the callable
    with pytest.raises(CatalogError, match="unknown zone or cloud region 'GB-NOWHERE'"):
        resolve_zones("DE,GB-NOWHERE", outside=outside)
    with pytest.raises(CatalogError):
        resolve_zones("GB-LONDON")  # without `outside`: the catalog only, as before


@pytest.mark.parametrize(("zone", "signal", "names", "expected"), [
    ("GB-LONDON", "direct", ("ukci",), ["ukci"]),
    ("GB-LONDON", "marginal", ("ukci",), []),  # ukci serves direct only
    ("CAISO_NORTH", "marginal", ("watttime", "ukci"), ["watttime"]),
    ("CAISO_NORTH", "direct", ("electricitymaps", "ukci"), []),
    ("gb-london", None, ("ukci", "watttime"), []),  # providers' names are exact
])
def test_providers_covering_decides_without_a_request(zone: str, signal: str | None,
                                                      names: tuple[str, ...],
                                                      expected: list[str]) -> None:
    # the closed port of the test session: a request would fail, not answer
    assert providers_covering(zone, signal=signal, names=names) == expected


# -- the commands ----------------------------------------------------------------------

def _archive_london(env: dict[str, Any]) -> None:
    """Twelve days of GB-LONDON actuals in the archive (what 'data pull --provider ukci'
    keeps): the own model's history, which the synthetic default has not for a zone
    outside the catalog."""
    end = NOW.floor("30min") - pd.Timedelta("1D")
    answered = fake_ukci.trace(LONDON, end - pd.Timedelta("12D"), end)
    points = [(t, float(v), True) for t, v in answered["forecast"].items()]
    Archive(env["archive"]).put(fetched_series("ukci", "GB-LONDON", "direct", "actual",
                                               fake_ukci.STEP, points, fetched=end))


def test_forecast_show_a_uk_region_with_live(live_env: dict[str, Any]) -> None:
    _archive_london(live_env)
    result = _run("forecast", "show", "--zones", "GB-LONDON", "--live", "--provider", "ukci",
                  "--slot", "30min", "--horizon", "6h", *MODEL, "--json")
    assert result.exit_code == 0, result.output
    table = pd.DataFrame(json.loads(result.stdout)["forecast"])
    assert set(table["zone"]) == {"GB-LONDON"}
    provided = table[table["origin"] == "provider"]
    assert len(provided) == 12
    first = pd.Timestamp(provided["time"].iloc[0])
    answered = fake_ukci.trace(LONDON, first, first + len(provided) * fake_ukci.STEP)
    assert provided["p50"].to_numpy() == pytest.approx(answered["forecast"].to_numpy())
    assert any("/regional/" in seen.path for seen in live_env["uk"].requests)


def test_forecast_show_a_watttime_region_marginal(live_env: dict[str, Any]) -> None:
    # 15-min slots: the fake's forecast starts at NOW's 5-min mark (12:30), so the slot
    # holding NOW is covered whole (an hourly slot from 12:00 would not be)
    result = _run("forecast", "show", "--zones", "CAISO_NORTH", "--live", "--provider",
                  "watttime", "--signal", "marginal", "--slot", "15min", "--horizon", "6h",
                  *MODEL, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["signal"] == "marginal"
    table = pd.DataFrame(doc["forecast"])
    assert set(table["zone"]) == {"CAISO_NORTH"} and set(table["origin"]) == {"provider"}
    first = pd.Timestamp(table["time"].iloc[0])
    assert first == NOW.floor("15min")
    slot = fwt.trace("CAISO_NORTH", first, first + pd.Timedelta("15min")).mean()
    assert table["p50"].iloc[0] == pytest.approx(slot * G_PER_KWH_PER_LBS_PER_MWH, abs=0.01)
    queried = {seen.query.get("region") for seen in live_env["wt"].requests}
    assert "CAISO_NORTH" in queried


def test_when_a_uk_region_with_live(live_env: dict[str, Any]) -> None:
    _archive_london(live_env)
    result = _run("when", "--zones", "GB-LONDON", "--live", "--provider", "ukci",
                  "--duration", "2h", "--within", "6h", *MODEL, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["zone"] == "GB-LONDON" and doc["live"] is True
    assert doc["origin_slots"] == {"provider": 2}


@pytest.mark.parametrize("command", [
    ["when", "--duration", "2h", "--within", "6h"],
    ["forecast", "show", "--horizon", "6h"],
])
def test_outside_zones_need_live(live_env: dict[str, Any], command: list[str]) -> None:
    line = _one_error_line(_run(*command, "--zones", "GB-LONDON", *MODEL))
    assert "unknown zone or cloud region 'GB-LONDON'" in line


@pytest.mark.parametrize(("zones", "extra", "says"), [
    ("CAISO_NORTH", ["--provider", "ukci"], "--provider ukci covering it for --signal direct"),
    ("CAISO_NORTH", [], "any provider covering it for --signal direct"),
    ("GB-LONDON", ["--signal", "marginal"], "for --signal marginal"),
])
def test_a_zone_no_provider_covers_is_refused_before_any_request(
        live_env: dict[str, Any], zones: str, extra: list[str], says: str) -> None:
    for command in (["when", "--duration", "2h", "--within", "6h"],
                    ["forecast", "show", "--horizon", "6h"]):
        line = _one_error_line(_run(*command, "--zones", zones, "--live", *extra, *MODEL))
        assert f"'{zones}'" in line and says in line
    assert not live_env["uk"].requests and not live_env["wt"].requests


@pytest.mark.parametrize("command", [
    ["when", "--duration", "2h", "--within", "6h"],
    ["forecast", "show", "--horizon", "6h"],
])
def test_from_with_live_is_refused(live_env: dict[str, Any], command: list[str]) -> None:
    line = _one_error_line(_run(*command, "--zones", "GB", "--live", "--from",
                                "2026-03-01T00:00Z", *MODEL))
    assert "--from is for --data" in line
    assert not live_env["uk"].requests and not live_env["wt"].requests


@pytest.mark.parametrize("extra", [
    ["--provider", "ukci"],
    ["--archive", "sqlite:////nowhere/archive.db"],
    ["--allow-default"],
    ["--signal", "marginal"],
])
@pytest.mark.parametrize("command", [
    ["when", "--duration", "2h", "--within", "6h"],
    ["forecast", "show", "--horizon", "6h"],
])
def test_live_options_without_live_are_refused_not_ignored(
        live_env: dict[str, Any], command: list[str], extra: list[str]) -> None:
    line = _one_error_line(_run(*command, "--zones", "GB", *extra, *MODEL))
    assert f"{extra[0]}" in line and "only with --live" in line
    assert not live_env["uk"].requests and not live_env["wt"].requests


def test_no_zones_with_live_is_not_explained_by_providers(live_env: dict[str, Any]) -> None:
    line = _one_error_line(_run("when", "--duration", "2h", "--zones", "", "--live", *MODEL))
    assert "no zones given" in line
    assert "provider" not in line  # nothing to cover: the providers are beside the point
