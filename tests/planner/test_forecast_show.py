"""``greenepoch forecast show`` (and ``when --live``) against the fake Electricity Maps
server on 127.0.0.1: the origin of each slot, the JSON, the seam, and what happens when
the provider is down (the archive's stale values, said; else one error line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import fake_ukci
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from fake_electricitymaps import NOW, serve, trace
from fake_http import FakeServer, Reply
from greenepoch.data.providers import base
from greenepoch.planner.cli.main import cli

from tests.support.source_fixtures import write_exports

TOKEN = "em-s3cret-t0ken"
ZONES = "DE,ES"  # in the climatology (the model history), at different fake levels
MODEL = ["--forecast", "mean7d"]  # a cheap own model: these tests are about the seams

@pytest.fixture
def live_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    """The fake Electricity Maps (first) and UK Carbon Intensity servers, an archive in
    tmp_path, "now" at the fake's NOW, no model cache and no data folder."""
    config = tmp_path / "config.toml"
    config.write_text('[live]\nproviders = ["electricitymaps", "ukci"]\n'
                      "[http]\nattempts = 1\ntotal_s = 5\n", encoding="utf-8")
    config.chmod(0o600)
    with FakeServer() as server, FakeServer() as uk:
        serve(server, token=TOKEN, now=NOW)
        fake_ukci.serve(uk, now=NOW)
        for name, value in {
            "GREENEPOCH_ELECTRICITYMAPS_URL": server.url, "ELECTRICITYMAPS_TOKEN": TOKEN,
            "GREENEPOCH_UKCI_URL": uk.url,
            "GREENEPOCH_ARCHIVE": f"sqlite:///{tmp_path / 'archive.db'}",
            "GREENEPOCH_CONFIG": str(config), "GREENEPOCH_CACHE": "off",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
        monkeypatch.setattr(base, "utc_now", lambda: NOW)
        yield server

def show(*args: str) -> Result:
    return CliRunner().invoke(cli, ["forecast", "show", "--zones", ZONES, *MODEL, *args])

def down(server: FakeServer) -> None:
    """Electricity Maps answers 503 to everything from now on."""
    server.routes.clear()
    server.route("GET", r"/v3/.*", lambda _seen: Reply(503, {"message": "down"}))


def rows_of(result: Result) -> pd.DataFrame:
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    table = pd.DataFrame(doc["forecast"])
    table["time"] = pd.to_datetime(table["time"], utc=True)
    return table

def test_origin_runs_provider_seam_model(live_env: FakeServer) -> None:
    table = rows_of(show("--live", "--horizon", "4D", "--json"))
    start = NOW.floor("h")
    for zone, rows in table.groupby("zone"):
        assert list(rows["time"]) == list(pd.date_range(start, periods=96, freq="1h"))
        origins = list(rows["origin"])
        # provider first, then the seam, then the model: each one stretch, in that order
        assert [o for i, o in enumerate(origins) if i == 0 or origins[i - 1] != o] == [
            "provider", "seam", "model"]
        provided = rows[rows["origin"] == "provider"].set_index("time")
        answered = trace(str(zone), start, provided.index[-1] + pd.Timedelta("1h"), "1h",
                         "direct")
        assert provided["p50"].to_numpy() == pytest.approx(answered["value"].to_numpy())
        assert (rows["p10"] <= rows["p50"] + 1e-9).all()
        assert (rows["p50"] <= rows["p90"] + 1e-9).all()

def test_json_says_where_it_came_from(live_env: FakeServer) -> None:
    result = show("--live", "--json")
    doc = json.loads(result.stdout)
    assert doc["live"] is True and doc["issued"] == NOW.floor("h").isoformat()
    assert len(doc["forecast"]) == 2 * 48
    forecasts = [p for p in doc["provenance"] if p["kind"] == "forecast"]
    assert {p["zone"] for p in forecasts} == {"DE", "ES"}
    assert all(p["origin"] == "live" and p["provider"] == "electricitymaps"
               for p in forecasts)
    assert all(p["fetched"].startswith("2026-03-02") for p in forecasts)
    assert TOKEN not in result.output

def test_text_has_the_origin_column_and_the_stretches(live_env: FakeServer) -> None:
    result = show("--live", "--horizon", "4D", "--slot", "30min")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header[-1] == "origin" and "p10" in header and "p90" in header
    assert "2026-03-02 12:30  DE" in result.stdout  # 30-min slots
    stretch = next(line for line in result.stdout.splitlines() if line.startswith("DE: "))
    assert stretch.startswith("DE: provider 2026-03-02 12:30 .. ")  # now 12:34
    assert ", seam " in stretch and ", model " in stretch
    assert "DE forecast: live from electricitymaps" in result.stdout
    assert TOKEN not in result.output

def test_provider_down_uses_the_archive_and_says_stale(live_env: FakeServer,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    assert show("--live", "--json").exit_code == 0  # fills the archive
    later = NOW + pd.Timedelta("3h")
    monkeypatch.setattr(base, "utc_now", lambda: later)
    down(live_env)
    result = show("--live", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    forecasts = [p for p in doc["provenance"] if p["kind"] == "forecast"]
    assert forecasts and all(p["origin"] == "archive" and p["stale_s"] > 0
                             for p in forecasts)
    assert "stale" in result.stderr.lower()
    # said as a warning, as 'plan --live' says it
    assert any(line.startswith("greenepoch: warning: ") and "stale" in line
               for line in result.stderr.splitlines()), result.stderr

def test_provider_down_and_nothing_archived_is_one_line(live_env: FakeServer) -> None:
    down(live_env)
    result = show("--live")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("greenepoch: error:") == 1
    assert "Traceback" not in result.output and TOKEN not in result.output

def test_allow_default_is_said_synthetic(live_env: FakeServer) -> None:
    down(live_env)
    result = show("--live", "--allow-default")
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.stdout
    assert "from electricitymaps" not in result.stdout

def test_when_live_picks_from_the_forecast(live_env: FakeServer) -> None:
    result = CliRunner().invoke(cli, ["when", "--duration", "3h", "--within", "24h",
                                      "--zones", ZONES, "--live", *MODEL, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    # within the provider's 72 h: the choice is on the fake's trace, hand-checked here
    start = NOW.floor("h")
    best = None
    for zone in ZONES.split(","):
        values = trace(zone, start, start + pd.Timedelta("30h"), "1h", "direct")["value"]
        starts = [NOW, *pd.date_range(start + pd.Timedelta("1h"), NOW + pd.Timedelta("24h"),
                                      freq="1h")]
        for s in starts:
            times = pd.date_range(s.floor("h"), s + pd.Timedelta("3h"), freq="1h",
                                  inclusive="left")
            weights = [(min(t + pd.Timedelta("1h"), s + pd.Timedelta("3h")) - max(t, s))
                       / pd.Timedelta("3h") for t in times]
            mean = sum(w * values[t] for w, t in zip(weights, times, strict=True))
            if best is None or mean < best[0] - 1e-9:
                best = (mean, s, zone)
    assert best is not None
    assert (doc["start"], doc["zone"]) == (best[1].isoformat(), best[2])
    assert doc["intensity"]["p50"] == pytest.approx(best[0])
    assert doc["origin_slots"] == {"provider": 3}
    assert doc["live"] is True and TOKEN not in result.output

def test_without_live_the_model_only_is_said(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENEPOCH_CACHE", "off")
    data = write_exports(tmp_path / "data")
    result = CliRunner().invoke(cli, [
        "forecast", "show", "--zones", "DE,GB", *MODEL, "--data", str(data),
        "--from", "2023-03-09T00:00:00Z", "--horizon", "6h"])
    assert result.exit_code == 0, result.output
    assert "own model 'mean7d' only" in result.stdout
    assert "model 2023-03-09 00:00 .. 2023-03-09 06:00" in result.stdout
    stale = CliRunner().invoke(cli, ["forecast", "show", "--zones", "DE", *MODEL,
                                     "--data", str(data)])
    assert stale.exit_code == 2
    assert "--live" in stale.output and stale.output.count("\n") == 1

def test_horizon_over_14_days_is_refused(live_env: FakeServer) -> None:
    result = show("--live", "--horizon", "15D")
    assert result.exit_code == 2 and "14D" in result.output
    assert not live_env.requests  # refused before any request


def test_ukci_on_its_30_minute_periods(live_env: FakeServer) -> None:
    result = CliRunner().invoke(cli, ["forecast", "show", "--zones", "GB", *MODEL, "--live",
                                      "--provider", "ukci", "--slot", "30min", "--json"])
    table = rows_of(result)
    provided = table[table["origin"] == "provider"].set_index("time")
    assert provided.index[0] == NOW.floor("30min")
    assert len(provided) >= 40 * 2  # the 48 h forecast, less what the fetch time cut
    answered = fake_ukci.trace("GB", provided.index[0],
                               provided.index[-1] + pd.Timedelta("30min"))
    assert provided["p50"].to_numpy() == pytest.approx(answered["forecast"].to_numpy())
    doc = json.loads(result.stdout)
    assert {p["provider"] for p in doc["provenance"] if p["kind"] == "forecast"} == {"ukci"}


def test_provider_down_falls_back_on_the_next_one(live_env: FakeServer) -> None:
    down(live_env)
    result = CliRunner().invoke(cli, ["forecast", "show", "--zones", "GB", *MODEL, "--live",
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert "electricitymaps" in result.stderr  # the fall-back is said
    doc = json.loads(result.stdout)
    assert {(p["origin"], p["provider"]) for p in doc["provenance"]
            if p["kind"] == "forecast"} == {("live", "ukci")}
    assert TOKEN not in result.output


def test_a_stale_read_says_its_age_as_the_plan_does() -> None:
    from greenepoch.data.live.source import Provenance
    from greenepoch.planner.cli.when_cmd import Frames, provenance_lines

    fetched = pd.Timestamp("2026-03-02T12:00Z")
    reads = tuple(Provenance("DE", "forecast", "archive", "electricitymaps", "direct",
                             fetched, fetched, stale, None, None) for stale in (600.0, 10800.0))
    lines = provenance_lines(Frames(pd.DataFrame(), None, None, "", True, None, reads))
    assert lines[0].endswith("STALE by 10 min") and lines[1].endswith("STALE by 3.0 h")
