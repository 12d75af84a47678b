"""What-if input checks: zones of the sweep are checked against the data before
anything runs, and a spec without a forecast axis plans like its base request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from greenepoch.data.errors import RequestError
from greenepoch.planner.whatif import evaluate, load_spec, run_sweep
from greenepoch.planner.whatif.spec import parse_spec

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
    from greenepoch.planner.cli.main import cli

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
    assert {s.forecast for s in default.scenarios()} == {"blend"}  # Policy's default
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
    import greenepoch.forecasts.registry

    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)  # the synthetic default
    # blend: 20 s to fit
    monkeypatch.setattr(greenepoch.forecasts.registry, "DEFAULT_MODEL", "seasonal")
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


# -- issue 13 items 5-7: spec values are strictly typed -----------------------------------

@pytest.mark.parametrize("head, message", [
    ('seed = "abc"', "[whatif].seed = 'abc': expected a whole number, found text"),
    ("seed = 1.5", "[whatif].seed = 1.5: expected a whole number, found a fractional number"),
    ("seed = 123456789012345678901", "[whatif].seed = 123456789012345678901: must be a whole "
                                     "number from 0 to 4294967295"),
    ('starts_per_season = "x"', "[whatif].starts_per_season = 'x': expected a whole number"),
    ("starts_per_season = 2.5", "[whatif].starts_per_season = 2.5: expected a whole number"),
    ("starts_per_season = 0", "[whatif].starts_per_season = 0: must be a whole number from 1"),
    ("signal = 1", "[whatif].signal = 1: expected text, found a whole number"),
])
def test_whatif_head_values_are_strictly_typed(tmp_path: Path, head: str, message: str) -> None:
    path = write(tmp_path, 'months = ["2023-03"]', f"\n[whatif]\n{head}\n")
    with pytest.raises(RequestError) as err:
        load_spec(path)
    assert message in str(err.value)


def test_integral_float_counts_are_accepted_in_specs(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'months = ["2023-03"]',
                           "\n[whatif]\nstarts_per_season = 2.0\nseed = 7\n"))
    assert (spec.starts_per_season, spec.seed) == (2, 7)
    assert len(spec.scenarios()) == 2


@pytest.mark.parametrize("axis, message", [
    ('threshold = ["150"]', "[sweep].threshold[0] = '150': expected a number of gCO2eq/kWh "
                            "or 'none'; write numbers without quotes"),
    ("threshold = [true]", "[sweep].threshold[0] = true: expected a number of gCO2eq/kWh, "
                           "found a boolean"),
    ("threshold = [inf]", "[sweep].threshold[0] = inf: expected a finite number"),
    ("threshold = [-5]", "[sweep].threshold[0] = -5: must be 0 or more gCO2eq/kWh"),
    ("zones = [5]", "[sweep].zones[0] = 5: expected text, found a whole number"),
    ("zones = [[\"DE\", 5]]", "[sweep].zones[0][1] = 5: expected text"),
    ("months = [202303]", "[sweep].months[0] = 202303: expected text, found a whole number"),
    ("forecast = [1]", "[sweep].forecast[0] = 1: expected text, found a whole number"),
])
def test_sweep_axis_values_are_strictly_typed(tmp_path: Path, axis: str, message: str) -> None:
    with pytest.raises(RequestError) as err:
        load_spec(write(tmp_path, axis))
    assert message in str(err.value)


def test_threshold_axis_gives_the_base_soft_mode_a_threshold(tmp_path: Path) -> None:
    """threshold_mode/penalty without carbon_threshold are idle in a plan request, but
    not in a sweep base whose threshold axis sets the threshold."""
    policy = 'threshold_mode = "soft"\nthreshold_penalty = 2\n'
    spec = load_spec(write(tmp_path, 'threshold = ["none", 200]', policy))
    assert [s.request.policy.threshold for s in spec.scenarios()] == [None, 200.0]
    assert {s.request.policy.threshold_mode for s in spec.scenarios()} == {"soft"}
    with pytest.raises(RequestError, match=r"\[policy\].threshold_mode = 'soft' does nothing "
                                           r"without a carbon threshold"):
        load_spec(write(tmp_path, 'slack = ["0h"]', policy))


@pytest.mark.parametrize("table, message", [
    ("whatif = 3", "[whatif]: expected a table, found a whole number"),
    ("sweep = [1]", "[sweep]: expected a table, found a list"),
])
def test_spec_tables_of_the_wrong_type(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(table + "\n" + BASE, encoding="utf-8")
    with pytest.raises(RequestError) as err:
        load_spec(path)
    assert message in str(err.value)


def test_base_request_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_bytes((BASE + "# caf\xe9\n").encode("latin-1"))
    spec = tmp_path / "spec.toml"
    spec.write_text('[whatif]\nrequest = "plan.toml"\n[sweep]\nslack = ["0h"]\n',
                    encoding="utf-8")
    with pytest.raises(RequestError, match=r"plan.toml: not a UTF-8 text file"):
        load_spec(spec)


def test_base_request_file_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(BASE.replace("gpus = 8", "gpus = 8.5"),
                                        encoding="utf-8")
    spec = tmp_path / "spec.toml"
    spec.write_text('[whatif]\nrequest = "plan.toml"\n[sweep]\nslack = ["0h"]\n',
                    encoding="utf-8")
    with pytest.raises(RequestError) as err:
        load_spec(spec)
    assert str(err.value).startswith(f"{spec}: {tmp_path / 'plan.toml'}: jobs[0] ('ft').gpus = 8.5")
