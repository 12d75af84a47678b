"""The greenepoch command through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner import __version__
from planner.cli.main import cli

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_data_check_bad_file_is_one_line_exit_2(runner: CliRunner) -> None:
    bad = FIXTURES / "malformed" / "negative_value.csv"
    result = runner.invoke(cli, ["data", "check", str(bad)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("greenepoch: error: ")
    assert "negative_value.csv: row" in lines[0]
    assert "Traceback" not in result.output


def test_data_check_missing_path(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["data", "check", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr


def test_plan_bad_request_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    request = tmp_path / "r.toml"
    request.write_text('start = "2023-06-01T00:00:00"\n')
    result = runner.invoke(cli, ["plan", str(request), "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 2
    assert "no UTC offset" in result.stderr
    assert not (tmp_path / "p.json").exists()


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error: "), lines
    return lines[0]


def test_plan_request_that_is_a_folder(runner: CliRunner, tmp_path: Path) -> None:
    line = _one_error_line(runner.invoke(cli, ["plan", str(tmp_path), "--out",
                                               str(tmp_path / "p.json")]))
    assert f"{tmp_path}: Is a directory" in line


@pytest.mark.parametrize("command", [["plan", str(EXAMPLES / "minimal.toml")], ["demo"]])
def test_out_in_a_missing_folder_fails_before_any_work(runner: CliRunner, tmp_path: Path,
                                                       command: list[str]) -> None:
    out = tmp_path / "missing" / "p.json"
    line = _one_error_line(runner.invoke(cli, [*command, "--out", str(out)]))
    assert f"folder {out.parent} does not exist; create it first" in line
    line = _one_error_line(runner.invoke(cli, [*command, "--out", str(tmp_path)]))
    assert "is a folder; give a file name inside it" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.realdata
def test_data_check_real_zone(runner: CliRunner, real_data: Path) -> None:
    path = real_data / "electricitymaps" / "DE_2023_hourly.csv"
    result = runner.invoke(cli, ["data", "check", str(path), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["zone"] == "DE"
    assert rows[0]["rows"] == 8760
    assert rows[0]["mean_g_per_kwh"] == pytest.approx(307.7, abs=0.05)
    assert rows[0]["gaps_filled"] == 0


@pytest.mark.realdata
def test_plan_minimal_request_oracle(runner: CliRunner, real_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(cli, ["plan", str(EXAMPLES / "minimal.toml"), "--data",
                                 str(real_data), "--oracle", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["intensity"] == {"source": "real", "signal": "direct", "mode": "oracle",
                                "model": None}
    job = doc["jobs"][0]
    home = job["baselines"]["run_now_home"]["emissions_kg"]
    assert job["summary"]["emissions_kg"] < home
    assert job["summary"]["emissions_kg"] <= job["baselines"]["run_now_best_zone"]["emissions_kg"]
    assert (tmp_path / "plan.csv").read_text().startswith("job,zone,start,end,gpus")
    assert "run_now_home_kg" in result.output


@pytest.mark.realdata
def test_plan_json_flag_prints_the_document(runner: CliRunner, real_data: Path,
                                            tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(cli, ["plan", str(EXAMPLES / "minimal.toml"), "--data",
                                 str(real_data), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # notes on the forecast fit go to stderr
    assert printed == json.loads(out.read_text())
    assert printed["intensity"]["mode"] == "forecast"
    assert printed["intensity"]["model"] == "seasonal"
    assert "realised_emissions_kg" in printed["jobs"][0]["summary"]


def test_demo_runs_on_the_embedded_default(runner: CliRunner,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "embedded default" in result.stdout
    assert "intensities: synthetic direct, forecast (seasonal)" in result.stdout
    assert "llm-pretrain-7b" in result.stdout and "finetune-sweep" in result.stdout
    total = next(line for line in result.stdout.splitlines() if line.startswith("total:"))
    planned, home = (float(x.replace(",", "")) for x in
                     (total.split()[1], total.split(" vs ")[1].split()[0]))
    assert planned < home


def test_missing_data_folder_names_the_variable_it_came_from(runner: CliRunner, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("GREENEPOCH_DATA", str(tmp_path / "nowhere"))
    line = _one_error_line(runner.invoke(cli, ["plan", str(EXAMPLES / "minimal.toml"), "--oracle",
                                               "--out", str(tmp_path / "p.json")]))
    assert f"$GREENEPOCH_DATA points at {tmp_path / 'nowhere'}, which does not exist" in line
    line = _one_error_line(runner.invoke(cli, ["plan", str(EXAMPLES / "minimal.toml"), "--oracle",
                                               "--data", str(tmp_path / "other"),
                                               "--out", str(tmp_path / "p.json")]))
    assert f"--data points at {tmp_path / 'other'}, which does not exist" in line


@pytest.mark.parametrize("args, said", [
    (["regions", "--cloud", "foo"], "Invalid value for '--cloud': 'foo' is not one of"),
    (["plan"], "Missing argument 'REQUEST_FILE'. (see 'greenepoch plan --help')"),
    (["data", "check", "--signal", "xx", "f.csv"], "(see 'greenepoch data check --help')"),
    (["nosuch"], "No such command 'nosuch'."),
])
def test_usage_errors_are_one_line(runner: CliRunner, args: list[str], said: str) -> None:
    assert said in _one_error_line(runner.invoke(cli, args, prog_name="greenepoch"))


def test_infeasible_request_names_its_file(runner: CliRunner, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    text = (EXAMPLES / "minimal.toml").read_text()
    request = tmp_path / "tight.toml"
    request.write_text(text.replace('deadline = "2023-06-08T00:00:00Z"',
                                    'deadline = "2023-06-02T00:00:00Z"'))
    line = _one_error_line(runner.invoke(cli, ["plan", str(request), "--oracle",
                                               "--out", str(tmp_path / "p.json")]))
    assert line.startswith(f"greenepoch: error: {request}: infeasible: job 'llm-pretrain'")


@pytest.mark.realdata
def test_plan_before_the_data_says_what_the_data_covers(runner: CliRunner, real_data: Path,
                                                        tmp_path: Path) -> None:
    text = (EXAMPLES / "minimal.toml").read_text().replace("2023-06-0", "2019-06-0")
    request = tmp_path / "early.toml"
    request.write_text(text)
    for mode in (["--oracle"], ["--forecast", "mean7d"]):
        line = _one_error_line(runner.invoke(cli, ["plan", str(request), *mode, "--data",
                                                   str(real_data), "--out",
                                                   str(tmp_path / "p.json")]))
        assert "covers 2021-01-01T00:00:00+00:00 .. 2024-01-01T00:00:00+00:00, but 2019-" in line
