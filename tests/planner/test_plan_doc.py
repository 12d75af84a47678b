"""The typed Plan (issue 14 item 4): the JSON is only its serialisation.

Round trips of plans the planner makes, plan files written before release, deadline and
gpu_hours were recorded, and malformed plans refused with one error naming the field
(in the library and through the CLI's ``export`` and ``report``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.planner.cli.main import cli
from greenepoch.planner.pipeline import plan
from greenepoch.planner.plan import Plan, PlanError, PlanStatus
from greenepoch.planner.request import load_request

ROOT = Path(__file__).parents[2]
#: Written by GreenEpoch before the plan recorded each job's release, deadline and
#: gpu_hours (examples/minimal.toml, forecast 'seasonal', embedded default).
OLD_PLAN = ROOT / "tests" / "fixtures" / "plans" / "minimal-forecast-schema-1.0-before-release.json"

#: The keys plans had before this version, per part: every new plan keeps all of them.
KEYS_BEFORE = {
    "plan": {"schema_version", "created_by", "start", "slot", "zones", "intensity", "solver",
             "jobs"},
    "intensity": {"source", "signal", "mode", "model"},
    "solver": {"name", "status", "method", "objective", "bound", "gap", "seconds",
               "build_seconds", "total_seconds", "message"},
    "job": {"name", "segments", "summary", "baselines", "savings_pct", "savings_pct_p10_p90",
            "robust", "realised_savings_pct"},
    "segment": {"zone", "start", "end", "gpus", "energy_kwh", "emissions_kg"},
    "summary": {"emissions_kg", "energy_kwh", "finish", "interruptions", "migrations",
                "transfer_emissions_kg", "overhead_hours", "cost_usd"},
}
NEW_JOB_KEYS = {"release", "deadline", "gpu_hours", "checkpoint_save_hours",
                "deadline_margin_hours", "gpus_step", "max_migrations", "resize_overhead_hours"}
NEW_SEGMENT_KEYS = {"gpu_hours", "save_hours"}
NEW_SUMMARY_KEYS = {"lost_gpu_hours"}


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    """Plans the planner makes of the shipped examples on the embedded default: oracle,
    forecast (with P10/P90 and realised figures), and two jobs with a threshold."""
    minimal = load_request(ROOT / "examples" / "minimal.toml")
    elastic = load_request(ROOT / "examples" / "threshold_elastic.toml")
    return {"oracle": plan(minimal, data=None, oracle=True),
            "forecast": plan(minimal, data=None, model="seasonal"),
            "two-jobs": plan(elastic, data=None, oracle=True)}


@pytest.mark.parametrize("name", ["oracle", "forecast", "two-jobs"])
def test_round_trip_of_planner_plans(plans: dict[str, Plan], name: str) -> None:
    made = plans[name]
    text = made.to_json()
    again = Plan.from_json(text)
    assert again == made
    assert again.to_json() == text  # same bytes, so the same export id
    doc = json.loads(text)
    assert set(doc) >= KEYS_BEFORE["plan"]
    assert set(doc["intensity"]) >= KEYS_BEFORE["intensity"]
    assert set(doc["solver"]) >= KEYS_BEFORE["solver"]
    for job in doc["jobs"]:
        assert set(job) == KEYS_BEFORE["job"] | NEW_JOB_KEYS  # added, none renamed
        assert set(job["summary"]) >= KEYS_BEFORE["summary"] | NEW_SUMMARY_KEYS
        for seg in job["segments"]:
            assert set(seg) == KEYS_BEFORE["segment"] | NEW_SEGMENT_KEYS


def test_jobs_carry_what_was_requested(plans: dict[str, Plan]) -> None:
    request = load_request(ROOT / "examples" / "threshold_elastic.toml")
    made = plans["two-jobs"]
    assert [(j.name, j.release, j.deadline, j.gpu_hours) for j in made.jobs] == [
        (j.name, j.release, j.deadline, j.gpu_hours) for j in request.jobs]
    first = json.loads(made.to_json())["jobs"][0]
    assert first["release"].endswith("Z") and first["deadline"].endswith("Z")
    assert pd.Timestamp(first["deadline"]) == request.jobs[0].deadline


def test_attributes_are_typed(plans: dict[str, Plan]) -> None:
    made = plans["forecast"]
    assert made.solver is not None and isinstance(made.solver.status, PlanStatus)
    assert made.intensity is not None and made.intensity.forecast
    job = made.jobs[0]
    assert job.summary is not None and job.baselines is not None
    assert job.summary.emissions_p90_kg is not None
    assert job.baselines["run_now_home"].realised_emissions_kg is not None
    for seg in job.segments:
        assert isinstance(seg.start, pd.Timestamp) and str(seg.start.tz) == "UTC"
    assert made.job(job.name) is job
    with pytest.raises(PlanError, match="no job 'nope'"):
        made.job("nope")


def test_plan_written_before_release_and_deadline_loads() -> None:
    text = OLD_PLAN.read_text(encoding="utf-8")
    old = Plan.from_json(OLD_PLAN)
    assert old.jobs and all(j.release is None and j.deadline is None and j.gpu_hours is None
                            for j in old.jobs)
    assert "release" not in text
    assert old.to_json() == text  # nothing added on the way: its export id is unchanged
    old.require_full()  # everything a report reads is there


def test_keys_this_version_does_not_know_are_kept() -> None:
    doc = json.loads(OLD_PLAN.read_text(encoding="utf-8"))
    doc["note"] = {"by": "a person"}
    doc["jobs"][0]["team"] = "ml"
    doc["jobs"][0]["segments"][0]["node"] = "gpu-07"
    back = Plan.from_dict(doc).to_dict()
    assert back == doc and list(back) == list(doc)


def test_a_field_set_later_is_written() -> None:
    old = Plan.from_json(OLD_PLAN)
    deadline = pd.Timestamp("2023-06-08T00:00:00Z")
    job = dataclasses.replace(old.jobs[0], deadline=deadline)
    moved = dataclasses.replace(old, jobs=(job,))
    assert json.loads(moved.to_json())["jobs"][0]["deadline"] == "2023-06-08T00:00:00Z"
    assert Plan.from_json(moved.to_json()).jobs[0].deadline == deadline


def test_a_minimal_hand_made_plan_is_enough_for_exports() -> None:
    made = Plan.from_dict({"schema_version": "1.0", "jobs": [{"name": "a", "segments": [
        {"zone": "DE", "start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z",
         "gpus": 8}]}]})
    assert made.start is None and made.solver is None and made.jobs[0].summary is None
    with pytest.raises(PlanError, match="missing 'start'"):
        made.require_full()


def _old_doc() -> dict[str, Any]:
    return json.loads(OLD_PLAN.read_text(encoding="utf-8"))


def _set(path: str, value: Any) -> Any:
    """A mutation of the old plan: the value at ``path`` (dots and [i]) set to ``value``."""
    def mutate(doc: dict[str, Any]) -> None:
        parts = path.replace("[", ".").replace("]", "").split(".")
        where: Any = doc
        for part in parts[:-1]:
            where = where[int(part)] if part.isdigit() else where[part]
        last = parts[-1]
        where[int(last) if last.isdigit() else last] = value
    return mutate


def _swap_segments(doc: dict[str, Any]) -> None:
    segs = doc["jobs"][0]["segments"]
    segs[0], segs[1] = segs[1], segs[0]


def _duplicate_job(doc: dict[str, Any]) -> None:
    doc["jobs"].append(dict(doc["jobs"][0]))


def _deadline_before_a_segment(doc: dict[str, Any]) -> None:
    job = doc["jobs"][0]
    job["release"], job["deadline"] = "2023-06-01T00:00:00Z", "2023-06-02T00:00:00Z"


MALFORMED = [
    ("schema version", _set("schema_version", "2.0"), r"schema_version '2\.0' is not supported"),
    ("gpus as text", _set("jobs[0].segments[0].gpus", "64"), r"jobs\[0\]\.segments\[0\]\.gpus"),
    ("naive time", _set("jobs[0].segments[0].start", "2023-06-01T07:00:00"),
     r"jobs\[0\]\.segments\[0\]\.start: .* has no UTC offset"),
    ("end before start", _set("jobs[0].segments[0].end", "2023-06-01T00:00:00Z"),
     r"jobs\[0\]\.segments\[0\]\.end: .* is not after start"),
    ("unordered segments", _swap_segments, r"jobs\[0\]\.segments\[1\]\.start: .* is before"),
    ("unknown zone", _set("jobs[0].segments[0].zone", "XX"),
     r"jobs\[0\]\.segments\[0\]\.zone = 'XX': not one of the plan's zones \(DE, GB\)"),
    ("duplicate job", _duplicate_job, r"jobs\[1\]\.name = .*also the name of jobs\[0\]"),
    ("job name", _set("jobs[0].name", 7), r"jobs\[0\]\.name = 7: expected text"),
    ("status", _set("solver.status", "great"),
     r"solver\.status = 'great': expected one of optimal, feasible, no_solution"),
    ("count", _set("jobs[0].summary.interruptions", 1.5), r"jobs\[0\]\.summary\.interruptions"),
    ("flag", _set("jobs[0].baselines.run_now_home.meets_request", "yes"),
     r"jobs\[0\]\.baselines\.run_now_home\.meets_request"),
    ("naive deadline", _set("jobs[0].deadline", "2023-06-08"), r"jobs\[0\]\.deadline: "),
    ("segment past deadline", _deadline_before_a_segment,
     r"jobs\[0\]\.segments\[\d+\]\.end: .* is after the job's deadline 2023-06-02T00:00:00Z"),
    ("gpu_hours", _set("jobs[0].gpu_hours", -1), r"jobs\[0\]\.gpu_hours = -1"),
    ("jobs", _set("jobs", {"a": 1}), r"jobs: expected a list of tables"),
    ("zones", _set("zones", ["DE", 4]), r"zones\[1\] = 4: expected text"),
    ("zones list", _set("zones", "DE"), r"zones = 'DE': expected a list of text"),
]


@pytest.mark.parametrize("mutate,message", [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_plan_is_one_error_naming_the_field(tmp_path: Path, mutate: Any,
                                                      message: str) -> None:
    doc = _old_doc()
    mutate(doc)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PlanError, match=message) as caught:
        Plan.from_json(path)
    assert str(caught.value).startswith(f"{path}: ")
    runner = CliRunner()
    for args in (["export", "csv", str(path)],
                 ["report", str(path), "--out", str(tmp_path / "r.html")]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("greenepoch: error: "), result.stderr
        assert caught.value.args[0] in lines[0]
        assert not (tmp_path / "r.html").exists()


# -- where the plan and its segment CSV are written (the names as given) -------------------
@pytest.mark.parametrize("given, csv_name", [("p.json", "p.csv"), ("p.JSON", "p.csv"),
                                             ("p", "p.csv"), ("run.v2", "run.v2.csv"),
                                             ("p.tar.json", "p.tar.csv")])
def test_plan_json_is_written_as_named_and_its_csv_beside_it(
        plans: dict[str, Plan], tmp_path: Path, given: str, csv_name: str) -> None:
    # run.v2's CSV used to be run.csv: another plan's (run.json) CSV, overwritten
    (tmp_path / "run.csv").write_text("another plan's segments\n", encoding="utf-8")
    json_file, csv_file = plans["oracle"].write(tmp_path / given)
    assert (json_file, csv_file) == (tmp_path / given, tmp_path / csv_name)
    assert Plan.from_json(json_file).to_dict() == plans["oracle"].to_dict()
    assert csv_file.read_text(encoding="utf-8").startswith("job,zone,")
    assert (tmp_path / "run.csv").read_text(encoding="utf-8") == "another plan's segments\n"


def test_plan_command_out_without_suffix_writes_p_and_p_csv(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", str(ROOT / "examples" / "minimal.toml"),
                                      "--oracle", "--out", str(tmp_path / "p")],
                                env={"GREENEPOCH_DATA": ""})
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p", "p.csv"]
    assert f"wrote {tmp_path / 'p'} and {tmp_path / 'p.csv'}" in result.stdout
    json.loads((tmp_path / "p").read_text(encoding="utf-8"))
