"""Multi-node segments and checkpoint moves on a real local Slurm (two slurmd nodes,
n1 and n2, with 2 fake GPUs each: tests/support/slurm_cluster.py).

What runs for real: ``srun`` starting one task per node (torchrun) or per GPU (srun)
on both nodes, the rendezvous environment each task sees, the checkpoint signal
(``--signal`` without ``B:``) reaching every task, a real two-node ``torchrun``
rendezvous with one gloo all_reduce (when torch is installed), and a checkpoint move
between two zones' checkpoint directories ordered by Slurm dependencies.

Not exercised: separate hosts (both nodes are this machine, so the first host's
name, ``n1``, does not resolve here: the torch test gives torchrun
``--master-addr=127.0.0.1`` itself; the fake torchrun sees the export's
``--master-addr=n1``), and a copy between two clusters (both zones are one cluster).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from export_fixtures import hostile, now_floor, plan_doc, run_cli, segment, toml
from greenepoch.planner.exports.common import job_key
from slurm_cluster import PARTITION, LocalSlurm, slurm_cluster  # noqa: F401 (fixture)

pytestmark = pytest.mark.slurm

#: Both scripts' note(): one JSON line per event into <out>/<kind>-<me>.jsonl; and
#: the checkpoint signal's handler, which notes it and exits.
NOTE = r'''
def note(event, **kw):
    with open(out / f"{kind}-{me}.jsonl", "a") as fh:
        fh.write(json.dumps({"event": event, **kw}) + "\n")
def on_signal(*_):
    note("signal")
    sys.exit(0)
signal.signal(signal.SIGUSR1, on_signal)
'''

#: One task: notes what it sees, then waits for the checkpoint signal when asked to.
TASK = r'''
import json, os, signal, sys, time
from pathlib import Path
out = Path(os.environ["GE_TEST_RESULTS"])
kind, me = "task", f"{os.environ['SLURM_NODEID']}-{os.environ['SLURM_PROCID']}"
''' + NOTE + r'''
keys = ("NODE_RANK", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
        "NNODES", "SLURMD_NODENAME", "CUDA_VISIBLE_DEVICES", "GREENEPOCH_SEGMENT")
note("start", argv=sys.argv[1:], **{k.lower(): os.environ.get(k) for k in keys})
if os.environ.get("GE_TEST_WAIT") == "1":
    for _ in range(600):
        time.sleep(0.5)
'''

#: Stands in for torchrun: notes its argv, its environment and whether the
#: checkpoint signal is ignored in it (torchrun's agent must not die of it).
FAKE_TORCHRUN = r'''
import json, os, signal, sys
from pathlib import Path
out = Path(os.environ["GE_TEST_RESULTS"])
with open(out / f"agent-{os.environ['SLURM_NODEID']}.json", "w") as fh:
    json.dump({"argv": sys.argv[1:], "node_rank": os.environ.get("NODE_RANK"),
               "master_addr": os.environ.get("MASTER_ADDR"),
               "world_size": os.environ.get("WORLD_SIZE"),
               "usr1_ignored": signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN}, fh)
'''

#: A torchrun worker: one gloo all_reduce of rank + 1, then waits for the signal.
TORCH_WORKER = r'''
import json, os, signal, sys, time
from pathlib import Path
import torch
import torch.distributed as dist
out = Path(os.environ["GE_TEST_RESULTS"])
rank = int(os.environ["RANK"])
kind, me = "worker", rank
''' + NOTE + r'''
dist.init_process_group("gloo")
t = torch.tensor([rank + 1.0])
dist.all_reduce(t)
note("reduced", value=t.item(), world=dist.get_world_size(), node=os.environ["GROUP_RANK"],
     local=os.environ["LOCAL_RANK"])
dist.destroy_process_group()
for _ in range(600):
    time.sleep(0.5)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, what: str, out: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    logs = "\n".join(p.read_text(errors="replace") for p in (out / "logs").glob("*"))
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; logs:\n{logs}")


def _notes(results: Path, pattern: str) -> dict[str, list[dict]]:
    return {p.name: [json.loads(line) for line in p.read_text().splitlines() if line]
            for p in sorted(results.glob(pattern))}


def _export(tmp_path: Path, doc: dict, config: dict, cluster: LocalSlurm,
            monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[dict[str, str]]]:
    """Export and submit; the export directory and the rows of job_ids.tsv."""
    monkeypatch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])
    monkeypatch.setenv("PATH", cluster.env["PATH"])
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(doc))
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(config))
    out = tmp_path / "export"
    result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--out", str(out),
                      "--submit"])
    assert result.exit_code == 0, result.output
    lines = (out / "job_ids.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return out, [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]


def _config(command: list[str], results: Path, launcher: str, **zone: object) -> dict:
    return {"defaults": {"command": command, "checkpoint_dir": str(results / "ckpt"),
                         "checkpoint_lead": "60s", "env": {"GE_TEST_RESULTS": str(results)}},
            "zones": {"Z1": {"slurm": {"partition": PARTITION, "gpus_per_node": 2,
                                       "launcher": launcher, **zone}}}}


def _results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    results.mkdir()
    return results


def test_srun_launcher_starts_one_task_per_gpu_on_both_nodes(slurm_cluster, tmp_path,  # noqa: F811
                                                             monkeypatch):
    """A 4-GPU segment on 2 nodes of 2 GPUs: 4 tasks, 2 per node, ranks 0..3, one
    master (the allocation's first host), the argv verbatim."""
    canary = Path("/tmp") / f"greenepoch-pwned-{uuid.uuid4().hex}"
    evil = hostile(canary)
    results = _results(tmp_path)
    task = tmp_path / "task.py"
    task.write_text(TASK)
    port = _free_port()
    config = _config([sys.executable, str(task), "--name", evil], results, "srun",
                     master_port=port)
    doc = plan_doc({"multi": [segment("Z1", now_floor() + pd.Timedelta("3s"), 1, 4)]})
    out, rows = _export(tmp_path, doc, config, slurm_cluster, monkeypatch)
    job_id = rows[0]["slurm_job_id"]
    try:
        _wait(lambda: len(_notes(results, "task-*.jsonl")) == 4, 60, "4 tasks", out)
        assert slurm_cluster.wait_state(job_id, {"COMPLETED"}, 30) == "COMPLETED"
    finally:
        slurm_cluster.run("scancel", job_id, check=False)
    starts = [n[0] for n in _notes(results, "task-*.jsonl").values()]
    assert sorted(s["rank"] for s in starts) == ["0", "1", "2", "3"]
    assert sorted((s["node_rank"], s["slurmd_nodename"], s["local_rank"]) for s in starts) == [
        ("0", "n1", "0"), ("0", "n1", "1"), ("1", "n2", "0"), ("1", "n2", "1")]
    assert {(s["master_addr"], s["master_port"], s["world_size"], s["nnodes"])
            for s in starts} == {("n1", str(port), "4", "2")}
    assert {s["cuda_visible_devices"] for s in starts} == {"0,1"}
    assert all(s["argv"] == ["--name", evil] for s in starts)
    assert not canary.exists()


def test_torchrun_launcher_gets_the_rendezvous_on_each_node(slurm_cluster, tmp_path,  # noqa: F811
                                                            monkeypatch):
    """One torchrun per node, given --nnodes, its own --node-rank, the master and
    --nproc-per-node (the command lacks them), with the checkpoint signal ignored
    (its workers set their handler); options the command has are not added again."""
    results = _results(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "torchrun"
    fake.write_text(f"#!{sys.executable}\n{FAKE_TORCHRUN}")
    fake.chmod(0o755)
    port = _free_port()
    command = [str(fake), "--master_port", str(port), "train.py", "--nnodes=9", "x y"]
    config = _config(command, results, "torchrun")
    doc = plan_doc({"multi": [segment("Z1", now_floor() + pd.Timedelta("3s"), 1, 4)]})
    out, rows = _export(tmp_path, doc, config, slurm_cluster, monkeypatch)
    job_id = rows[0]["slurm_job_id"]
    try:
        _wait(lambda: len(list(results.glob("agent-*.json"))) == 2, 60, "2 agents", out)
        assert slurm_cluster.wait_state(job_id, {"COMPLETED"}, 30) == "COMPLETED"
    finally:
        slurm_cluster.run("scancel", job_id, check=False)
    agents = [json.loads(p.read_text()) for p in sorted(results.glob("agent-*.json"))]
    for rank, agent in enumerate(agents):
        assert agent["argv"] == ["--nnodes=2", f"--node-rank={rank}", "--master-addr=n1",
                                 "--nproc-per-node=2", "--master_port", str(port),
                                 "train.py", "--nnodes=9", "x y"]
        assert (agent["node_rank"], agent["master_addr"], agent["world_size"]) == (
            str(rank), "n1", "4")
        assert agent["usr1_ignored"] is True


def test_checkpoint_signal_reaches_every_task(slurm_cluster, tmp_path,  # noqa: F811
                                              monkeypatch):
    """``--signal=USR1@60`` on a 1-minute, 2-node segment (so at Slurm's first check):
    all 4 tasks on both nodes get it and the job completes."""
    results = _results(tmp_path)
    task = tmp_path / "task.py"
    task.write_text(TASK)
    config = _config([sys.executable, str(task)], results, "srun")
    config["defaults"]["env"]["GE_TEST_WAIT"] = "1"
    doc = plan_doc({"sig": [segment("Z1", now_floor() + pd.Timedelta("3s"), 1, 4)]})
    out, rows = _export(tmp_path, doc, config, slurm_cluster, monkeypatch)
    job_id = rows[0]["slurm_job_id"]
    assert "#SBATCH --signal=USR1@60\n" in (out / rows[0]["script"]).read_text()

    def signalled() -> bool:
        notes = _notes(results, "task-*.jsonl")
        return len(notes) == 4 and all(n[-1]["event"] == "signal" for n in notes.values())

    try:
        _wait(signalled, 100, "the signal in all 4 tasks", out)
        assert slurm_cluster.wait_state(job_id, {"COMPLETED"}, 30) == "COMPLETED"
    finally:
        slurm_cluster.run("scancel", job_id, check=False)
    nodes = {n[0]["slurmd_nodename"] for n in _notes(results, "task-*.jsonl").values()}
    assert nodes == {"n1", "n2"}


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_real_torchrun_rendezvous_over_two_nodes(slurm_cluster, tmp_path,  # noqa: F811
                                                 monkeypatch):
    """Real torchrun on both nodes (static rendezvous from the export's --nnodes,
    --node-rank, --master-port, --nproc-per-node): 4 gloo workers all_reduce, then the
    checkpoint signal sent to the job's steps reaches every worker through the agent,
    which ignores it, and the job completes."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torch is installed without its torchrun script")
    results = _results(tmp_path)
    worker = tmp_path / "worker.py"
    worker.write_text(TORCH_WORKER)
    # n1 does not resolve on this machine (both nodes are localhost): say where it is
    config = _config([torchrun, "--master-addr=127.0.0.1", str(worker)], results,
                     "torchrun", master_port=_free_port())
    config["defaults"]["env"]["OMP_NUM_THREADS"] = "1"
    doc = plan_doc({"torch": [segment("Z1", now_floor() + pd.Timedelta("3s"), 4, 4)]})
    out, rows = _export(tmp_path, doc, config, slurm_cluster, monkeypatch)
    job_id = rows[0]["slurm_job_id"]
    try:
        _wait(lambda: len(_notes(results, "worker-*.jsonl")) == 4, 150, "4 reduced workers",
              out)
        slurm_cluster.run("scancel", "--signal=USR1", job_id)  # all steps, as --signal does
        _wait(lambda: all(n[-1]["event"] == "signal"
                          for n in _notes(results, "worker-*.jsonl").values()),
              30, "the signal in every worker", out)
        assert slurm_cluster.wait_state(job_id, {"COMPLETED"}, 60) == "COMPLETED"
    finally:
        slurm_cluster.run("scancel", job_id, check=False)
    reduced = [n[0] for n in _notes(results, "worker-*.jsonl").values()]
    assert {(r["value"], r["world"]) for r in reduced} == {(10.0, 4)}  # 1 + 2 + 3 + 4
    assert sorted((r["node"], r["local"]) for r in reduced) == [
        ("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]


#: Segment 0 writes a checkpoint; segment 1 notes what its checkpoint dir holds.
MIGRATING = r'''
import json, os, sys
from pathlib import Path
ckpt = Path(os.environ["GREENEPOCH_CHECKPOINT_DIR"])
out = Path(os.environ["GE_TEST_RESULTS"])
seg = os.environ["GREENEPOCH_SEGMENT"]
if seg == "0":
    (ckpt / "step-100").write_text("weights of segment 0")
seen = {p.name: p.read_text() for p in ckpt.iterdir()}
with open(out / f"segment-{seg}.json", "w") as fh:
    json.dump({"ckpt": str(ckpt), "seen": seen, "argv": sys.argv[1:],
               "zone": os.environ["GREENEPOCH_ZONE"]}, fh)
'''


def test_a_migration_copies_the_checkpoint_before_the_next_segment(slurm_cluster, tmp_path,  # noqa: F811
                                                                   monkeypatch):
    """Zones Z1 and Z2 (one cluster) keep checkpoints in two directories (hostile
    names): the transfer job copies segment 0's checkpoint into Z2's directory after
    segment 0 ended and before segment 1 starts, which resumes from the copy."""
    canary = Path("/tmp") / f"greenepoch-pwned-{uuid.uuid4().hex}"
    odd = f"d $(touch {canary}) `touch {canary}` 'q' \"dq\" ;x"
    results = _results(tmp_path)
    train = tmp_path / "train.py"
    train.write_text(MIGRATING)
    zone = {"partition": PARTITION, "gpus_per_node": 2, "launcher": "srun"}
    config = {"defaults": {"command": [sys.executable, str(train)],
                           "checkpoint_copy": ["cp", "-R", "{src}/.", "{dst}"],
                           "env": {"GE_TEST_RESULTS": str(results)}},
              "zones": {"Z1": {"slurm": {**zone, "checkpoint_dir": f"{tmp_path}/A {odd}/{{job}}"}},
                        "Z2": {"slurm": {**zone, "checkpoint_dir": f"{tmp_path}/B {odd}/{{job}}"}}}}
    t0 = now_floor() + pd.Timedelta("4s")
    doc = plan_doc({"mig": [segment("Z1", t0, 0.5, 2),
                            segment("Z2", t0 + pd.Timedelta("45s"), 0.5, 2)]})
    out, rows = _export(tmp_path, doc, config, slurm_cluster, monkeypatch)
    assert [(r["kind"], r["segment"]) for r in rows] == [
        ("segment", "0"), ("transfer", "1"), ("segment", "1")]
    ids = [r["slurm_job_id"] for r in rows]
    try:
        _wait(lambda: (results / "segment-1.json").exists(), 120, "segment 1", out)
        for job_id in ids:
            assert slurm_cluster.wait_state(job_id, {"COMPLETED"}, 30) == "COMPLETED"
        jobs = [slurm_cluster.job(j) for j in ids]
    finally:
        slurm_cluster.run("scancel", *ids, check=False)
    first, second = (json.loads((results / f"segment-{k}.json").read_text()) for k in (0, 1))
    key = job_key("mig")
    assert first["ckpt"] == f"{tmp_path}/A {odd}/{key}"
    assert second["ckpt"] == f"{tmp_path}/B {odd}/{key}"
    assert second["seen"] == {"step-100": "weights of segment 0"}
    assert second["argv"] == ["--resume", f"{tmp_path}/B {odd}/{key}/step-100"]
    start = [pd.Timestamp(j["StartTime"]) for j in jobs]
    end = [pd.Timestamp(j["EndTime"]) for j in jobs]
    assert end[0] <= start[1] and end[1] <= start[2], (start, end)  # segment, move, segment
    assert start[1] >= pd.Timestamp(doc["jobs"][0]["segments"][0]["end"]).tz_convert(None)
    assert not canary.exists()
    status = run_cli(["slurm", "status", str(tmp_path / "p.json"), "--config",
                      str(tmp_path / "c.toml"), "--json"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.stdout)
    assert [(r["kind"], r["segment"], str(r["slurm_job_id"])) for r in report["segments"]] == [
        ("segment", 0, ids[0]), ("transfer", 1, ids[1]), ("segment", 1, ids[2])]
