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
from greenepoch.planner.exports.common import ExportError
from greenepoch.planner.exports.config import parse_config
from greenepoch.planner.exports.k8s import (
    INDEX_ANNOTATION,
    JOB_NAME_LABEL,
    KUEUE_QUEUE_LABEL,
    RESUME_SH,
    export_k8s,
    manifests,
)
from greenepoch.planner.plan import Plan

CRDS = Path(__file__).resolve().parents[4] / "shared" / "schemas" / "kubernetes-crds"

#: Text Kubernetes would rewrite in a container's command, args and env values.
DOLLARS = " $(GREENEPOCH_PLAN_ID) $$x p@$$word $(GREENEPOCH_JOB)$(HOME) $( end$"

CONFIG = {
    "defaults": {"command": ["python", "train.py"], "image": "registry.example/train:1",
                 "checkpoint_dir": "/ckpt/{job}", "checkpoint_lead": "5min"},
    "zones": {
        "DE": {"kubernetes": {"namespace": "training", "gpus_per_node": 8, "queue": "llm",
                              "cluster_queue": "gpu-de", "checkpoint_claim": "ckpt",
                              "node_affinity": {"topology.kubernetes.io/region":
                                                "eu-central-1"}}},
        "GB": {"kubernetes": {"node_affinity": {"example.com/zone": ["gb-1", "gb-2"]},
                              "checkpoint_claim": "ckpt-gb"}},
    },
}


@pytest.fixture(scope="module")
def validate():
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        need(False, "kubernetes-validate is not installed (pip install -e '.[test]')")
    need(CRDS.is_dir(), f"Kueue/JobSet CRDs not found at {CRDS}")
    from greenepoch.planner.exports.k8s_validate import validate as check

    return lambda obj: check(obj, CRDS)


def kube_expand(text: str, env: dict[str, str]) -> str:
    """What Kubernetes makes of a container's command, args or env value: ``$(NAME)``
    -> NAME's value when defined, ``$$`` -> ``$`` (a port of Kubernetes'
    third_party/forked/golang/expansion ``Expand``)."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "$" or i + 1 == len(text):
            out.append(text[i])
            i += 1
            continue
        nxt = text[i + 1]
        close = text.find(")", i + 2) if nxt == "(" else -1
        if nxt == "$":
            out.append("$")
        elif close != -1:
            name = text[i + 2:close]
            out.append(env.get(name, f"$({name})"))
            i = close + 1
            continue
        else:
            out.append("$" + nxt)
        i += 2
    return "".join(out)


def kube_run(container: dict, job: str = "job", index: int = 0
             ) -> tuple[list[str], dict[str, str]]:
    """The argv and environment the kubelet starts ``container`` with, in pod ``index``
    of a Job named ``job``: env values expanded in order against the ones before (the
    downward API giving the Job controller's label and annotation), then command
    against them all."""
    pod = {f"metadata.labels['{JOB_NAME_LABEL}']": job,
           f"metadata.annotations['{INDEX_ANNOTATION}']": str(index)}
    env: dict[str, str] = {}
    for var in container["env"]:
        ref = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        env[var["name"]] = pod[ref] if ref else kube_expand(var["value"], env)
    return [kube_expand(word, env) for word in container["command"]], env


def test_kube_expand_follows_kubernetes():
    env = {"A": "1"}
    assert kube_expand("$(A)-$$(A)-$$$(A)-$(B)-$A-$(A", env) == "1-$(A)-$1-$(B)-$A-$(A"
    assert kube_expand("x$", env) == "x$"


def _plan(name: str = "llm") -> Plan:
    t0 = now_floor() + pd.Timedelta("1h")
    return Plan.from_dict(plan_doc({name: [segment("DE", t0, 120, 16),
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
    seg = plan.to_dict()["jobs"][0]["segments"][0]
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


def test_zone_label_is_a_valid_label_value(validate):
    config = copy.deepcopy(CONFIG)
    config["zones"]["_a_"] = {"kubernetes": {"ephemeral_checkpoints": True}}
    config["zones"]["x" * 70 + "_"] = {"kubernetes": {"checkpoint_claim": "c"}}
    t0 = now_floor() + pd.Timedelta("1h")
    plan = Plan.from_dict(plan_doc({"a": [segment("_a_", t0, 60, 1)],
                          "b": [segment("x" * 70 + "_", t0, 60, 1)]}))
    for kind in ("cronjob", "job"):
        objs = [o for g in manifests(plan, parse_config(config), kind).values() for o in g]
        zones = {o["metadata"]["labels"]["greenepoch.io/zone"] for o in objs}
        assert zones == {"a", "x" * 63}
        for obj in objs:
            validate(obj)


def test_validate_rejects_bad_labels(validate):
    objs = manifests(_plan(), parse_config(CONFIG), "cronjob")
    cron = next(o for g in objs.values() for o in g if o["kind"] == "CronJob")
    for where, key, value in [
            (["metadata"], "greenepoch.io/zone", "-a-"),
            (["spec", "jobTemplate", "metadata"], "greenepoch.io/zone", "a" * 64),
            (["spec", "jobTemplate", "spec", "template", "metadata"], "greenepoch.io/x", "a b"),
            (["metadata"], "-bad", "v"),
            (["metadata"], "Bad.Prefix/x", "v"),
            (["metadata"], "a/b/c", "v")]:
        bad = copy.deepcopy(cron)
        node = bad
        for step in where:
            node = node[step]
        node["labels"][key] = value
        with pytest.raises(ExportError, match="invalid label at " + "/".join(where)):
            validate(bad)


def test_yaml_has_no_anchors_and_the_start_deadline_has_a_floor():
    t0 = now_floor() + pd.Timedelta("1h")
    plan = Plan.from_dict(plan_doc({"llm": [segment("DE", t0, 120, 16),
                                  segment("GB", t0 + pd.Timedelta("3h"), 0.5, 1)]}))
    files = export_k8s(plan, parse_config(CONFIG))
    crons = [f for f in files if f.endswith(".yaml") and "CronJob" in files[f]]
    assert len(crons) == 2
    deadlines = []
    for name in crons:
        assert "&id" not in files[name] and "*id" not in files[name]
        obj = list(yaml.safe_load_all(files[name]))[-1]  # after the Service of 16 GPUs
        template = obj["spec"]["jobTemplate"]["metadata"]
        assert template["annotations"] == obj["metadata"]["annotations"]
        deadlines.append(obj["spec"]["startingDeadlineSeconds"])
    # min(300, window/4), at least 10 s
    assert sorted(deadlines) == [10, 300]


def test_hostile_values_are_literal_in_parsed_yaml(tmp_path, validate):
    canary = tmp_path / "PWNED"
    evil = hostile(canary) + DOLLARS
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
    # what the kubelet starts after expanding $(VAR) and $$: the user's strings verbatim
    command, env = kube_run(container)
    assert command[2] == RESUME_SH  # the fixed script needs no escaping
    assert command[-3:] == [evil, "--resume={checkpoint}", evil]
    assert env["GREENEPOCH_JOB"] == evil and env["EVIL"] == evil
    # run that command with sh: the argv arrives verbatim, then resumes
    run_env = {"PATH": "/usr/bin:/bin", **env}
    ckpt = Path(env["GREENEPOCH_CHECKPOINT_DIR"])
    assert str(tmp_path / "ck ") in str(ckpt) and "$$" not in str(ckpt)
    subprocess.run(command, env=run_env, check=True, timeout=30)
    assert (tmp_path / "argv.txt").read_text() == evil + "\n"
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / "step-7").write_text("x")
    subprocess.run(command, env=run_env, check=True, timeout=30)
    assert (tmp_path / "argv.txt").read_text().split("\n")[:-1] == [
        *evil.split("\n"), f"--resume={ckpt / 'step-7'}", *evil.split("\n")]
    assert not canary.exists()
    resume = files["resume.sh"]
    subprocess.run(["bash", "-n"], input=resume, text=True, check=True)


def _fake_kubectl(tmp_path: Path, broken: bool = False) -> tuple[Path, Path]:
    """A kubectl that logs its arguments and, like the real one, fails ``create -f FILE``
    with AlreadyExists when FILE was created before, and finds it with ``get -f``.
    ``broken``: every create and get fails (no API server)."""
    log, made = tmp_path / "kubectl.log", tmp_path / "created"
    fake = tmp_path / "kubectl"
    fake.write_text(f"""#!/bin/sh
echo "$*" >> '{log}'
if {"true" if broken else "false"}; then
  echo 'The connection to the server localhost:8080 was refused' >&2; exit 1
fi
case "$1" in
  create) if grep -qxF -- "$3" '{made}' 2>/dev/null; then
            echo 'Error from server (AlreadyExists): jobs.batch "x" already exists' >&2
            exit 1
          fi
          echo "$3" >> '{made}' ;;
  get) grep -qxF -- "$3" '{made}' ;;
esac
""")
    fake.chmod(0o755)
    return fake, log


def _resume(out: Path, fake: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(out / "resume.sh")], capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin", "KUBECTL": str(fake)},
                          cwd="/")


def test_resume_script_creates_kueue_jobs_at_their_window_start(tmp_path):
    """Kueue unsuspends a queued Job on admission, so such Jobs are not applied early:
    resume.sh creates them at their window start; the others it unsuspends.  Jobs whose
    window is over are skipped, and a rerun (a restart) does not stop at Jobs that
    exist already."""
    now = now_floor()
    h = pd.Timedelta("1h")
    # windows that started already (the script does not sleep): two over, two running
    plan = Plan.from_dict(plan_doc({"llm": [segment("GB", now - 3 * h, 60, 4),
                                  segment("DE", now - h / 2, 90, 16)],
                          "old": [segment("DE", now - 2.5 * h, 60, 8)],
                          "small": [segment("GB", now - h / 3, 120, 1)]}))
    files = export_k8s(plan, parse_config(CONFIG), "job", now=now - 4 * h)
    deferred = sorted(f for f in files if f.startswith("at-window-start/"))
    assert len(deferred) == 2
    jobs = {}
    for rel, text in files.items():
        obj = list(yaml.safe_load_all(text))[-1] if rel.endswith(".yaml") else {}
        if obj.get("kind") == "Job":
            jobs[(obj["metadata"]["annotations"]["greenepoch.io/job-name"],
                  obj["metadata"]["labels"]["greenepoch.io/segment"])] = (rel, obj)
    queued_file, queued = jobs[("llm", "1")]
    assert queued_file in deferred
    assert queued["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "llm"
    assert KUEUE_QUEUE_LABEL not in jobs[("small", "0")][1]["metadata"]["labels"]
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    fake, log = _fake_kubectl(tmp_path)
    patch_small = (f"patch job {jobs[('small', '0')][1]['metadata']['name']} -n default "
                   '--type=merge -p {"spec":{"suspend":false}}')
    first = _resume(tmp_path, fake)
    assert first.returncode == 0, first.stderr
    assert log.read_text().splitlines() == [f"create -f {queued_file}", patch_small]
    for key in [("llm", "0"), ("old", "0")]:  # window over: skipped, with a note
        assert f"skipping Job {jobs[key][1]['metadata']['name']} " in first.stderr
    assert "its window is over" in first.stderr
    # restarted: create meets AlreadyExists, get finds the Job, the rest still runs
    log.unlink()
    second = _resume(tmp_path, fake)
    assert second.returncode == 0, second.stderr
    assert log.read_text().splitlines() == [
        f"create -f {queued_file}", f"get -f {queued_file}", patch_small]
    assert f"{queued_file} already exists; left as is" in second.stderr


def test_resume_script_stops_when_a_create_really_fails(tmp_path):
    now = now_floor()
    plan = Plan.from_dict(plan_doc({"llm": [segment("DE", now - pd.Timedelta("10min"), 60, 8)]}))
    files = export_k8s(plan, parse_config(CONFIG), "job", now=now - pd.Timedelta("1h"))
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    fake, log = _fake_kubectl(tmp_path, broken=True)
    result = _resume(tmp_path, fake)
    assert result.returncode == 1
    assert "could not create at-window-start/" in result.stderr
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["create", "get"]


def test_cli_writes_validated_manifests_and_fails_cleanly(tmp_path, validate):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(_plan().to_dict()))
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[defaults]\ncommand = "python train.py --lr 1e-4"\nimage = "img:1"\n'
        '[zones.DE.kubernetes]\nqueue = "llm"\ncluster_queue = "cq"\n'
        'checkpoint_claim = "ckpt"\n[zones.GB.kubernetes]\ncheckpoint_claim = "ckpt"\n')
    out = tmp_path / "k8s"
    result = run_cli(["export", "k8s", str(plan), "--config", str(cfg), "--out", str(out),
                      "--validate", str(CRDS)])
    assert result.exit_code == 0, result.output
    assert "validated 4 object(s)" in result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "export.json" in names and "localqueue-default-llm.yaml" in names
    # a zone with no mapping: exit 2, nothing written
    cfg.write_text('[defaults]\ncommand = ["x"]\nimage = "img:1"\n'
                   '[zones.DE.kubernetes]\ncheckpoint_claim = "ckpt"\n')
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
