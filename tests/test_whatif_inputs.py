"""What-if input checks: zones of the sweep are checked against the data before
anything runs, and a spec without a forecast axis plans like its base request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.errors import RequestError
from planner.whatif import evaluate, load_spec, run_sweep
from planner.whatif.spec import parse_spec

BASE = """
start = "2023-03-06T00:00:00Z"

[[jobs]]
name = "ft"
gpus = 8
duration = "3h"
deadline = "2023-03-07T00:00:00Z"
zones = ["DE"]

[[zones]]
id = "DE"
capacity_gpus = 16

[policy]
time_limit = "5s"
"""


def write(tmp: Path, sweep: str, policy: str = "") -> Path:
    """The base request, more ``[policy]`` keys and the ``[sweep]`` axes."""
    path = tmp / "spec.toml"
    path.write_text(BASE + policy + "\n[sweep]\n" + sweep + "\n", encoding="utf-8")
    return path


def cli():
    from planner.cli.main import cli

    return cli


def exports(tmp: Path, *zones: str) -> Path:
    """A data folder whose export files are named after ``zones`` (contents unread)."""
    folder = tmp / "data" / "electricitymaps"
    folder.mkdir(parents=True)
    for zone in zones:
        (folder / f"{zone}_2023_hourly.csv").write_text("Datetime (UTC),Zone Id\n")
    return folder.parent


# -- B1: zones of the sweep --------------------------------------------------------------

def test_unknown_sweep_zone_is_refused_before_anything_runs(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'zones = ["DE", ["GB", "XX"]]\nslack = ["0h"]'))
    out = tmp_path / "r.jsonl"
    with pytest.raises(RequestError) as err:
        run_sweep(spec, out, data=None, workers=1, progress=False)
    message = str(err.value)
    assert message.startswith("[sweep].zones[1]: unknown zone 'XX'")
    assert "synthetic default" in message and "use one of" in message and "DE" in message
    assert not out.exists()  # refused before the results file is even started


def test_unknown_sweep_zone_is_one_line_and_exit_2(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    path = write(tmp_path, 'zones = ["DE", "XX"]')
    out = tmp_path / "r.jsonl"
    res = CliRunner().invoke(cli(), ["whatif", str(path), "--out", str(out), "--quiet"])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error: [sweep].zones[1]")
    assert "'XX'" in lines[0]
    assert not out.exists()


def test_sweep_zones_are_checked_against_the_data_folder(tmp_path: Path) -> None:
    data = str(exports(tmp_path, "DE", "XX-LAB"))
    # a catalog zone without exports in the folder
    spec = load_spec(write(tmp_path, 'zones = ["DE", "GB"]'))
    with pytest.raises(RequestError, match=r"\[sweep\].zones\[1\]: .* no intensities for "
                                           r"zone 'GB'; .*add its exports"):
        spec.check_zones(data)
    # a zone outside the catalog is fine when the data has it (like the base request)
    load_spec(write(tmp_path, 'zones = ["DE", "XX-LAB", "eu-central-1"]')).check_zones(data)
    # cloud region typos get a suggestion
    spec = load_spec(write(tmp_path, 'zones = ["eu-centrl-1"]'))
    with pytest.raises(RequestError, match="did you mean eu-central-1"):
        spec.check_zones(data)


def test_base_zones_are_checked_without_a_zones_axis(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'slack = ["0h"]'))
    with pytest.raises(RequestError, match=r"jobs\[0\] \('ft'\).zones: .*zone 'DE'"):
        spec.check_zones(str(exports(tmp_path, "GB")))


@pytest.mark.realdata
def test_unknown_sweep_zone_with_real_data_is_exit_2(real_data: Path, tmp_path: Path) -> None:
    path = write(tmp_path, 'zones = ["DE", "XX"]\nmonths = ["2023-01"]')
    res = CliRunner().invoke(cli(), ["whatif", str(path), "--data", str(real_data), "--out",
                                     str(tmp_path / "r.jsonl"), "--quiet"])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1
    assert "[sweep].zones[1]: unknown zone 'XX'" in res.output
    assert str(real_data.resolve()) in res.output


# -- B2: no forecast axis ----------------------------------------------------------------

def test_absent_forecast_axis_keeps_the_base_forecast(tmp_path: Path) -> None:
    default = load_spec(write(tmp_path, 'slack = ["0h", "12h"]'))
    assert {s.forecast for s in default.scenarios()} == {"seasonal"}  # Policy's default
    chosen = load_spec(write(tmp_path, 'slack = ["0h"]', 'forecast = "last_week"\n'))
    assert [s.forecast for s in chosen.scenarios()] == ["last_week"]
    oracle = load_spec(write(tmp_path, 'slack = ["0h"]\nforecast = ["oracle"]'))
    assert [s.forecast for s in oracle.scenarios()] == ["oracle"]


def test_unknown_base_forecast_is_refused() -> None:
    with pytest.raises(RequestError, match=r"\[policy\].forecast: unknown model 'nope'"):
        parse_spec({"start": "2023-03-06T00:00:00Z",
                    "jobs": [{"name": "a", "gpus": 1, "duration": "1h",
                              "deadline": "2023-03-07T00:00:00Z", "zones": ["DE"]}],
                    "zones": [{"id": "DE", "capacity_gpus": 1}],
                    "policy": {"forecast": "nope"}, "sweep": {"slack": ["0h"]}})


def test_sweep_without_forecast_axis_plans_on_the_forecast(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)  # the synthetic default
    path = write(tmp_path, 'slack = ["12h"]')
    (scenario,) = load_spec(path).scenarios()
    row = evaluate(scenario)
    assert row["status"] == "ok", row["message"]
    assert row["forecast"] == "seasonal"
    # planned on a forecast: what it expected differs from what it really emitted
    assert row["planned_emissions_kg"] != row["emissions_kg"]
    out = tmp_path / "r.jsonl"
    res = CliRunner().invoke(cli(), ["whatif", str(path), "--out", str(out), "--workers", "1",
                                     "--quiet"])
    assert res.exit_code == 0, res.output
    assert "planned on seasonal forecast 1)" in res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert [r["forecast"] for r in rows] == ["seasonal"]
