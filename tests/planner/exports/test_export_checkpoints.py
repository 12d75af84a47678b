"""Checkpoint directories and per-job overrides of the Slurm and Kubernetes exports:
every job gets its own checkpoint directory (issue 13 item 8) and a ``[jobs."name"]``
table must name a job of the plan (item 11)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from export_fixtures import now_floor, plan_doc, run_cli, segment, toml
from greenepoch.planner.exports.common import job_key, slug
from greenepoch.planner.exports.config import parse_config
from greenepoch.planner.exports.k8s import export_k8s
from greenepoch.planner.exports.slurm import export_slurm
from greenepoch.planner.plan import Plan, PlanError

#: Names whose old slugs collide: "team-a-b" twice, "job" for every non-ASCII name.
NEAR = ["team/a b", "team-a-b", "team a/b", "训练", "обучение", "🚀"]

#: A training that records what it resumed from, then writes its own checkpoint.
TRAIN = r"""
import json, os
from pathlib import Path
ckpt = Path(os.environ["GREENEPOCH_CHECKPOINT_DIR"])
with open(os.environ["GE_TEST_OUT"], "a", encoding="utf-8") as fh:
    fh.write(json.dumps({"job": os.environ["GREENEPOCH_JOB"], "ckpt": str(ckpt),
                         "resume": os.environ["GREENEPOCH_RESUME_FROM"]}) + "\n")
(ckpt / "step-1").write_text(os.environ["GREENEPOCH_JOB"], encoding="utf-8")
"""


def _future() -> pd.Timestamp:
    return now_floor() + pd.Timedelta("1h")


def _slurm_config(**defaults) -> dict:
    # launcher "none": the batch script runs the command itself, so bash alone can run it
    return {"defaults": {"command": ["echo", "hi"], **defaults},
            "zones": {"Z1": {"slurm": {"partition": "gpu", "launcher": "none"}}}}


def _kube_config(**defaults) -> dict:
    return {"defaults": {"command": ["python", "train.py"], "image": "r.example/t:1",
                         **defaults},
            "zones": {"Z1": {"kubernetes": {"checkpoint_claim": "ckpt"}}}}


def _env(script: str, name: str) -> str:
    line = next(x for x in script.splitlines() if x.startswith(f"export {name}="))
    return subprocess.run(["bash", "-c", f"{line}; printf %s \"${name}\""], text=True,
                          capture_output=True, check=True).stdout


def test_job_key_differs_for_names_that_share_a_slug():
    assert len({slug(n, 60) for n in NEAR}) < len(NEAR)  # what went wrong before
    keys = [job_key(n) for n in NEAR]
    assert len(set(keys)) == len(NEAR)
    for key in keys:
        assert key == slug(key, 60)  # file-safe as it is
    assert job_key("team/a b").startswith("team-a-b-")
    assert job_key("训练") == job_key("训练")  # stable: a requeue finds its checkpoint


def test_slurm_jobs_with_near_duplicate_names_get_their_own_checkpoints(tmp_path):
    """Run each job's batch script with bash (no Slurm), one after the other: with the
    old slug job 2 resumed from job 1's checkpoint."""
    out = tmp_path / "seen.jsonl"
    train = tmp_path / "train.py"
    train.write_text(TRAIN, encoding="utf-8")
    doc = plan_doc({n: [segment("Z1", _future(), 30, 1)] for n in NEAR})
    config = _slurm_config(command=[sys.executable, str(train)],
                           checkpoint_dir=str(tmp_path / "ckpt" / "{job}"),
                           env={"GE_TEST_OUT": str(out)})
    files = export_slurm(Plan.from_dict(doc), parse_config(config))
    scripts = [files[k] for k in sorted(files) if k.endswith(".sbatch")]
    assert len(scripts) == len(NEAR)
    for script in scripts:
        subprocess.run(["bash", "-c", script], env={"PATH": "/usr/bin:/bin"}, check=True,
                       timeout=60, cwd=tmp_path, capture_output=True)
    seen = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(s["job"] for s in seen) == sorted(NEAR)
    assert len({s["ckpt"] for s in seen}) == len(NEAR)
    assert [s["resume"] for s in seen] == [""] * len(NEAR)  # nobody resumed another's
    for s in seen:
        assert Path(s["ckpt"]).name == job_key(s["job"])


def test_kubernetes_jobs_with_near_duplicate_names_get_their_own_checkpoints():
    doc = plan_doc({n: [segment("Z1", _future(), 30, 1)] for n in NEAR})
    config = parse_config(_kube_config(checkpoint_dir="/ckpt/{job}"))
    files = export_k8s(Plan.from_dict(doc), config)
    dirs = {}
    for name, text in files.items():
        if not name.endswith(".yaml"):
            continue
        (obj,) = yaml.safe_load_all(text)
        container = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert container["volumeMounts"][0]["mountPath"] == env["GREENEPOCH_CHECKPOINT_DIR"]
        dirs[env["GREENEPOCH_JOB"]] = env["GREENEPOCH_CHECKPOINT_DIR"]
    assert sorted(dirs) == sorted(NEAR)
    assert len(set(dirs.values())) == len(NEAR)


@pytest.mark.parametrize("kind", ["slurm", "k8s"])
@pytest.mark.parametrize("case", ["no_job", "override"])
def test_a_shared_checkpoint_dir_is_refused(tmp_path, kind, case):
    """A fixed checkpoint_dir in a multi-job plan, or two overrides naming one folder:
    exit 2, one line naming both jobs, nothing written."""
    doc = plan_doc({"a": [segment("Z1", _future(), 30, 1)],
                    "b": [segment("Z1", _future(), 30, 1)]})
    make = _slurm_config if kind == "slurm" else _kube_config
    if case == "no_job":
        config = make(checkpoint_dir="checkpoints")
    else:
        config = make()
        config["jobs"] = {"a": {"checkpoint_dir": "ckpt/x"},
                          "b": {"checkpoint_dir": "ckpt/../ckpt/x/"}}
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(doc))
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(config))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(["export", kind, str(plan), "--config", str(cfg), "--out",
                      str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "jobs 'a' and 'b' would share the checkpoint directory" in result.stderr
    assert "{job}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_fixed_checkpoint_dir_is_fine_for_one_job_or_separate_workdirs():
    one = plan_doc({"a": [segment("Z1", _future(), 30, 1), segment(
        "Z1", _future() + pd.Timedelta("1h"), 30, 1)]})
    files = export_slurm(Plan.from_dict(one), parse_config(_slurm_config(checkpoint_dir="ckpt")))
    assert all(_env(t, "GREENEPOCH_CHECKPOINT_DIR") == "ckpt"
               for k, t in files.items() if k.endswith(".sbatch"))
    two = plan_doc({"a": [segment("Z1", _future(), 30, 1)],
                    "b": [segment("Z1", _future(), 30, 1)]})
    config = _slurm_config(checkpoint_dir="ckpt")
    config["jobs"] = {"a": {"workdir": "/w/a"}, "b": {"workdir": "/w/b"}}
    export_slurm(Plan.from_dict(two), parse_config(config))  # different folders: no error


@pytest.mark.parametrize("kind", ["slurm", "k8s"])
def test_an_override_for_a_job_not_in_the_plan_is_refused(tmp_path, kind):
    """``[jobs."train "]`` (trailing space) used to be ignored: the job ran the default
    command.  Now exit 2 naming the table and the plan's jobs; nothing written."""
    doc = plan_doc({"train": [segment("Z1", _future(), 30, 1)],
                    "eval": [segment("Z1", _future(), 30, 1)]})
    config = (_slurm_config if kind == "slurm" else _kube_config)(
        checkpoint_dir="ckpt/{job}")
    config["jobs"] = {"train ": {"command": ["python", "big.py"]}}
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(doc))
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(config))
    result = run_cli(["export", kind, str(plan), "--config", str(cfg), "--out",
                      str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "[jobs.\"train \"] names no job of the plan" in result.stderr
    assert "the plan's jobs: 'train', 'eval'" in result.stderr
    assert not (tmp_path / "out").exists()
    # the corrected name exports, and the job runs its own command
    config["jobs"] = {"train": config["jobs"]["train "]}
    if kind == "slurm":
        files = export_slurm(Plan.from_dict(doc), parse_config(config))
        assert "cmd=(python big.py)" in files["j00-train-s000.sbatch"]
        assert "cmd=(echo hi)" in files["j01-eval-s000.sbatch"]
    else:
        assert "big.py" in "".join(export_k8s(Plan.from_dict(doc), parse_config(config)).values())


def test_duplicate_job_names_are_refused():
    # refused where the plan is read, before any exporter could mix the two up
    doc = plan_doc({"a": [segment("Z1", _future(), 30, 1)]})
    doc["jobs"].append(dict(doc["jobs"][0]))
    with pytest.raises(PlanError, match=r"jobs\[1\]\.name = 'a': also the name of jobs\[0\]"):
        Plan.from_dict(doc)


def _two_zone_config(defaults_dir: str, de_dir: str, gb_dir: str) -> dict:
    zone = {"slurm": {"partition": "gpu"}, "kubernetes": {"checkpoint_claim": "ckpt"}}
    return {"defaults": {"command": ["python", "t.py"], "image": "t:1",
                         "checkpoint_dir": defaults_dir},
            "zones": {"DE": {k: {**v, "checkpoint_dir": de_dir} for k, v in zone.items()},
                      "GB": {k: {**v, "checkpoint_dir": gb_dir} for k, v in zone.items()}}}


@pytest.mark.parametrize("export", [export_slurm, export_k8s])
def test_zone_dirs_with_job_need_none_in_the_defaults(export):
    """Every zone sets its own checkpoint_dir with {job}: a [defaults] dir without it is
    never used, and was refused all the same."""
    t0 = _future()
    plan = Plan.from_dict(plan_doc({"a": [segment("DE", t0, 30, 2)],
                                    "b": [segment("GB", t0, 30, 2)]}))
    files = export(plan, parse_config(_two_zone_config("/shared", "/de/{job}", "/gb/{job}")))
    assert any(f"/de/{job_key('a')}" in text for text in files.values())


@pytest.mark.parametrize("export", [export_slurm, export_k8s])
def test_two_zones_naming_one_folder_are_refused_across_zones(export):
    """Zones may share a filesystem (a zone's checkpoint_url defaults to its dir): two
    jobs in different zones with one folder are refused, naming both zones."""
    t0 = _future()
    plan = Plan.from_dict(plan_doc({"a": [segment("DE", t0, 30, 2)],
                                    "b": [segment("GB", t0, 30, 2)]}))
    with pytest.raises(Exception, match="zones 'DE' and 'GB': jobs 'a' and 'b' would share "
                                        "the checkpoint directory '/ckpt'"):
        export(plan, parse_config(_two_zone_config("/x/{job}", "/ckpt", "/ckpt")))
