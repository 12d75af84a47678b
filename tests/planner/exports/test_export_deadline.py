"""Exports take the job's deadline from the plan (issue 14 item 4) instead of knowing
only the segment windows; plans written before the plan recorded deadlines export as
before (``--deadline`` = window end + 59 s)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import yaml
from export_fixtures import now_floor, plan_doc, run_cli, segment, toml
from greenepoch.planner.exports.config import parse_config
from greenepoch.planner.exports.k8s import export_k8s
from greenepoch.planner.exports.slurm import export_slurm
from greenepoch.planner.plan import Plan

ROOT = Path(__file__).parents[3]
CONFIG = {"defaults": {"command": ["python", "train.py"], "image": "r.example/t:1"},
          "zones": {"Z1": {"slurm": {"partition": "gpu"},
                           "kubernetes": {"checkpoint_claim": "ckpt"}}}}


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _plan(with_deadline: bool) -> tuple[Plan, pd.Timestamp]:
    """One job, two segments; the second ends exactly at the job's deadline (the planner
    may use every slot up to it)."""
    t0 = now_floor().ceil("h") + pd.Timedelta("1h")
    doc = plan_doc({"train": [segment("Z1", t0, 60, 2),
                              segment("Z1", t0 + pd.Timedelta("3h"), 90, 2)]})
    deadline = t0 + pd.Timedelta("4h30min")
    if with_deadline:
        doc["jobs"][0].update(release=_iso(t0), deadline=_iso(deadline), gpu_hours=5.0)
    return Plan.from_dict(doc), deadline


def _directive(script: str, name: str) -> str:
    found = re.search(rf"^#SBATCH --{name}=(\S+)$", script, re.M)
    assert found, script
    return found.group(1)


def test_slurm_never_lets_a_segment_run_past_the_jobs_deadline() -> None:
    plan, deadline = _plan(with_deadline=True)
    files = export_slurm(plan, parse_config(CONFIG))
    first, last = sorted(n for n in files if n.endswith(".sbatch"))
    seg0_end = plan.jobs[0].segments[0].end
    assert _directive(files[first], "deadline") == (
        seg0_end + pd.Timedelta("59s")).strftime("%Y-%m-%dT%H:%M:%S")
    # the window ends at the job's deadline: the 59 s of slack would run past it
    assert _directive(files[last], "deadline") == deadline.strftime("%Y-%m-%dT%H:%M:%S")
    assert f"export GREENEPOCH_JOB_DEADLINE={_iso(deadline)}" in files[last]
    index = json.loads(files["export.json"])
    assert {s["job_deadline"] for s in index["segments"]} == {_iso(deadline)}
    assert index["segments"][1]["deadline"] == _iso(deadline)


def test_a_plan_without_deadlines_exports_as_before() -> None:
    plan, _ = _plan(with_deadline=False)
    files = export_slurm(plan, parse_config(CONFIG))
    last = sorted(n for n in files if n.endswith(".sbatch"))[-1]
    end = plan.jobs[0].segments[-1].end
    assert _directive(files[last], "deadline") == (
        end + pd.Timedelta("59s")).strftime("%Y-%m-%dT%H:%M:%S")
    assert "GREENEPOCH_JOB_DEADLINE" not in files[last]
    assert json.loads(files["export.json"])["segments"][-1]["job_deadline"] is None
    k8s = "".join(export_k8s(plan, parse_config(CONFIG)).values())
    assert "GREENEPOCH_JOB_DEADLINE" not in k8s


def test_kubernetes_jobs_are_told_the_deadline() -> None:
    plan, deadline = _plan(with_deadline=True)
    files = export_k8s(plan, parse_config(CONFIG), kind="job")
    jobs = [obj for name, text in files.items() if name.endswith(".yaml")
            for obj in yaml.safe_load_all(text) if obj and obj["kind"] == "Job"]
    assert len(jobs) == 2
    for job in jobs:
        env = {e["name"]: e["value"]
               for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["GREENEPOCH_JOB_DEADLINE"] == _iso(deadline)


def test_planned_deadline_reaches_the_sbatch_scripts(tmp_path: Path) -> None:
    """End to end: 'greenepoch plan' records the request's deadline, 'export slurm'
    gives it to every segment."""
    start = _iso(now_floor().ceil("D") + pd.Timedelta("1D"))
    out = tmp_path / "plan.json"
    made = run_cli(["plan", str(ROOT / "examples" / "minimal.toml"), "--oracle",
                    "--start", start, "--out", str(out)],
                   env={"GREENEPOCH_DATA": ""})  # the embedded default covers any year
    assert made.exit_code == 0, made.output
    plan = Plan.from_json(out)
    deadline = plan.jobs[0].deadline
    assert deadline is not None and deadline > pd.Timestamp(start)
    zones = {seg.zone for job in plan.jobs for seg in job.segments}
    config = tmp_path / "clusters.toml"
    config.write_text(toml({"defaults": {"command": ["python", "train.py"]},
                            "zones": {z: {"slurm": {"partition": "gpu"}} for z in zones}}))
    result = run_cli(["export", "slurm", str(out), "--config", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    scripts = result.output.split("==> ")[1:]
    sbatch = [s for s in scripts if s.split(" <==")[0].endswith(".sbatch")]
    assert sbatch
    for script in sbatch:
        assert f"export GREENEPOCH_JOB_DEADLINE={_iso(deadline)}" in script
        assert pd.Timestamp(_directive(script, "deadline"), tz="UTC") <= deadline
