"""``export k8s`` of multi-node segments (issue 15): the Indexed Job, its headless
Service and the rendezvous each pod sees, torchrun's flags, pod layouts for any GPU
count, checkpoint storage per zone and the checkpoint copy before a segment that
follows one in another zone (run for real against two local directories)."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from export_fixtures import hostile, now_floor, plan_doc, run_cli, segment, toml
from greenepoch.planner.exports.common import ExportError, job_key
from greenepoch.planner.exports.config import parse_config
from greenepoch.planner.exports.k8s import (
    COPY_SH,
    RESUME_SH,
    export_k8s,
    manifests,
    pod_layout,
)
from greenepoch.planner.plan_doc import Plan
from hypothesis import given, settings
from hypothesis import strategies as st
from test_export_k8s import CRDS, kube_expand, kube_run, validate  # noqa: F401 (fixture)

H = pd.Timedelta("1h")

CONFIG = {
    "defaults": {"command": ["torchrun", "train.py", "--lr", "1e-4"],
                 "image": "registry.example/train:1", "checkpoint_dir": "/ckpt/{job}",
                 "checkpoint_lead": "5min"},
    "zones": {
        "DE": {"kubernetes": {"namespace": "training", "gpus_per_node": 8,
                              "checkpoint_claim": "ckpt-de", "master_port": 29611,
                              "checkpoint_url": "s3://ckpt-de/{job}"}},
        "GB": {"kubernetes": {"gpus_per_node": 8, "checkpoint_claim": "ckpt-gb",
                              "checkpoint_dir": "/mnt/gb/{job}"}},
    },
}


def _plan(jobs: dict[str, list[tuple[str, float, float, int]]]) -> Plan:
    """Jobs -> (zone, hours from now + 1 h, minutes, GPUs) segments."""
    t0 = now_floor() + H
    return Plan.from_dict(plan_doc({name: [segment(z, t0 + h * H, m, g) for z, h, m, g in segs]
                                    for name, segs in jobs.items()}))


def _objects(plan: Plan, config: dict, kind: str = "cronjob") -> list[dict]:
    return [o for group in manifests(plan, parse_config(config), kind).values() for o in group]


def _segment_objects(objs: list[dict], segment: int, job: str = "llm") -> tuple[dict, dict | None]:
    """The Job or CronJob of ``job``'s segment and its Service (None for one pod)."""
    mine = [o for o in objs if o["metadata"]["labels"].get("greenepoch.io/segment") == str(segment)
            and o["kind"] != "Service"
            and o["metadata"]["annotations"]["greenepoch.io/job-name"] == job]
    (obj,) = mine
    services = [o for o in objs if o["kind"] == "Service"
                and o["metadata"]["name"] == obj["metadata"]["name"]]
    return obj, (services[0] if services else None)


def _job_spec(obj: dict) -> dict:
    return obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]


def _job_name(obj: dict) -> str:
    """The name of the Job that runs: a CronJob's is its own plus ``-`` and the scheduled
    time in minutes since 1970 (Kubernetes' cronjob controller)."""
    if obj["kind"] == "Job":
        return obj["metadata"]["name"]
    start = pd.Timestamp(obj["metadata"]["annotations"]["greenepoch.io/window-start"])
    return f"{obj['metadata']['name']}-{int(start.timestamp()) // 60}"


@pytest.mark.parametrize("kind", ["cronjob", "job"])
def test_multinode_manifests_validate_strictly(validate, kind):  # noqa: F811
    plan = _plan({"llm": [("DE", 0, 120, 32), ("GB", 3, 60, 12), ("GB", 5, 60, 8)],
                  "small": [("GB", 0, 30, 1)]})
    checked = [validate(o) for o in _objects(plan, CONFIG, kind)]
    core = "CronJob" if kind == "cronjob" else "Job"
    # 4 segments and the transfer Job of the move DE -> GB
    assert checked.count(f"Kubernetes 1.30 batch/v1 {core}") == 5
    assert checked.count("Kubernetes 1.30 v1 Service") == 2  # 32 and 12 GPUs: several pods


@pytest.mark.parametrize("kind", ["cronjob", "job"])
def test_every_pod_gets_the_rendezvous(kind):
    plan = _plan({"llm": [("DE", 0, 120, 32)]})
    obj, service = _segment_objects(_objects(plan, CONFIG, kind), 0)
    spec = _job_spec(obj)
    pod = spec["template"]["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 4
    # the headless Service selects exactly this segment's pods and is their subdomain
    assert service is not None and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["metadata"]["namespace"] == obj["metadata"]["namespace"] == "training"
    assert pod["subdomain"] == service["metadata"]["name"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["greenepoch.io/segment"] == "0"
    job = _job_name(obj)
    hosts = [f"{job}-{i}" for i in range(4)]  # the Job controller's pod hostnames
    assert all(len(h) <= 63 for h in hosts)
    seen = []
    for i in range(4):
        command, env = kube_run(pod["containers"][0], job=job, index=i)
        # pod 0's DNS name: <hostname>.<subdomain> (in the pods' namespace)
        assert env["MASTER_ADDR"] == f"{hosts[0]}.{pod['subdomain']}"
        assert (env["MASTER_PORT"], env["NNODES"], env["WORLD_SIZE"]) == ("29611", "4", "32")
        assert env["GREENEPOCH_GPUS_PER_POD"] == "8"
        seen.append(int(env["NODE_RANK"]))
        assert command[5:11] == ["torchrun", "--nnodes=4", f"--node-rank={i}",
                                 f"--master-addr={hosts[0]}.{pod['subdomain']}",
                                 "--master-port=29611", "--nproc-per-node=8"]
        assert command[11:] == ["train.py", "--lr", "1e-4", "--resume", "{checkpoint}"]
        assert command[4] == str(len(CONFIG["defaults"]["command"]) + 5)  # words before resume
    assert seen == [0, 1, 2, 3]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 8}


def test_torchrun_flags_the_command_gives_are_kept():
    config = copy.deepcopy(CONFIG)
    config["defaults"]["command"] = ["/opt/bin/torchrun", "--nproc_per_node", "4",
                                     "--master-port=1234", "train.py"]
    plan = _plan({"llm": [("DE", 0, 60, 16), ("GB", 2, 60, 4)]})
    objs = _objects(plan, config)
    multi, _ = _segment_objects(objs, 0)
    command, env = kube_run(_job_spec(multi)["template"]["spec"]["containers"][0],
                            job="j", index=1)
    assert command[5:12] == ["/opt/bin/torchrun", "--nnodes=2", "--node-rank=1",
                             f"--master-addr={env['MASTER_ADDR']}", "--nproc_per_node", "4",
                             "--master-port=1234"]
    single, service = _segment_objects(objs, 1)
    assert service is None
    pod = _job_spec(single)["template"]["spec"]
    command, env = kube_run(pod["containers"][0])
    assert command[5:] == [*config["defaults"]["command"], "--resume", "{checkpoint}"]
    assert (env["NODE_RANK"], env["NNODES"], env["MASTER_ADDR"]) == ("0", "1", "127.0.0.1")
    assert "subdomain" not in pod and "completionMode" not in _job_spec(single)
    # torchrun's options end at the script: the training's own --nnodes is its business
    config["defaults"]["command"] = ["python", "-m", "torch.distributed.run", "train.py",
                                     "--nnodes=9"]
    command, _ = kube_run(_job_spec(_segment_objects(_objects(plan, config), 0)[0])[
        "template"]["spec"]["containers"][0], job="j", index=0)
    assert command[5:8] == ["python", "-m", "torch.distributed.run"]
    assert command[8] == "--nnodes=2" and command[13:15] == ["train.py", "--nnodes=9"]
    config["defaults"]["command"] = ["torchrun", "--standalone", "train.py"]
    with pytest.raises(ExportError, match=r"segment 0: .*--standalone.*2 separate trainings"):
        _objects(plan, config)


def test_pod_layout_divides_any_gpu_count():
    assert pod_layout(12, 8) == (2, 6)
    assert pod_layout(75, 8) == (15, 5)
    assert pod_layout(13, 8) == (13, 1)
    assert pod_layout(4, 8) == (1, 4) and pod_layout(4, None) == (1, 4)
    for per_node in range(1, 17):
        for gpus in range(1, 300):
            pods, per_pod = pod_layout(gpus, per_node)
            assert pods * per_pod == gpus and per_pod <= per_node
            assert pods >= -(-gpus // per_node)
            # whole nodes (the planner's gpus_step) are full pods, one per node
            if gpus % per_node == 0:
                assert (pods, per_pod) == (gpus // per_node, per_node)


def test_uneven_and_elastic_sizes_export_and_validate(validate):  # noqa: F811
    # a rigid 12 GPUs on 8-GPU nodes, then elastic sizes in multiples of gpus_per_node
    sizes = [12, 8, 24, 64, 16]
    plan = _plan({"llm": [("DE", 2 * k, 60, g) for k, g in enumerate(sizes)]})
    objs = _objects(plan, CONFIG, "job")
    for obj in objs:
        validate(obj)
    for k, gpus in enumerate(sizes):
        spec = _job_spec(_segment_objects(objs, k)[0])
        pods = spec.get("completions", 1)
        limit = spec["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
        assert pods * limit == gpus
        assert (pods, limit) == ((2, 6) if gpus == 12 else (gpus // 8, 8))


def test_a_zone_without_claim_is_an_error_unless_ephemeral_is_accepted(tmp_path, validate):  # noqa: F811
    config = copy.deepcopy(CONFIG)
    del config["zones"]["GB"]["kubernetes"]["checkpoint_claim"]
    plan = _plan({"llm": [("DE", 0, 60, 16), ("GB", 2, 60, 16)]})
    with pytest.raises(ExportError, match=r"zone 'GB' has no checkpoint_claim.*segment 1.*"
                                          r"ephemeral_checkpoints = true"):
        manifests(plan, parse_config(config))
    plan_file, cfg_toml = tmp_path / "plan.json", tmp_path / "c.toml"
    plan_file.write_text(json.dumps(plan.to_dict()))
    cfg_toml.write_text(toml(config))
    result = run_cli(["export", "k8s", str(plan_file), "--config", str(cfg_toml), "--dry-run",
                      "--validate", str(CRDS)])
    assert result.exit_code == 2 and "zone 'GB' has no checkpoint_claim" in result.stderr
    assert "Traceback" not in result.output
    config["zones"]["GB"]["kubernetes"]["ephemeral_checkpoints"] = True
    objs = _objects(plan, config)
    for obj in objs:
        validate(obj)
    pod = _job_spec(_segment_objects(objs, 1)[0])["template"]["spec"]
    assert "volumes" not in pod
    # no shared volume: every pod copies into its own storage
    (init,) = pod["initContainers"]
    assert init["command"][4] == "all"
    cfg_toml.write_text(toml(config))
    result = run_cli(["export", "k8s", str(plan_file), "--config", str(cfg_toml), "--dry-run",
                      "--validate", str(CRDS)])
    assert result.exit_code == 0, result.output


def test_a_move_between_zones_copies_the_checkpoint_first():
    config = copy.deepcopy(CONFIG)
    config["defaults"]["checkpoint_copy"] = ["rclone", "copy", "{src}", "{dst}", "--tag={job}"]
    plan = _plan({"llm": [("DE", 0, 60, 16), ("DE", 2, 60, 16), ("GB", 4, 60, 16),
                          ("DE", 6, 60, 8)]})
    objs = _objects(plan, config)
    key = job_key("llm")
    pods = [_job_spec(_segment_objects(objs, k)[0])["template"]["spec"] for k in range(4)]
    assert "initContainers" not in pods[0] and "initContainers" not in pods[1]  # same zone
    (init,) = pods[2]["initContainers"]
    assert init["image"] == config["defaults"]["image"]
    command, env = kube_run(init, job="j", index=0)
    assert command[:5] == ["/bin/sh", "-c", COPY_SH, "greenepoch-copy", "first"]
    assert command[5:] == ["rclone", "copy", f"s3://ckpt-de/{key}", f"/mnt/gb/{key}",
                           f"--tag={key}"]
    assert env["GREENEPOCH_CHECKPOINT_DIR"] == f"/mnt/gb/{key}"
    assert init["volumeMounts"] == pods[2]["containers"][0]["volumeMounts"] == [
        {"name": "checkpoints", "mountPath": f"/mnt/gb/{key}"}]
    assert "resources" not in init  # the copy holds no GPU
    # back to DE: GB has no checkpoint_url, so its checkpoint_dir is the source
    command, _ = kube_run(pods[3]["initContainers"][0])
    assert command[5:] == ["rclone", "copy", f"/mnt/gb/{key}", f"/ckpt/{key}", f"--tag={key}"]


def _write_pod_scripts(tmp_path: Path, config: dict, name: str) -> tuple[dict, Plan]:
    plan = _plan({name: [("DE", 0, 60, 16), ("GB", 2, 60, 16)]})
    objs = _objects(plan, config)
    return _job_spec(_segment_objects(objs, 1, name)[0])["template"]["spec"], plan


def test_copy_runs_against_two_local_directories_before_training(tmp_path):
    """The two zones' storage are two local folders: pod 1's initContainer waits until
    pod 0's has copied, then the training of either pod resumes from the copy."""
    canary = tmp_path / "PWNED"
    name = hostile(canary)
    de, gb = tmp_path / "de $(x) store", tmp_path / "gb `y` store"
    config = copy.deepcopy(CONFIG)
    config["zones"]["DE"]["kubernetes"]["checkpoint_url"] = f"{de}/{{job}}"
    config["zones"]["GB"]["kubernetes"]["checkpoint_dir"] = f"{gb}/{{job}}"
    config["defaults"]["checkpoint_copy"] = ["cp", "-R", "{src}/.", "{dst}/"]
    config["defaults"]["command"] = ["/bin/sh", "-c", 'printf "%s\\n" "$@" > "$0"',
                                     str(tmp_path / "argv.txt")]
    pod, _ = _write_pod_scripts(tmp_path, config, name)
    key = job_key(name)
    (de / key).mkdir(parents=True)
    (de / key / "step-100").write_text("weights")
    run_env = {"PATH": "/usr/bin:/bin"}
    waiting = None
    for index in (1, 0):  # pod 1 first: it must wait for pod 0's copy
        command, env = kube_run(pod["initContainers"][0], job="j", index=index)
        assert env["GREENEPOCH_JOB"] == name
        proc = subprocess.Popen(command, env={**run_env, **env}, stderr=subprocess.PIPE,
                                text=True)
        if index == 1:
            waiting = proc
            time.sleep(1)
            assert proc.poll() is None  # still waiting: nothing copied yet
            assert not (gb / key / "step-100").exists()
        else:
            assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    assert waiting is not None and waiting.wait(timeout=30) == 0
    assert (gb / key / "step-100").read_text() == "weights"
    for index in (0, 1):
        command, env = kube_run(pod["containers"][0], job="j", index=index)
        subprocess.run(command, env={**run_env, **env}, check=True, timeout=30)
        assert (tmp_path / "argv.txt").read_text().splitlines() == [
            "--resume", str(gb / key / "step-100")]
    assert not canary.exists()


def test_a_failing_copy_fails_the_pod(tmp_path):
    config = copy.deepcopy(CONFIG)
    config["zones"]["DE"]["kubernetes"]["checkpoint_url"] = str(tmp_path / "missing/{job}")
    config["zones"]["GB"]["kubernetes"]["checkpoint_dir"] = str(tmp_path / "gb/{job}")
    config["defaults"]["checkpoint_copy"] = ["cp", "-R", "{src}/.", "{dst}/"]
    pod, _ = _write_pod_scripts(tmp_path, config, "llm")
    command, env = kube_run(pod["initContainers"][0], job="j", index=0)
    result = subprocess.run(command, env={"PATH": "/usr/bin:/bin", **env}, text=True,
                            capture_output=True, timeout=30)
    assert result.returncode == 1 and "the checkpoint copy failed" in result.stderr
    assert not list((tmp_path / "gb").rglob(".greenepoch-copied-*"))  # pod 1 keeps waiting


def test_export_index_numbers_segments_from_zero():
    plan = _plan({"llm": [("DE", 0, 60, 16), ("GB", 2, 60, 12)], "small": [("GB", 1, 30, 1)]})
    files = export_k8s(plan, parse_config(CONFIG))
    rows = json.loads(files["export.json"])["segments"]
    assert [(r["job"], r["segment"]) for r in rows] == [("llm", 0), ("llm", 1), ("small", 0)]
    assert [(r["pods"], r["gpus_per_pod"]) for r in rows] == [(2, 8), (2, 6), (1, 1)]
    assert rows[0]["checkpoint_copy"] is None and rows[2]["service"] is None
    assert rows[1]["checkpoint_copy"][:2] == ["rsync", "-a"]
    for row in rows:
        text = files[row["file"]]
        assert f"greenepoch.io/segment: '{row['segment']}'" in text
        assert f"value: '{row['segment']}'" in text  # GREENEPOCH_SEGMENT
        assert row["name"] in text


def test_a_zone_directory_without_job_is_refused_for_two_jobs():
    config = copy.deepcopy(CONFIG)
    config["zones"]["GB"]["kubernetes"]["checkpoint_dir"] = "/mnt/gb/shared"
    plan = _plan({"a": [("GB", 0, 60, 8)], "b": [("GB", 2, 60, 8)]})
    with pytest.raises(ExportError, match="jobs 'a' and 'b' would share the checkpoint"):
        manifests(plan, parse_config(config))


def test_long_job_names_keep_pod_hostnames_valid(validate):  # noqa: F811
    plan = _plan({"x" * 80: [("DE", 0, 60, 8 * 12)]})
    for kind in ("cronjob", "job"):
        (obj, service) = _segment_objects(_objects(plan, CONFIG, kind), 0, "x" * 80)
        validate(obj)
        assert len(f"{_job_name(obj)}-11") <= 63
        assert service is not None and validate(service)


def test_validate_rejects_bad_names_and_selectors(validate):  # noqa: F811
    plan = _plan({"llm": [("DE", 0, 60, 16)]})
    obj, service = _segment_objects(_objects(plan, CONFIG, "job"), 0)
    long_job = copy.deepcopy(obj)
    long_job["metadata"]["name"] = "a" * 62
    with pytest.raises(ExportError, match=r"hostnames.*longer than 63"):
        validate(long_job)
    bad_sub = copy.deepcopy(obj)
    bad_sub["spec"]["template"]["spec"]["subdomain"] = "Bad_Sub"
    with pytest.raises(ExportError, match="subdomain"):
        validate(bad_sub)
    assert service is not None
    bad_selector = copy.deepcopy(service)
    bad_selector["spec"]["selector"]["greenepoch.io/segment"] = "-1-"
    with pytest.raises(ExportError, match="invalid label at spec/selector"):
        validate(bad_selector)
    bad_name = copy.deepcopy(service)
    bad_name["metadata"]["name"] = "1abc"
    with pytest.raises(ExportError, match="DNS-1035"):
        validate(bad_name)
    extra = copy.deepcopy(service)
    extra["spec"]["headless"] = True
    with pytest.raises(ExportError, match="headless"):
        validate(extra)


def test_validate_checks_a_jobset_against_its_crd(validate):  # noqa: F811
    """The validator also covers JobSet (the export uses an Indexed Job, but a user's
    JobSet manifests are checked against the shipped CRD the same strict way)."""
    plan = _plan({"llm": [("DE", 0, 60, 16)]})
    obj, _ = _segment_objects(_objects(plan, CONFIG, "job"), 0)
    jobset = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet",
              "metadata": {"name": "train", "namespace": "training"},
              "spec": {"replicatedJobs": [{"name": "workers", "replicas": 1,
                                           "template": {"spec": obj["spec"]}}]}}
    assert validate(jobset) == "CRD jobset.x-k8s.io/v1alpha2 JobSet"
    jobset["spec"]["replicatedJobs"][0]["replica"] = 2
    with pytest.raises(ExportError, match="JobSet CRD"):
        validate(jobset)


def test_copy_script_passes_hostile_argv_verbatim(tmp_path):
    canary = tmp_path / "PWNED"
    evil = hostile(canary) + " $(HOME) $$x"
    out = tmp_path / "argv.txt"
    dst = tmp_path / "dst"
    env = {"PATH": "/usr/bin:/bin", "GREENEPOCH_CHECKPOINT_DIR": str(dst),
           "GREENEPOCH_PLAN_ID": "p", "GREENEPOCH_SEGMENT": "1", "NODE_RANK": "0"}
    argv = ["/bin/sh", "-c", 'printf "%s\\n" "$@" > "$0"', str(out), evil]
    subprocess.run(["/bin/sh", "-c", COPY_SH, "greenepoch-copy", "first", *argv], env=env,
                   check=True, timeout=30)
    assert out.read_text() == evil + "\n" and not canary.exists()
    assert (dst / ".greenepoch-copied-p-1").exists()
    assert RESUME_SH not in COPY_SH and kube_expand(COPY_SH, env) == COPY_SH


def test_grace_is_the_plans_checkpoint_save_time_unless_the_config_sets_a_lead():
    t0 = now_floor() + H
    doc = plan_doc({"llm": [segment("DE", t0, 120, 16)]})
    doc["jobs"][0]["checkpoint_save_hours"] = 0.25
    plan = Plan.from_dict(doc)
    config = copy.deepcopy(CONFIG)
    del config["defaults"]["checkpoint_lead"]
    spec = _job_spec(_segment_objects(_objects(plan, config), 0)[0])
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 900
    assert spec["activeDeadlineSeconds"] == 120 * 60 - 900
    spec = _job_spec(_segment_objects(_objects(plan, CONFIG), 0)[0])  # "5min" wins
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 300
    del doc["jobs"][0]["checkpoint_save_hours"]  # an older plan: 10 min
    spec = _job_spec(_segment_objects(_objects(Plan.from_dict(doc), config), 0)[0])
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 600


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["DE", "GB"]), st.integers(1, 200)),
                min_size=1, max_size=5),
       st.integers(1, 16), st.integers(1, 16))
def test_every_plan_exports_with_pods_that_add_up(segs, per_de, per_gb):
    """Any GPU counts on any node sizes export (nothing refused); each segment's pods
    hold exactly its GPUs, at most a node each, and a move copies exactly when the
    zone changes."""
    config = copy.deepcopy(CONFIG)
    config["zones"]["DE"]["kubernetes"]["gpus_per_node"] = per_de
    config["zones"]["GB"]["kubernetes"]["gpus_per_node"] = per_gb
    plan = _plan({"llm": [(z, 2 * k, 60, g) for k, (z, g) in enumerate(segs)]})
    rows = json.loads(export_k8s(plan, parse_config(config))["export.json"])["segments"]
    assert [r["segment"] for r in rows] == list(range(len(segs)))
    for k, (row, (zone, gpus)) in enumerate(zip(rows, segs, strict=True)):
        assert row["pods"] * row["gpus_per_pod"] == gpus
        assert row["gpus_per_pod"] <= (per_de if zone == "DE" else per_gb)
        assert (row["service"] is None) == (row["pods"] == 1)
        moved = k > 0 and segs[k - 1][0] != zone
        assert (row["checkpoint_copy"] is not None) == moved


def _transfer(objs: list[dict], segment: int) -> dict:
    (obj,) = [o for o in objs if o["metadata"]["labels"].get(
        "greenepoch.io/transfer-to-segment") == str(segment)]
    return obj


@pytest.mark.parametrize("kind", ["cronjob", "job"])
def test_the_transfer_job_copies_in_the_window_the_plan_reserved(kind):
    config = copy.deepcopy(CONFIG)
    config["zones"]["GB"]["kubernetes"]["queue"] = "llm"  # the transfer is not queued
    plan = _plan({"llm": [("DE", 0, 60, 16), ("GB", 3, 60, 16), ("GB", 5, 60, 16)]})
    objs = _objects(plan, config, kind)
    transfer = _transfer(objs, 1)
    assert [o for o in objs if "greenepoch.io/transfer-to-segment" in o["metadata"]["labels"]
            ] == [transfer]  # GB -> GB moves nothing
    seg0, _ = _segment_objects(objs, 0)
    seg1, _ = _segment_objects(objs, 1)
    ann = transfer["metadata"]["annotations"]
    assert ann["greenepoch.io/window-start"] == seg0["metadata"]["annotations"][
        "greenepoch.io/window-end"]
    assert ann["greenepoch.io/window-end"] == seg1["metadata"]["annotations"][
        "greenepoch.io/window-start"]
    assert "-j0-t1-" in transfer["metadata"]["name"]
    spec = _job_spec(transfer)
    assert spec["suspend"] is (kind == "job")
    assert spec["activeDeadlineSeconds"] == 2 * 3600 - 60  # stopped before the segment
    assert "kueue.x-k8s.io/queue-name" not in spec["template"]["metadata"]["labels"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert "resources" not in container and "initContainers" not in pod
    assert pod["volumes"] == [{"name": "checkpoints",
                               "persistentVolumeClaim": {"claimName": "ckpt-gb"}}]
    command, env = kube_run(container)
    seg_init = _job_spec(seg1)["template"]["spec"]["initContainers"][0]
    assert command == kube_run(seg_init, job="j", index=0)[0]  # the same copy, same args
    assert env["NODE_RANK"] == "0" and env["GREENEPOCH_SEGMENT"] == "1"
    if kind == "cronjob":
        start = pd.Timestamp(ann["greenepoch.io/window-start"])
        assert transfer["spec"]["schedule"] == f"{start.minute} {start.hour} {start.day} " \
                                               f"{start.month} *"
    rows = json.loads(export_k8s(plan, parse_config(config), kind)["export.json"])["segments"]
    assert rows[1]["transfer"]["name"] == transfer["metadata"]["name"]
    assert rows[0]["transfer"] is None and rows[2]["transfer"] is None


def test_resume_script_starts_the_transfer_at_the_previous_segments_end():
    plan = _plan({"llm": [("DE", 0, 60, 16), ("GB", 3, 60, 16)]})
    files = export_k8s(plan, parse_config(CONFIG), "job")
    resume = files["resume.sh"].splitlines()
    patched = [line.split("patch job ")[1].split()[0] for line in resume if "patch job" in line]
    assert [n.split("-")[2:4] for n in patched] == [["j0", "s0"], ["j0", "t1"], ["j0", "s1"]]


def test_no_transfer_job_without_a_claim_or_a_gap():
    config = copy.deepcopy(CONFIG)
    del config["zones"]["GB"]["kubernetes"]["checkpoint_claim"]
    config["zones"]["GB"]["kubernetes"]["ephemeral_checkpoints"] = True
    objs = _objects(_plan({"llm": [("DE", 0, 60, 16), ("GB", 3, 60, 16)]}), config)
    assert not [o for o in objs if "-t1-" in o["metadata"]["name"]]  # each pod copies
    back_to_back = _plan({"llm": [("DE", 0, 60, 16), ("GB", 1, 60, 16)]})
    objs = _objects(back_to_back, CONFIG)
    assert not [o for o in objs if "-t1-" in o["metadata"]["name"]]
    assert _job_spec(_segment_objects(objs, 1)[0])["template"]["spec"]["initContainers"]


def test_after_the_transfer_the_pods_do_not_copy_again(tmp_path):
    de, gb = tmp_path / "de", tmp_path / "gb"
    config = copy.deepcopy(CONFIG)
    config["zones"]["DE"]["kubernetes"]["checkpoint_url"] = f"{de}/{{job}}"
    config["zones"]["GB"]["kubernetes"]["checkpoint_dir"] = f"{gb}/{{job}}"
    config["defaults"]["checkpoint_copy"] = ["cp", "-R", "{src}/.", "{dst}/"]
    plan = _plan({"llm": [("DE", 0, 60, 16), ("GB", 3, 60, 16)]})
    objs = _objects(plan, config)
    key = job_key("llm")
    (de / key).mkdir(parents=True)
    (de / key / "step-1").write_text("w")
    base = {"PATH": "/usr/bin:/bin"}
    command, env = kube_run(_job_spec(_transfer(objs, 1))["template"]["spec"]["containers"][0])
    subprocess.run(command, env={**base, **env}, check=True, timeout=30)
    assert (gb / key / "step-1").read_text() == "w"
    (de / key / "step-1").unlink()
    (de / key).rmdir()  # the source is gone: a second copy would fail
    init = _job_spec(_segment_objects(objs, 1)[0])["template"]["spec"]["initContainers"][0]
    for index in (0, 1):
        command, env = kube_run(init, job="j", index=index)
        result = subprocess.run(command, env={**base, **env}, capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0 and "copied already" in result.stderr
