"""``greenepoch plan REQ.toml --live`` end to end against the fake providers on
127.0.0.1 (tests/support), with a SQLite archive in tmp_path: the plan's provenance
(``intensity.live``), provider hours against model hours, the fallbacks (archive,
marked stale; the synthetic default only when allowed) and the marginal signal."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_electricitymaps as fem
import fake_ukci as fuk
import fake_watttime as fwt
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from fake_http import FakeServer
from greenepoch.data.archive.store import Archive
from greenepoch.data.providers.records import fetched_series
from greenepoch.planner.cli.main import cli
from greenepoch.planner.plan import Plan
from source_fixtures import write_exports

TOKEN = "em-Secret-Token-93b1"
#: nothing listens there: a provider that is down (connection refused at once)
DOWN = "http://127.0.0.1:9"
SEAM_H = 6  # forecasts.live.blend's default
EXAMPLES = Path(__file__).parents[2] / "examples"


def _request(path: Path, hours: int, zones: tuple[str, ...] = ("DE",)) -> Path:
    """A one-job request whose deadline is ``hours`` after its start (moved to now)."""
    listed = ", ".join(f'"{z}"' for z in zones)
    text = f"""start = "2023-06-01T00:00:00Z"

[[jobs]]
name = "train"
gpus = 8
gpu_hours = 32
gpu_power_kw = 0.7
release = "2023-06-01T00:00:00Z"
deadline = "{(pd.Timestamp('2023-06-01T00:00:00Z') + pd.Timedelta(hours=hours))
              .strftime('%Y-%m-%dT%H:%M:%SZ')}"
zones = [{listed}]
home_zone = "{zones[0]}"
checkpoint_overhead = "15min"
"""
    for zone in zones:
        text += f'\n[[zones]]\nid = "{zone}"\ncapacity_gpus = 16\npue = 1.2\n'
    text += '\n[policy]\nslot = "1h"\ntime_limit = "20s"\n'
    path.write_text(text)
    return path


@pytest.fixture
def live_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The fake Electricity Maps and WattTime servers answering at the real "now", and
    the environment a live plan reads (a private config file with a short HTTP budget,
    the archive in tmp_path, no forecast cache, no data folder)."""
    now = pd.Timestamp.now(tz="UTC")
    config = tmp_path / "config.toml"
    config.write_text('[live]\nproviders = ["electricitymaps", "watttime"]\n'
                      "[http]\ntimeout_s = 2\nattempts = 1\ntotal_s = 3\n")
    config.chmod(0o600)
    archive = f"sqlite:///{tmp_path / 'archive.db'}"
    with FakeServer() as em, FakeServer() as wt:
        fem.serve(em, TOKEN, now=now)
        fwt.serve(wt, now=now)
        for name, value in {
            "ELECTRICITYMAPS_TOKEN": TOKEN, "GREENEPOCH_ELECTRICITYMAPS_URL": em.url,
            "WATTTIME_USERNAME": fwt.USERNAME, "WATTTIME_PASSWORD": fwt.PASSWORD,
            "GREENEPOCH_WATTTIME_URL": wt.url, "GREENEPOCH_UKCI_URL": DOWN,
            "GREENEPOCH_CONFIG": str(config), "GREENEPOCH_ARCHIVE": archive,
            "GREENEPOCH_CACHE": "off",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
        yield {"now": now, "archive": archive, "em": em, "wt": wt, "dir": tmp_path}


def _plan(tmp_path: Path, request: Path, *extra: str, name: str = "p.json") -> Result:
    out = tmp_path / name
    return CliRunner().invoke(cli, ["plan", str(request), "--live", "--forecast", "yesterday",
                                    "--out", str(out), *extra])


def _doc(tmp_path: Path, name: str = "p.json") -> dict[str, Any]:
    return json.loads((tmp_path / name).read_text())


def _no_secret(result: Result, tmp_path: Path, caplog: pytest.LogCaptureFixture,
               *secrets: str) -> None:
    """No token or password in the output, the logs or any file written."""
    texts = [result.output, result.stderr, caplog.text]
    texts += [f.read_bytes().decode("utf-8", "replace") for f in tmp_path.rglob("*")
              if f.is_file() and f.name != "config.toml"]
    for secret in secrets:
        assert all(secret not in text for text in texts), secret


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.strip().splitlines()
             if line.startswith("greenepoch: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_live_plan_records_provider_and_model_hours(live_env: dict[str, Any],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tmp = live_env["dir"]
    result = _plan(tmp, _request(tmp / "r.toml", hours=96))
    assert result.exit_code == 0, result.output
    doc = _doc(tmp)
    info = doc["intensity"]
    assert info["signal"] == "direct" and info["mode"] == "forecast"
    live = info["live"]
    start = pd.Timestamp(doc["start"])
    # planned from now rounded up to the slot (an hour later if the clock crossed one
    # between the fixture and the plan); 'any time after now' would pass a wrong start
    assert start - live_env["now"].ceil("1h") in (pd.Timedelta(0), pd.Timedelta("1h"))
    forecast = next(r for r in live["providers"] if r["kind"] == "forecast")
    assert forecast["provider"] == "electricitymaps" and forecast["origin"] == "live"
    assert pd.Timestamp(forecast["issued"]) == fem.issued(live_env["now"])
    assert forecast["stale_s"] is None
    actual = next(r for r in live["providers"] if r["kind"] == "actual")
    assert actual["origin"] == "live" and actual["provider"] == "electricitymaps"
    # the fake forecasts 72 h from the hour holding now; the seam follows, the model after
    provider_end = live_env["now"].floor("1h") + pd.Timedelta("72h")
    hours = live["zones"]["DE"]
    assert hours["provider"]["ranges"] == [[doc["start"], _iso(provider_end)]]
    assert hours["provider"]["hours"] == (provider_end - start) / pd.Timedelta("1h")
    assert hours["seam"]["ranges"] == [[_iso(provider_end),
                                        _iso(provider_end + pd.Timedelta(hours=SEAM_H))]]
    model_from = provider_end + pd.Timedelta(hours=SEAM_H)
    assert hours["model"]["hours"] == (start + pd.Timedelta("96h") - model_from) / \
        pd.Timedelta("1h") > 0
    assert hours["stale"]["hours"] == hours["synthetic"]["hours"] == 0
    # no archive history yet: the model was fitted on the synthetic default, and it says so
    assert live["history"] == "default" and live["synthetic"] is True
    assert info["source"] == "synthetic"
    assert any("synthetic default" in w for w in live["warnings"])
    assert live["stale"] is False
    assert "live: DE electricitymaps forecast issued" in result.output
    assert "WARNING: " in result.output and "(SYNTHETIC)" in result.output
    text = (tmp / "p.json").read_text()
    again = Plan.from_json(text)  # typed, and written back byte for byte
    assert again.to_json() == text
    assert again.intensity is not None and again.intensity.live is not None
    assert again.intensity.live.zones is not None
    assert again.intensity.live.zones["DE"]["seam"].hours == SEAM_H
    # every answer was archived
    kinds = set(Archive(live_env["archive"]).summary()["kind"])
    assert kinds == {"actual", "forecast"}
    _no_secret(result, tmp, caplog, TOKEN, fwt.PASSWORD)


def test_example_request_on_electricitymaps_and_ukci(live_env: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """examples/minimal.toml (DE and GB, a week) with UKCI first: GB's hours come from
    the UK Carbon Intensity API (48 h ahead, 30-minute periods), DE's from Electricity
    Maps (72 h); the model takes each zone over after its seam."""
    caplog.set_level(logging.DEBUG)
    tmp, now = live_env["dir"], live_env["now"]
    config = tmp / "config.toml"
    config.write_text(config.read_text().replace('["electricitymaps", "watttime"]',
                                                 '["ukci", "electricitymaps"]'))
    with FakeServer() as uk:
        fuk.serve(uk, now=now)
        monkeypatch.setenv("GREENEPOCH_UKCI_URL", uk.url)
        result = _plan(tmp, EXAMPLES / "minimal.toml")
    assert result.exit_code == 0, result.output
    doc = _doc(tmp)
    live = doc["intensity"]["live"]
    by = {(r["zone"], r["kind"]): r["provider"] for r in live["providers"]}
    assert by == {("DE", "forecast"): "electricitymaps", ("GB", "forecast"): "ukci",
                  ("DE", "actual"): "electricitymaps", ("GB", "actual"): "ukci"}
    start = pd.Timestamp(doc["start"])
    horizon = (pd.Timestamp(doc["jobs"][0]["deadline"]) - start) / pd.Timedelta("1h")
    for zone in ("DE", "GB"):
        hours = live["zones"][zone]
        assert hours["provider"]["hours"] > 0 and hours["seam"]["hours"] == SEAM_H
        assert sum(h["hours"] for h in hours.values()) == horizon
    # the synthetic-history warning counts each zone's own hours (not their sum, which
    # can exceed the plan's horizon)
    warning = next(w for w in live["warnings"] if "synthetic default" in w)
    for zone in ("DE", "GB"):
        modelled = live["zones"][zone]["seam"]["hours"] + live["zones"][zone]["model"]["hours"]
        assert f"{zone} {modelled:g} h" in warning, warning
    assert f"{2 * horizon:g} h" not in warning
    # the UK forecast reaches less far ahead than Electricity Maps'
    assert live["zones"]["GB"]["provider"]["hours"] < live["zones"]["DE"]["provider"]["hours"]
    assert "GB ukci forecast issued" in result.stdout
    _no_secret(result, tmp, caplog, TOKEN, fwt.PASSWORD)


def test_model_fitted_on_the_archive_when_it_covers_the_model(
        live_env: dict[str, Any]) -> None:
    tmp, now = live_env["dir"], live_env["now"]
    # ten days of hourly actuals before the last day (what 'data pull' would have kept)
    end = now.floor("1h") - pd.Timedelta("20h")
    times = pd.date_range(end - pd.Timedelta("10D"), end, freq="1h", inclusive="left")
    points = [(t, fem.value_at("DE", t, "direct"), False) for t in times]
    Archive(live_env["archive"]).put(fetched_series(
        "electricitymaps", "DE", "direct", "actual", pd.Timedelta("1h"), points,
        fetched=end))
    result = _plan(tmp, _request(tmp / "r.toml", hours=96))
    assert result.exit_code == 0, result.output
    live = _doc(tmp)["intensity"]["live"]
    assert live["history"] == "archive"
    assert live["synthetic"] is False and live["warnings"] == []
    assert _doc(tmp)["intensity"]["source"] == "real"
    assert "(SYNTHETIC)" not in result.output and "(STALE)" not in result.output


def test_model_fitted_on_a_data_folder_of_past_years(live_env: dict[str, Any]) -> None:
    """No archived history: --data's exports (ten days of 2023) fit the model, which
    forecasts the hours after the seam; nothing is synthetic."""
    tmp = live_env["dir"]
    folder = write_exports(tmp / "data")
    result = _plan(tmp, _request(tmp / "r.toml", hours=120), "--data", str(folder))
    assert result.exit_code == 0, result.output
    info = _doc(tmp)["intensity"]
    assert info["live"]["history"] == "data" and info["live"]["synthetic"] is False
    assert info["source"] == "real"
    assert info["live"]["zones"]["DE"]["model"]["hours"] > 0
    assert "fitting forecast model 'yesterday' on DE (2023-" in result.stderr


def test_provider_down_falls_back_on_the_archive_marked_stale(
        live_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = live_env["dir"]
    request = _request(tmp / "r.toml", hours=96)
    assert _plan(tmp, request, name="first.json").exit_code == 0  # fills the archive
    monkeypatch.setenv("GREENEPOCH_ELECTRICITYMAPS_URL", DOWN)
    result = _plan(tmp, request)
    assert result.exit_code == 0, result.output
    live = _doc(tmp)["intensity"]["live"]
    assert live["stale"] is True
    reads = {r["kind"]: r for r in live["providers"]}
    assert reads["forecast"]["origin"] == reads["actual"]["origin"] == "archive"
    # the provider is who produced the values (docs/plan-schema.md), not 'archive'
    assert reads["forecast"]["provider"] == reads["actual"]["provider"] == "electricitymaps"
    assert reads["forecast"]["stale_s"] is not None and reads["forecast"]["stale_s"] >= 0
    hours = live["zones"]["DE"]
    assert hours["stale"]["hours"] > 0 and hours["provider"]["hours"] == 0
    assert any("archive" in w and "stale" in w for w in live["warnings"])
    assert "(STALE)" in result.output
    assert "stale" in result.stderr  # LiveSource's warning as it happened


def test_everything_down_needs_allow_default(live_env: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = live_env["dir"]
    monkeypatch.setenv("GREENEPOCH_ELECTRICITYMAPS_URL", DOWN)
    request = _request(tmp / "r.toml", hours=96)
    line = _one_error_line(_plan(tmp, request))
    assert "DE" in line and "--allow-default" in line
    assert not (tmp / "p.json").exists()
    result = _plan(tmp, request, "--allow-default")
    assert result.exit_code == 0, result.output
    info = _doc(tmp)["intensity"]
    assert info["source"] == "synthetic" and info["live"]["synthetic"] is True
    assert any(r["origin"] == "default" and r["provider"] == "climatology"
               for r in info["live"]["providers"])
    assert any("synthetic default" in w for w in info["live"]["warnings"])


def test_marginal_signal_through_watttime_is_labelled_marginal(
        live_env: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tmp = live_env["dir"]
    result = _plan(tmp, _request(tmp / "r.toml", hours=20), "--signal", "marginal",
                   "--provider", "watttime")
    assert result.exit_code == 0, result.output
    info = _doc(tmp)["intensity"]
    assert info["signal"] == "marginal"
    assert info["model"] is None  # never blended with an average-intensity model
    reads = info["live"]["providers"]
    assert {r["provider"] for r in reads} == {"watttime"}
    assert {r["signal"] for r in reads} == {"marginal"}
    assert info["live"]["zones"]["DE"]["provider"]["hours"] == 20
    assert "marginal" in result.stdout.splitlines()[0]  # 'intensities: real marginal, ...'
    line = next(text for text in result.stdout.splitlines() if text.startswith("live: "))
    assert "None" not in line and "own model" not in line, line  # there is none
    _no_secret(result, tmp, caplog, TOKEN, fwt.PASSWORD)


def test_marginal_plan_beyond_the_watttime_forecast_is_one_error(
        live_env: dict[str, Any]) -> None:
    tmp = live_env["dir"]
    line = _one_error_line(_plan(tmp, _request(tmp / "r.toml", hours=48), "--signal",
                                 "marginal", "--provider", "watttime"))
    assert "marginal forecast covers" in line and "--signal" in line


@pytest.mark.parametrize(("args", "says"), [
    (["--live", "--oracle"], "--oracle and --live"),
    (["--signal", "marginal"], "works only with --live"),
    (["--provider", "ukci"], "works only with --live"),
    (["--live", "--start", "2020-01-01T00:00:00Z"], "in the past"),
])
def test_live_option_misuse_is_one_error_line(tmp_path: Path, args: list[str],
                                              says: str) -> None:
    request = _request(tmp_path / "r.toml", hours=24)
    result = CliRunner().invoke(cli, ["plan", str(request), *args, "--out",
                                      str(tmp_path / "p.json")])
    assert says in _one_error_line(result)
    assert not (tmp_path / "p.json").exists()


def _iso(time: pd.Timestamp) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("path", "value", "says"), [
    (("zones", "DE", "seam", "ranges"), [["2026-01-01T02:00:00Z", "2026-01-01T01:00:00Z"]],
     "intensity.live.zones.DE.seam.ranges[0]: 2026-01-01T01:00:00Z is not after"),
    (("providers",), [{"zone": "DE", "stale_s": -5}], "intensity.live.providers[0].stale_s"),
    (("synthetic",), "no", "intensity.live.synthetic"),
])
def test_a_malformed_live_record_is_refused_naming_it(path: tuple[str, ...], value: Any,
                                                      says: str) -> None:
    from greenepoch.planner.plan import PlanError

    doc = {"schema_version": "1.0", "jobs": [], "intensity": {"signal": "direct", "live": {
        "zones": {"DE": {"seam": {"hours": 1, "ranges": []}}}, "synthetic": False}}}
    part = doc["intensity"]["live"]
    for key in path[:-1]:
        part = part[key]
    part[path[-1]] = value
    with pytest.raises(PlanError, match=re.escape(says)):
        Plan.from_dict(doc)
