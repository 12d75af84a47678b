"""``greenepoch export k8s``: manifests validated strictly against the pinned
Kubernetes version (kubernetes-validate) and the Kueue CRDs of shared/schemas."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from export_fixtures import hostile, need, now_floor, plan_doc, run_cli, segment

from planner.exports.common import ExportError
from planner.exports.config import parse_config
from planner.exports.k8s import KUEUE_QUEUE_LABEL, export_k8s, manifests
from planner.plan import Plan

CRDS = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "kubernetes-crds"

CONFIG = {
    "defaults": {"command": ["python", "train.py"], "image": "registry.example/train:1",
                 "checkpoint_dir": "/ckpt/{job}", "checkpoint_lead": "5min"},
    "zones": {
        "DE": {"kubernetes": {"namespace": "training", "gpus_per_node": 8, "queue": "llm",
                              "cluster_queue": "gpu-de", "checkpoint_claim": "ckpt",
                              "node_affinity": {"topology.kubernetes.io/region":
                                                "eu-central-1"}}},
        "GB": {"kubernetes": {"node_affinity": {"example.com/zone": ["gb-1", "gb-2"]}}},
    },
}


@pytest.fixture(scope="module")
def validate():
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        need(False, "kubernetes-validate is not installed (pip install -e '.[test]')")
    need(CRDS.is_dir(), f"Kueue/JobSet CRDs not found at {CRDS}")
    from planner.exports.k8s_validate import validate as check

    return lambda obj: check(obj, CRDS)


def _plan(name: str = "llm") -> Plan:
    t0 = now_floor() + pd.Timedelta("1h")
    return Plan(plan_doc({name: [segment("DE", t0, 120, 16),
                                 segment("GB", t0 + pd.Timedelta("3h"), 45, 4)],
                          "small": [segment("GB", t0, 30, 1)]}))


@pytest.mark.parametrize("kind", ["cronjob", "job"])
def test_every_manifest_validates_strictly(validate, kind):
    objs = manifests(_plan(), parse_config(CONFIG), kind)
    kinds = [validate(o) for group in objs.values() for o in group]
    core = "CronJob" if kind == "cronjob" else "Job"
    assert kinds.count(f"Kubernetes 1.30 batch/v1 {core}") == 3
    assert kinds.count("CRD kueue.x-k8s.io/v1beta1 LocalQueue") == 1


def test_manifests_carry_the_plan():
    plan = _plan()
    objs = [o for g in manifests(plan, parse_config(CONFIG), "job").values() for o in g]
    job = next(o for o in objs if o["kind"] == "Job"
               and o["metadata"]["annotations"]["greenepoch.io/zone"] == "DE")
    seg = plan.doc["jobs"][0]["segments"][0]
    spec = job["spec"]
    assert spec["suspend"] is True
    assert spec["activeDeadlineSeconds"] == 120 * 60 - 300
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] == 2
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 300
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 8}
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["eu-central-1"]}]
    labels = job["metadata"]["labels"]
    assert labels[KUEUE_QUEUE_LABEL] == "llm"
    assert labels["greenepoch.io/segment"] == "0" and labels["greenepoch.io/job-index"] == "0"
    ann = job["metadata"]["annotations"]
    assert ann["greenepoch.io/window-start"] == seg["start"]
    assert ann["greenepoch.io/window-end"] == seg["end"]
    cron = next(o for g in manifests(plan, parse_config(CONFIG)).values() for o in g
                if o["kind"] == "CronJob")
    start = pd.Timestamp(seg["start"])
    assert cron["spec"]["schedule"] == f"{start.minute} {start.hour} {start.day} {start.month} *"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    assert "-j0-s0-" in job["metadata"]["name"]  # segment numbers from 0, as in the labels
    for o in objs:
        name = o["metadata"]["name"]
        assert len(name) <= 52 and name == name.lower()


def test_broken_manifests_fail(validate):
    objs = manifests(_plan(), parse_config(CONFIG), "job")
    job = next(o for g in objs.values() for o in g if o["kind"] == "Job")
    extra = copy.deepcopy(job)
    extra["spec"]["template"]["spec"]["containers"][0]["gpus"] = 8  # undeclared field
    with pytest.raises(ExportError, match="gpus"):
        validate(extra)
    wrong = copy.deepcopy(job)
    wrong["spec"]["activeDeadlineSeconds"] = "two hours"
    with pytest.raises(ExportError, match="activeDeadlineSeconds"):
        validate(wrong)
    queue = next(o for g in objs.values() for o in g if o["kind"] == "LocalQueue")
    bad_queue = copy.deepcopy(queue)
    bad_queue["spec"]["clusterQueues"] = ["gpu-de"]  # not in the CRD
    with pytest.raises(ExportError, match="CRD"):
        validate(bad_queue)


def test_hostile_values_are_literal_in_parsed_yaml(tmp_path, validate):
    canary = tmp_path / "PWNED"
    evil = hostile(canary)
    config = copy.deepcopy(CONFIG)
    config["defaults"]["command"] = ["/bin/sh", "-c", 'printf "%s\\n" "$@" > "$0"',
                                     str(tmp_path / "argv.txt"), evil]
    config["defaults"]["resume_args"] = ["--resume={checkpoint}", evil]
    config["defaults"]["checkpoint_dir"] = str(tmp_path / "ck {job}")
    config["defaults"]["env"] = {"EVIL": evil}
    files = export_k8s(_plan(evil), parse_config(config), "job")
    objs = [d for name, text in files.items() if name.endswith(".yaml")
            for d in yaml.safe_load_all(text)]
    for obj in objs:
        validate(obj)
    job = next(o for o in objs if o["kind"] == "Job"
               and o["metadata"]["annotations"]["greenepoch.io/job-name"] == evil)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-3:] == [evil, "--resume={checkpoint}", evil]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["GREENEPOCH_JOB"] == evil and env["EVIL"] == evil
    # run the container's command with sh: the argv arrives verbatim, then resumes
    run_env = {"PATH": "/usr/bin:/bin", **env}
    ckpt = Path(env["GREENEPOCH_CHECKPOINT_DIR"])
    subprocess.run(container["command"], env=run_env, check=True, timeout=30)
    assert (tmp_path / "argv.txt").read_text() == evil + "\n"
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / "step-7").write_text("x")
    subprocess.run(container["command"], env=run_env, check=True, timeout=30)
    assert (tmp_path / "argv.txt").read_text().split("\n")[:-1] == [
        *evil.split("\n"), f"--resume={ckpt / 'step-7'}", *evil.split("\n")]
    assert not canary.exists()
    resume = files["resume.sh"]
    subprocess.run(["bash", "-n"], input=resume, text=True, check=True)


def test_resume_script_creates_kueue_jobs_at_their_window_start(tmp_path):
    """Kueue unsuspends a queued Job on admission, so such Jobs are not applied early:
    resume.sh creates them at their window start; the others it unsuspends."""
    t0 = pd.Timestamp("2023-06-01T00:00:00Z")  # in the past: the script does not sleep
    later = t0 + pd.Timedelta("2h")
    plan = Plan(plan_doc({"llm": [segment("GB", t0, 60, 4), segment("DE", later, 60, 16)]}))
    files = export_k8s(plan, parse_config(CONFIG), "job", now=t0 - pd.Timedelta("1h"))
    deferred = [f for f in files if f.startswith("at-window-start/")]
    assert len(deferred) == 1
    queued = yaml.safe_load(files[deferred[0]])
    assert queued["metadata"]["annotations"]["greenepoch.io/zone"] == "DE"
    assert queued["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "llm"
    gb = next(f for f in files if f.endswith(".yaml") and not f.startswith("at-window-start/")
              and yaml.safe_load(files[f])["kind"] == "Job")
    gb_job = yaml.safe_load(files[gb])
    assert KUEUE_QUEUE_LABEL not in gb_job["metadata"]["labels"]
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    log = tmp_path / "kubectl.log"
    fake = tmp_path / "kubectl"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    fake.chmod(0o755)
    subprocess.run(["bash", str(tmp_path / "resume.sh")], check=True, timeout=30,
                   env={"PATH": "/usr/bin:/bin", "KUBECTL": str(fake)}, cwd="/")
    assert log.read_text().splitlines() == [
        f"patch job {gb_job['metadata']['name']} -n default --type=merge "
        '-p {"spec":{"suspend":false}}',
        f"create -f {deferred[0]}",
    ]


def test_cli_writes_validated_manifests_and_fails_cleanly(tmp_path, validate):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(_plan().doc))
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[defaults]\ncommand = "python train.py --lr 1e-4"\nimage = "img:1"\n'
        '[zones.DE.kubernetes]\nqueue = "llm"\ncluster_queue = "cq"\n'
        '[zones.GB.kubernetes]\n')
    out = tmp_path / "k8s"
    result = run_cli(["export", "k8s", str(plan), "--config", str(cfg), "--out", str(out),
                      "--validate", str(CRDS)])
    assert result.exit_code == 0, result.output
    assert "validated 4 object(s)" in result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "export.json" in names and "localqueue-default-llm.yaml" in names
    # a zone with no mapping: exit 2, nothing written
    cfg.write_text('[defaults]\ncommand = ["x"]\nimage = "img:1"\n[zones.DE.kubernetes]\n')
    out2 = tmp_path / "k8s2"
    result = run_cli(["export", "k8s", str(plan), "--config", str(cfg), "--out", str(out2)])
    assert result.exit_code == 2
    assert "zone 'GB' has no kubernetes cluster mapping" in result.stderr
    assert not out2.exists()


def test_config_rejects_unknown_keys_and_bad_names():
    with pytest.raises(ExportError, match=r"unknown key.*'partitoin'"):
        parse_config({"zones": {"A": {"slurm": {"partitoin": "gpu"}}}})
    with pytest.raises(ExportError, match="not a Slurm name"):
        parse_config({"zones": {"A": {"slurm": {"partition": "gpu\n#SBATCH --x"}}}})
    with pytest.raises(ExportError, match="not a Kubernetes name"):
        parse_config({"zones": {"A": {"kubernetes": {"namespace": "Bad NS"}}}})
