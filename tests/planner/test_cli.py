"""The greenepoch command through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from greenepoch import __version__
from greenepoch.planner.cli.main import cli

FIXTURES = Path(__file__).parents[1] / "fixtures"
EXAMPLES = Path(__file__).parents[2] / "examples"


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
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import greenepoch.forecasts.registry

    monkeypatch.setattr(greenepoch.forecasts.registry, "DEFAULT_MODEL", "mean7d")  # quick to fit
    out = tmp_path / "plan.json"
    result = runner.invoke(cli, ["plan", str(EXAMPLES / "minimal.toml"), "--data",
                                 str(real_data), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # notes on the forecast fit go to stderr
    assert printed == json.loads(out.read_text())
    assert printed["intensity"]["mode"] == "forecast"
    assert printed["intensity"]["model"] == "mean7d"  # the default model, by its name
    job = printed["jobs"][0]
    assert "realised_emissions_kg" in job["summary"]
    _low, high = job["savings_pct_p10_p90"]
    assert isinstance(job["robust"], bool) and isinstance(job["realised_savings_pct"], float)
    assert job["robust"] == (high >= 0)


def test_demo_runs_on_the_embedded_default(runner: CliRunner,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import greenepoch.forecasts.registry

    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    monkeypatch.setattr(greenepoch.forecasts.registry, "DEFAULT_MODEL", "mean7d")  # blend: slow
    result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "embedded default" in result.stdout
    assert "intensities: synthetic direct, forecast (mean7d)" in result.stdout
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


# --- forecast plans that tell the truth (issue 13 items 14, 18, 20) ---------------------


def _forecast_plan(p90_b: float = 1.5, fallback: bool = True, **policy: object):
    """A job that moves from dirty home zone A to clean B (100 GB checkpoint), planned
    on a forecast whose P10 is 0.5x the mean and whose P90 is 1.5x in A and ``p90_b``x
    in B, while what happened is twice the forecast everywhere (so every realised kg
    is exactly 2x the planned)."""
    import numpy as np
    import pandas as pd
    from greenepoch.data.intensity.frame import IntensityData
    from greenepoch.planner.model import Job, PlanRequest, Policy, Zone
    from greenepoch.planner.pipeline import Intensities, build_problem
    from greenepoch.planner.plan import assemble
    from greenepoch.solvers.solve import solve_problem

    t0 = pd.Timestamp("2023-06-01T00:00:00Z")
    index = pd.date_range(t0, periods=6, freq="1h", name="time")

    def frame(a: float, b: float) -> pd.DataFrame:
        return pd.DataFrame({"A": [500.0 * a] * 6, "B": [100.0 * b] * 6}, index=index)

    def intensity_data(values: pd.DataFrame) -> IntensityData:
        flags = pd.DataFrame(False, index=index, columns=values.columns)
        return IntensityData(values, flags, flags.copy(), "real", "direct")

    prices = pd.Series([50.0] * 6, index=index)
    job = Job(name="train", gpus=2, gpu_hours=4.0, release=t0, deadline=t0 + pd.Timedelta("6h"),
              zones=("A", "B"), home_zone="A", gpu_power_kw=1.0, checkpoint_gb=100.0)
    zones = (Zone("A", 8, pue=1.0, price_usd_per_mwh=prices),
             Zone("B", 8, pue=1.0, price_usd_per_mwh=prices * 2))
    request = PlanRequest(start=t0, jobs=(job,), zones=zones,
                          policy=Policy(mip_gap=0.0, **policy))  # type: ignore[arg-type]
    judged = intensity_data(frame(1.0, 1.0))
    price = np.vstack([prices.to_numpy(), 2 * prices.to_numpy()])
    problem = build_problem(request, judged, price)
    outcome = solve_problem(problem, request.policy.solve_settings)
    intensities = Intensities(judged, intensity_data(frame(2.0, 2.0)), "forecast", "test",
                              {"p10": frame(0.5, 0.5), "p90": frame(1.5, p90_b)})
    return assemble(request, problem, outcome, intensities, 0.0, fallback=fallback)


def test_realised_emissions_count_checkpoint_transfers() -> None:
    job = _forecast_plan().to_dict()["jobs"][0]
    s = job["summary"]
    assert s["migrations"] == 1 and s["transfer_emissions_kg"] == pytest.approx(0.6)
    # runs 0.4 kg + transfer 0.6 kg on the forecast; what happened is twice that
    assert s["emissions_kg"] == pytest.approx(1.0)
    assert s["realised_emissions_kg"] == pytest.approx(2 * s["emissions_kg"])
    home = job["baselines"]["run_now_home"]
    assert home["realised_emissions_kg"] == pytest.approx(2 * home["emissions_kg"])


def test_forecast_plan_has_p10_p90_savings_and_realised_saving() -> None:
    job = _forecast_plan().to_dict()["jobs"][0]
    s, home = job["summary"], job["baselines"]["run_now_home"]
    assert (s["emissions_p10_kg"], s["emissions_p90_kg"]) == pytest.approx((0.5, 1.5))
    assert (home["emissions_p10_kg"], home["emissions_p90_kg"]) == pytest.approx((1.0, 3.0))
    assert home["emissions_kg"] == pytest.approx(2.0)
    assert job["savings_pct"] == pytest.approx(50.0)
    assert job["savings_pct_p10_p90"] == pytest.approx([50.0, 50.0])
    assert job["robust"] is True and "fallback" not in s
    assert job["realised_savings_pct"] == pytest.approx(50.0)


def test_printed_forecast_summary_says_expected_range_and_realised() -> None:
    from greenepoch.planner.cli.report import plan_summary

    text = plan_summary(_forecast_plan())
    header = next(line for line in text.splitlines() if line.startswith("job "))
    for column in ("expected_saving_%", "at_P10..P90_%", "realised_kg", "realised_saving_%"):
        assert column in header
    assert " saving_% " not in header  # no bare saving_% whose basis the reader must guess
    assert "50.0..50.0" in text
    total = next(line for line in text.splitlines() if line.startswith("total:"))
    assert ("1.0 kg CO2eq planned vs 2.0 kg running now at home on the forecast "
            "(50.0 % less expected, 50.0 % at P10 .. 50.0 % at P90); realised: 2.0 kg vs "
            "4.0 kg running now (50.0 % less)") in total
    assert "WARNING" not in text


def test_plan_not_robust_at_p90_falls_back_to_running_now_and_warns() -> None:
    from greenepoch.planner.cli.report import plan_summary

    # B's P90 is 5x its mean: at P90 the move emits 2.0 + 3.0 kg, running now 3.0 kg
    plan = _forecast_plan(p90_b=5.0)
    job = plan.to_dict()["jobs"][0]
    s = job["summary"]
    assert s["fallback"]["to"] == "run_now_home"
    assert (s["fallback"]["expected_kg"], s["fallback"]["p90_kg"]) == pytest.approx((1.0, 5.0))
    assert [seg["zone"] for seg in job["segments"]] == ["A"] and s["migrations"] == 0
    assert s["emissions_kg"] == pytest.approx(job["baselines"]["run_now_home"]["emissions_kg"])
    assert job["savings_pct"] == 0.0 and job["realised_savings_pct"] == 0.0
    assert job["savings_pct_p10_p90"] == [0.0, 0.0] and job["robust"] is True
    assert plan.to_dict()["solver"]["objective"] == pytest.approx(2.0)
    assert ("WARNING: job 'train' runs now at home (run-now fallback): at the forecast's P90 "
            "its optimised schedule emits 5.0 kg, more than running now (3.0 kg at P90); it "
            "expected 1.0 kg on the forecast mean (--no-fallback keeps it).") in plan_summary(plan)


def test_summary_warns_when_the_saving_is_not_robust() -> None:
    from greenepoch.planner.cli.report import plan_summary

    for plan in (_forecast_plan(p90_b=5.0, fallback=False),
                 # a hard threshold of 400 g/kWh forbids running now in A: nothing to fall to
                 _forecast_plan(p90_b=5.0, threshold=400.0)):
        job = plan.to_dict()["jobs"][0]
        assert job["robust"] is False and "fallback" not in job["summary"]
        assert job["savings_pct_p10_p90"] == pytest.approx([50.0, -66.67])
        assert ("WARNING: job 'train': the expected saving is not robust: at the forecast's "
                "P90 the plan emits 5.0 kg, more than running now (3.0 kg at P90)."
                ) in plan_summary(plan)


def test_carbon_cost_plan_prints_cost_and_run_now_cost() -> None:
    from greenepoch.planner.cli.report import plan_summary

    plan = _forecast_plan(objective="carbon+cost", price_weight=0.001)
    job = plan.to_dict()["jobs"][0]
    # plan: 4 GPU-h in B at 100 USD/MWh = 0.40 USD + 100 GB egress x 0.02 = 2.00 USD;
    # run now: 4 GPU-h in A at 50 USD/MWh = 0.20 USD
    assert job["summary"]["cost_usd"] == pytest.approx(2.4)
    assert job["baselines"]["run_now_home"]["cost_usd"] == pytest.approx(0.2)
    text = plan_summary(plan)
    header = next(line for line in text.splitlines() if line.startswith("job "))
    assert "cost_usd" in header and "run_now_cost_usd" in header
    assert "; cost 2.40 USD vs 0.20 USD running now at home." in text


def test_plan_realised_saving_is_whatifs_savings_pct() -> None:
    from greenepoch.planner.whatif.evaluate import plan_row

    for p90_b in (1.5, 5.0):
        doc = _forecast_plan(p90_b=p90_b, fallback=False).to_dict()
        assert plan_row(doc)["savings_pct"] == pytest.approx(
            doc["jobs"][0]["realised_savings_pct"], abs=0.01)


def test_plans_default_to_the_best_measured_model() -> None:
    """policy.forecast defaults to 'default', which stands for blend (the best of the
    models measured by benchmarks/bench_forecast_plans.py; docs/cli.md)."""
    from greenepoch.forecasts.registry import canonical_name
    from greenepoch.planner.model import Policy

    assert canonical_name(Policy().forecast) == "blend"
    result = CliRunner().invoke(cli, ["plan", "--help"])
    assert "'default' is the best measured one (blend)" in " ".join(result.output.split())


def test_no_fallback_with_oracle_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    line = _one_error_line(runner.invoke(cli, ["plan", str(EXAMPLES / "minimal.toml"),
                                               "--oracle", "--no-fallback", "--out",
                                               str(tmp_path / "p.json")]))
    assert "--no-fallback is for forecast plans" in line
    assert not (tmp_path / "p.json").exists()
