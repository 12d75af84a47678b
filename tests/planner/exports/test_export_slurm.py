"""``greenepoch export slurm`` and ``greenepoch slurm status``.

Unit tests run the generated scripts with bash and a fake sbatch; tests marked
``slurm`` submit to a real local cluster (tests/support/slurm_cluster.py) and read back what
Slurm holds and what the jobs saw.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from export_fixtures import hostile, now_floor, plan_doc, run_cli, segment
from greenepoch.planner.exports.common import ExportError, job_key
from greenepoch.planner.exports.config import parse_config
from greenepoch.planner.exports.slurm import export_slurm, gpu_request, parse_comment
from greenepoch.planner.exports.slurm_status import compare
from greenepoch.planner.plan import Plan
from signals import default_interrupts
from slurm_cluster import PARTITION, LocalSlurm, slurm_cluster  # noqa: F401 (fixture)

TRAIN = r'''
import json, os, signal, sys, time
from pathlib import Path
results = Path(os.environ["GE_TEST_RESULTS"])
ckpt = Path(os.environ["GREENEPOCH_CHECKPOINT_DIR"])
restart = os.environ.get("SLURM_RESTART_COUNT", "0")
def note(**kw):
    with open(results / (os.environ["GREENEPOCH_ZONE"] + ".jsonl"), "a") as fh:
        fh.write(json.dumps(kw) + "\n")
def on_signal(*_):
    (ckpt / f"step-{restart}-signal").write_text("ckpt")
    note(event="signal", restart=restart)
    sys.exit(0)
signal.signal(signal.SIGUSR1, on_signal)
note(event="start", argv=sys.argv[1:], job=os.environ["GREENEPOCH_JOB"], restart=restart,
     resume=os.environ.get("GREENEPOCH_RESUME_FROM"), cwd=os.getcwd(),
     gpus=os.environ.get("CUDA_VISIBLE_DEVICES"))
(ckpt / f"step-{restart}").write_text("ckpt")
note(event="checkpointed", restart=restart)
for _ in range(int(os.environ.get("GE_TEST_SLEEP", "300"))):
    time.sleep(1)
note(event="done", restart=restart)
'''


#: A training relying on Python's default SIGINT handler (KeyboardInterrupt).
INT_TRAIN = r"""
import json, os, signal, sys, time
from pathlib import Path
out = Path(os.environ["GE_TEST_RESULTS"]) / "int.jsonl"
def note(**kw):
    with open(out, "a") as fh:
        fh.write(json.dumps(kw) + "\n")
note(event="start", handler=str(signal.getsignal(signal.SIGINT)))
try:
    for _ in range(int(os.environ.get("GE_TEST_SLEEP", "300")) * 10):
        time.sleep(0.1)
except KeyboardInterrupt:
    note(event="interrupted")
    sys.exit(0)
note(event="done")
"""


def _int_config(tmp_path: Path, results: Path) -> dict:
    train = tmp_path / "int_train.py"
    train.write_text(INT_TRAIN)
    return {"defaults": {"command": [sys.executable, str(train)], "checkpoint_signal": "INT",
                         "checkpoint_dir": str(tmp_path / "ckpt"), "workdir": str(tmp_path),
                         "env": {"GE_TEST_RESULTS": str(results)}},
            "zones": {"Z1": {"slurm": {"partition": PARTITION, "gpus_per_node": 2,
                                       "launcher": "none"}}}}


def _wait_notes(path: Path, event: str, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            notes = [json.loads(line) for line in path.read_text().splitlines()]
            if any(n["event"] == event for n in notes):
                return notes
        time.sleep(0.2)
    raise AssertionError(f"no {event!r} note in {path} after {timeout:.0f} s")


def _config(tmp_path: Path, workdir: Path, results: Path, *, lead: str = "10min",
            extra_args: tuple[str, ...] = (), launcher: str = "none") -> str:
    """Config running TRAIN; launcher "none" runs it in the batch shell (so that bash
    alone can run the script), "srun" through srun on every node."""
    train = tmp_path / "train.py"
    train.write_text(TRAIN)
    command = [sys.executable, str(train), *extra_args]
    zone = {"partition": PARTITION, "gpus_per_node": 2, "launcher": launcher}
    return json.dumps({
        "defaults": {"command": command, "checkpoint_dir": str(workdir / "ckpt" / "{job}"),
                     "checkpoint_lead": lead, "workdir": str(workdir),
                     "env": {"GE_TEST_RESULTS": str(results)}},
        "zones": {"Z1": {"slurm": zone}, "Z2": {"slurm": zone}},
    })


def _toml(doc: dict) -> str:
    """Tiny TOML writer for the test configs (strings, lists, ints, nested tables)."""
    lines: list[str] = []

    def value(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v).lower() if isinstance(v, bool) else str(v)

    def table(prefix, d):
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{json.dumps(k)} = {value(v)}" for k, v in scalars.items())
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{json.dumps(k)}" if prefix else json.dumps(k), v)

    table("", doc)
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, doc: dict, config: dict | str, name: str = "p") -> tuple[Path, Path]:
    plan = tmp_path / f"{name}.json"
    plan.write_text(json.dumps(doc))
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(_toml(json.loads(config) if isinstance(config, str) else config))
    return plan, cfg


def _simple_config(tmp_path: Path) -> dict:
    return {"defaults": {"command": ["echo", "hi"]},
            "zones": {"Z1": {"slurm": {"partition": PARTITION, "gpus_per_node": 2}},
                      "Z2": {"slurm": {"partition": PARTITION, "cluster": "other"}}}}


# -- without Slurm ------------------------------------------------------------------

def test_gpu_request_splits_over_nodes():
    z = parse_config({"zones": {"A": {"slurm": {"gpus_per_node": 8}}}}).slurm["A"]
    assert gpu_request(8, z) == (1, "--gres=gpu:8")
    assert gpu_request(16, z) == (2, "--gres=gpu:8")
    assert gpu_request(12, z) == (2, "--gres=gpu:6")
    assert gpu_request(9, z) == (2, "--gpus=9")
    g = parse_config({"zones": {"A": {"slurm": {"gpu_flag": "gpus"}}}}).slurm["A"]
    assert gpu_request(4, g) == (1, "--gpus=4")


def test_scripts_carry_the_plan(tmp_path):
    t0 = now_floor() + pd.Timedelta("1h")
    doc = plan_doc({"a": [segment("Z1", t0, 90.5, 4), segment("Z1", t0 + pd.Timedelta("2h"),
                                                                 30, 2),
                          segment("Z2", t0 + pd.Timedelta("3h"), 30, 2)]})
    files = export_slurm(Plan.from_dict(doc), parse_config(_simple_config(tmp_path)))
    names = sorted(n for n in files if n.endswith(".sbatch"))
    assert names == ["j00-a-s000.sbatch", "j00-a-s001.sbatch", "j00-a-s002.sbatch"]  # from 0
    s1, _, s3 = (files[n] for n in names)
    assert "#SBATCH --job-name=ge-a-s0" in s1 and "GREENEPOCH_SEGMENT=0" in s1
    assert f"#SBATCH --begin={t0.strftime('%Y-%m-%dT%H:%M:%S')}" in s1
    assert "#SBATCH --time=91" in s1  # 90.5 min rounded up
    end = t0 + pd.Timedelta(minutes=90.5, seconds=59)
    assert f"#SBATCH --deadline={end.strftime('%Y-%m-%dT%H:%M:%S')}" in s1
    assert "#SBATCH --time-min=1" in s1
    assert "#SBATCH --nodes=2" in s1 and "#SBATCH --gres=gpu:2" in s1
    # launcher "srun" (the command is not torchrun): every task gets the signal
    assert "#SBATCH --signal=USR1@600" in s1 and "#SBATCH --requeue" in s1
    assert "#SBATCH --ntasks-per-node=2" in s1
    assert "launch=(srun --ntasks-per-node=2 --kill-on-bad-exit=1 bash -c " in s1
    assert f"#SBATCH --partition={PARTITION}" in s1
    assert "#SBATCH --clusters=other" in s3
    submit = files["submit.sh"]
    assert "export TZ=UTC" in submit
    deps = [line for line in submit.splitlines() if line.startswith("submit ")]
    assert "--dependency=afterany:\"$id_j0s0\"" in deps[1]
    assert "--dependency" not in deps[2]  # another cluster, no federation
    for text in files.values():
        if text.startswith("#!"):
            subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_submit_chains_and_records_ids(tmp_path):
    t0 = now_floor() + pd.Timedelta("1h")
    doc = plan_doc({"a": [segment("Z1", t0, 30, 2), segment("Z1", t0 + pd.Timedelta("1h"),
                                                             30, 2)],
                    "b": [segment("Z1", t0, 30, 1)]})
    plan, cfg = _write(tmp_path, doc, _simple_config(tmp_path))
    fake = tmp_path / "fake-sbatch"
    log = tmp_path / "sbatch.log"
    fake.write_text(f'#!/bin/bash\necho "TZ=$TZ $*" >> {log}\n'
                    f'n=$(wc -l < {log}); echo "$((100 + n))"\n')
    fake.chmod(0o755)
    out = tmp_path / "export"
    result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--out", str(out),
                      "--submit"], env={"SBATCH": str(fake)})
    assert result.exit_code == 0, result.output
    calls = log.read_text().splitlines()
    assert all(c.startswith("TZ=UTC --parsable") for c in calls)
    assert "--dependency=afterany:101" in calls[1] and "--dependency" not in calls[2]
    ids = (out / "job_ids.tsv").read_text().splitlines()
    assert ids[0].split("\t") == ["job_index", "segment", "script", "slurm_job_id", "cluster",
                                  "kind"]
    assert [row.split("\t")[3] for row in ids[1:]] == ["101", "102", "103"]
    assert {row.split("\t")[5] for row in ids[1:]} == {"segment"}


def test_dry_run_prints_and_writes_nothing(tmp_path):
    doc = plan_doc({"a": [segment("Z1", now_floor() + pd.Timedelta("1h"), 30, 2)]})
    plan, cfg = _write(tmp_path, doc, _simple_config(tmp_path))
    before = set(tmp_path.iterdir())
    result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "==> submit.sh <==" in result.stdout and "#SBATCH --begin=" in result.stdout
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("case", ["schema", "zone", "past", "command", "outdir"])
def test_errors_exit_2_and_write_nothing(tmp_path, case):
    t0 = now_floor() + pd.Timedelta("1h")
    doc = plan_doc({"a": [segment("Z1", t0, 30, 2), segment("Z1", t0 + pd.Timedelta("1h"),
                                                             30, 2)]})
    config = _simple_config(tmp_path)
    out = tmp_path / "export"
    expect = {"schema": "schema_version '2.0' is not supported",
              "zone": "zone 'XX' has no slurm cluster mapping",
              "past": "before now", "command": "has no command to run",
              "outdir": "not written by 'greenepoch export'"}[case]
    if case == "schema":
        doc["schema_version"] = "2.0"
    elif case == "zone":  # a zone of the plan that the config does not map
        doc["jobs"][0]["segments"][1]["zone"] = "XX"
        doc["zones"].append("XX")
    elif case == "past":
        doc["jobs"][0]["segments"][0] = segment("Z1", now_floor() - pd.Timedelta("1h"), 30, 2)
    elif case == "command":
        del config["defaults"]
    else:
        out.mkdir()
        (out / "precious.txt").write_text("keep")
    plan, cfg = _write(tmp_path, doc, config)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert expect in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temp dirs left either
    if case == "outdir":
        assert [p.name for p in out.iterdir()] == ["precious.txt"]


def test_reexport_replaces_an_earlier_export(tmp_path):
    doc = plan_doc({"a": [segment("Z1", now_floor() + pd.Timedelta("1h"), 30, 2)]})
    plan, cfg = _write(tmp_path, doc, _simple_config(tmp_path))
    out = tmp_path / "export"
    for _ in range(2):
        result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--out", str(out)])
        assert result.exit_code == 0, result.output
    assert (out / "submit.sh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "p.json", "p.toml"]


def test_hostile_values_stay_literal_when_the_script_runs(tmp_path):
    """Run a generated batch script with bash (no Slurm): the job name, command args and
    paths arrive verbatim; nothing is executed; the second run resumes."""
    canary = tmp_path / "PWNED"
    evil = hostile(canary)
    workdir = tmp_path / ("w " + evil.replace("\n", " ").replace("/", "_"))[:100]
    workdir.mkdir()
    results = tmp_path / "results"
    results.mkdir()
    doc = plan_doc({evil: [segment("Z1", now_floor() + pd.Timedelta("1h"), 30, 2)]})
    config = json.loads(_config(tmp_path, workdir, results, extra_args=("--name", evil)))
    files = export_slurm(Plan.from_dict(doc), parse_config(config))
    script = next(v for k, v in files.items() if k.endswith(".sbatch"))
    assert "\n#SBATCH" not in script.split("set -u")[1]  # no directive injected in the body
    for _ in range(2):
        subprocess.run(["bash", "-c", script], env={"PATH": "/usr/bin:/bin",
                                                    "GE_TEST_SLEEP": "0"},
                       check=True, timeout=60, cwd=tmp_path)
    notes = [json.loads(line) for line in (results / "Z1.jsonl").read_text().splitlines()]
    starts = [n for n in notes if n["event"] == "start"]
    assert starts[0]["job"] == evil
    assert starts[0]["argv"] == ["--name", evil]
    assert starts[0]["cwd"] == str(workdir)
    assert starts[1]["argv"][:2] == ["--name", evil]
    assert starts[1]["argv"][2] == "--resume"
    assert Path(starts[1]["argv"][3]).name == "step-0"
    assert not canary.exists()


def test_int_checkpoint_signal_reaches_the_training(tmp_path):
    """Run the batch script with bash (no Slurm) and send INT to the batch shell, as
    ``--signal=B:INT`` does: the training must start with Python's default SIGINT
    handler and get KeyboardInterrupt; the script exits with the training's code."""
    results = tmp_path / "results"
    results.mkdir()
    doc = plan_doc({"a": [segment("Z1", now_floor() + pd.Timedelta("1h"), 30, 2)]})
    files = export_slurm(Plan.from_dict(doc), parse_config(_int_config(tmp_path, results)))
    script = next(v for k, v in files.items() if k.endswith(".sbatch"))
    proc = subprocess.Popen(["bash", "-c", script], env={"PATH": "/usr/bin:/bin"},
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_interrupts)
    try:
        notes = _wait_notes(results / "int.jsonl", "start", 30)
        assert notes[0]["handler"] != "Handlers.SIG_IGN", notes
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "INT received" in err
    assert [n["event"] for n in _wait_notes(results / "int.jsonl", "interrupted", 5)] == [
        "start", "interrupted"]
    assert proc.returncode == 0, err


def test_status_reports_drift_from_saved_squeue(tmp_path):
    t0 = now_floor() + pd.Timedelta("1h")
    doc = plan_doc({"a": [segment("Z1", t0, 30, 4), segment("Z1", t0 + pd.Timedelta("1h"),
                                                             30, 2)]})
    from greenepoch.planner.exports.common import plan_id
    pid = plan_id(Plan.from_dict(doc))
    jobs = [{"job_id": 7, "comment": f"greenepoch:{pid}:0:0", "job_state": "PENDING",
             "eligible_time": int(t0.timestamp()), "tres_per_node": "gres:gpu:2",
             "node_count": 2, "time_limit": 30, "partition": PARTITION},
            {"job_id": 9, "comment": f"greenepoch:{pid}:0:5", "job_state": "PENDING"},
            {"job_id": 10, "comment": "greenepoch:otherplan:0:0", "job_state": "PENDING"}]
    rows, unplanned = compare(Plan.from_dict(doc), jobs, parse_config(_simple_config(tmp_path)))
    assert rows[0].slurm_job_id == 7 and rows[0].drift == []
    assert rows[1].drift and rows[1].drift[0].startswith("missing")
    assert [u["slurm_job_id"] for u in unplanned] == [9]
    jobs[0]["eligible_time"] += 600
    jobs[0]["tres_per_node"] = "gres:gpu:1"
    rows, _ = compare(Plan.from_dict(doc), jobs)
    assert any(d.startswith("begin:") and "+600 s" in d for d in rows[0].drift)
    assert any(d.startswith("gpus: 2 requested, 4 planned") for d in rows[0].drift)
    squeue = tmp_path / "squeue.json"
    squeue.write_text(json.dumps({"jobs": jobs}))
    plan, _ = _write(tmp_path, doc, _simple_config(tmp_path))
    result = run_cli(["slurm", "status", str(plan), "--squeue-json", str(squeue),
                      "--fail-on-drift"])
    assert result.exit_code == 1 and "drift: begin" in result.stdout
    assert parse_comment(f"greenepoch:{pid}:0:1") == (pid, 0, 1)


# -- on a real local Slurm ------------------------------------------------------------

def _queue_by_comment(cluster: LocalSlurm) -> dict[tuple[int, int], dict]:
    out = {}
    for job in cluster.squeue():
        tag = parse_comment(job.get("comment", ""))
        if tag:
            out[(tag[1], tag[2])] = job
    return out


@pytest.mark.slurm
def test_submitted_chain_matches_the_plan(slurm_cluster, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SLURM_CONF", slurm_cluster.env["SLURM_CONF"])
    monkeypatch.setenv("PATH", slurm_cluster.env["PATH"])
    t0 = now_floor() + pd.Timedelta("20min")
    doc = plan_doc({"chain": [segment("Z1", t0, 10, 2),
                              segment("Z2", t0 + pd.Timedelta("15min"), 10, 4),
                              segment("Z1", t0 + pd.Timedelta("30min"), 10.5, 3)]})
    config = json.loads(_config(tmp_path, tmp_path, tmp_path, launcher="srun"))
    plan, cfg = _write(tmp_path, doc, config)
    out = tmp_path / "export"
    result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--out", str(out),
                      "--submit"])
    assert result.exit_code == 0, result.output
    ids = [int(r.split("\t")[3]) for r in (out / "job_ids.tsv").read_text().splitlines()[1:]]
    try:
        queue = _queue_by_comment(slurm_cluster)
        segs = doc["jobs"][0]["segments"]
        want = [(1, "gres:gpu:2", None), (2, "gres:gpu:2", None), (2, None, "gres:gpu:3")]
        for k, (nodes, per_node, per_job) in enumerate(want):
            job = queue[(0, k)]
            assert job["job_id"] == ids[k]
            assert job["eligible_time"] == int(pd.Timestamp(segs[k]["start"]).timestamp())
            shown = slurm_cluster.job(ids[k])["EligibleTime"]  # scontrol, in UTC
            assert shown == pd.Timestamp(segs[k]["start"]).strftime("%Y-%m-%dT%H:%M:%S")
            assert job["node_count"] == nodes
            assert (job["tres_per_node"] or None) == per_node
            assert (job["tres_per_job"] or None) == per_job
            assert job["partition"] == PARTITION
            assert job["time_limit"] == [10, 10, 11][k]
            if k:
                assert job["dependency"].startswith(f"afterany:{ids[k - 1]}")
            else:
                assert job["dependency"] == ""
        status = run_cli(["slurm", "status", str(plan), "--config", str(cfg), "--json"])
        assert status.exit_code == 0, status.output
        report = json.loads(status.stdout)
        assert report["drift"] == 0, report
        moved = (pd.Timestamp(segs[1]["start"]) + pd.Timedelta("5min"))
        slurm_cluster.run("env", "TZ=UTC", "scontrol", "update", f"jobid={ids[1]}",
                          f"StartTime={moved.strftime('%Y-%m-%dT%H:%M:%S')}")
        status = run_cli(["slurm", "status", str(plan), "--json", "--fail-on-drift"])
        assert status.exit_code == 1
        drift = json.loads(status.stdout)["segments"][1]["drift"]
        assert any(d.startswith("begin:") and "+300 s" in d for d in drift), drift
    finally:
        slurm_cluster.run("scancel", *map(str, ids), check=False)


@pytest.mark.slurm
def test_segments_checkpoint_on_signal_and_resume_after_requeue(slurm_cluster, tmp_path,  # noqa: F811
                                                                monkeypatch):
    """Two segments start a few seconds from now on the two fake-GPU nodes: zone Z1's
    gets the checkpoint signal (lead >= its time limit, so at the first check); zone
    Z2's is requeued and must resume from its checkpoint.  The job name, its argv
    and its paths are hostile and must arrive verbatim."""
    monkeypatch.setenv("SLURM_CONF", slurm_cluster.env["SLURM_CONF"])
    monkeypatch.setenv("PATH", slurm_cluster.env["PATH"])
    canary = Path("/tmp") / f"greenepoch-pwned-{uuid.uuid4().hex}"
    evil = hostile(canary)
    safe_evil = evil.replace("\n", " ").replace("/", "_")[:80]
    workdir = tmp_path / f"w {safe_evil}"
    workdir.mkdir()
    results = tmp_path / "results"
    results.mkdir()
    t0 = now_floor() + pd.Timedelta("4s")
    doc = plan_doc({"sig": [segment("Z1", t0, 1, 2)], evil: [segment("Z2", t0, 2, 2)]})
    config = json.loads(_config(tmp_path, workdir, results, lead="60s",
                                extra_args=("--name", evil)))
    plan, cfg = _write(tmp_path, doc, config)
    out = tmp_path / f"out {safe_evil}"
    result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--out", str(out),
                      "--submit"])
    assert result.exit_code == 0, result.output
    ids = [int(r.split("\t")[3]) for r in (out / "job_ids.tsv").read_text().splitlines()[1:]]
    sig_id, evil_id = ids

    def notes(zone: str) -> list[dict]:
        path = results / f"{zone}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def wait_note(zone: str, pred, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hit = [n for n in notes(zone) if pred(n)]
            if hit:
                return hit[0]
            time.sleep(0.5)
        logs = "\n".join(p.read_text(errors="replace") for p in (out / "logs").glob("*"))
        raise AssertionError(f"timed out waiting for {what}; notes {notes(zone)}; logs:\n{logs}")

    try:
        first = wait_note("Z2", lambda n: n["event"] == "checkpointed", 40, "Z2 to start")
        assert first["restart"] == "0"
        start = next(n for n in notes("Z2") if n["event"] == "start")
        assert start["job"] == evil and start["argv"] == ["--name", evil]
        assert start["cwd"] == str(workdir) and start["resume"] == ""
        assert start["gpus"] == "0,1"  # GPUs as planned: both fake devices of the node
        assert slurm_cluster.job(evil_id)["EligibleTime"] == t0.strftime("%Y-%m-%dT%H:%M:%S")
        slurm_cluster.run("scontrol", "requeue", str(evil_id))
        again = wait_note("Z2", lambda n: n["event"] == "start" and n["restart"] == "1", 60,
                          "the requeued Z2 segment to start again")
        assert again["argv"][:3] == ["--name", evil, "--resume"]
        assert Path(again["argv"][3]).name == "step-0"
        assert again["resume"] == again["argv"][3]
        signalled = wait_note("Z1", lambda n: n["event"] == "signal", 75,
                              "the checkpoint signal in Z1")
        assert signalled["restart"] == "0"
        assert any(p.name == "step-0-signal"
                   for p in (workdir / "ckpt" / job_key("sig")).iterdir())
        assert slurm_cluster.wait_state(sig_id, {"COMPLETED"}, 15) == "COMPLETED"
        assert not canary.exists()
        assert not list(out.glob("PWNED*")) and not list(workdir.glob("*touch*"))
    finally:
        slurm_cluster.run("scancel", str(sig_id), str(evil_id), check=False)
        if canary.exists():
            canary.unlink()
        shutil.rmtree(workdir / "ckpt", ignore_errors=True)


def test_failing_squeue_is_one_line(tmp_path, monkeypatch):
    from greenepoch.planner.exports.slurm_status import squeue_json

    fake = tmp_path / "squeue"
    fake.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact' >&2\n"
                    "echo 'second line' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(ExportError) as err:
        squeue_json()
    assert str(err.value) == (
        "squeue --json failed (exit 1): slurm_load_jobs error: Unable to contact / second "
        "line; check that slurmctld is reachable, or pass `squeue_file` (a saved "
        "'squeue --json' output)")


def _submit_one(tmp_path: Path, results: Path, name: str, start: pd.Timestamp) -> str:
    """Export and submit one 2-minute segment of job ``name`` (INT config); its Slurm id."""
    doc = plan_doc({name: [segment("Z1", start, 2, 2)]})
    plan, cfg = _write(tmp_path, doc, _int_config(tmp_path, results))
    out = tmp_path / "export"
    result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--out", str(out),
                      "--submit"])
    assert result.exit_code == 0, result.output
    return (out / "job_ids.tsv").read_text().splitlines()[1].split("\t")[3]


@pytest.mark.slurm
def test_int_checkpoint_signal_on_slurm(slurm_cluster, tmp_path, monkeypatch):  # noqa: F811
    """``checkpoint_signal = "INT"`` on the real Slurm: INT to the batch shell (what
    ``--signal=B:INT@lead`` sends) reaches the training, which exits 0."""
    monkeypatch.setenv("SLURM_CONF", slurm_cluster.env["SLURM_CONF"])
    monkeypatch.setenv("PATH", slurm_cluster.env["PATH"])
    results = tmp_path / "results"
    results.mkdir()
    job_id = _submit_one(tmp_path, results, "int", now_floor() + pd.Timedelta("3s"))
    try:
        notes = _wait_notes(results / "int.jsonl", "start", 40)
        assert notes[0]["handler"] != "Handlers.SIG_IGN", notes
        slurm_cluster.run("scancel", "--signal=INT", "--batch", job_id)
        _wait_notes(results / "int.jsonl", "interrupted", 20)
        assert slurm_cluster.wait_state(job_id, {"COMPLETED"}, 20) == "COMPLETED"
    finally:
        slurm_cluster.run("scancel", job_id, check=False)


@pytest.mark.slurm
def test_a_requeued_segment_ends_by_its_window_end(slurm_cluster, tmp_path,  # noqa: F811
                                                    monkeypatch):
    """Requeued a minute into its 2-minute window, a segment must not get its full
    --time again: its limit is cut so it ends by window end + 59 s (--deadline)."""
    monkeypatch.setenv("SLURM_CONF", slurm_cluster.env["SLURM_CONF"])
    monkeypatch.setenv("PATH", slurm_cluster.env["PATH"])
    results = tmp_path / "results"
    results.mkdir()
    t0 = now_floor() + pd.Timedelta("3s")
    job_id = _submit_one(tmp_path, results, "rq", t0)
    latest_end = t0 + pd.Timedelta(minutes=2, seconds=59)

    def end_time() -> pd.Timestamp:
        return pd.Timestamp(slurm_cluster.job(job_id)["EndTime"], tz="UTC")

    try:
        slurm_cluster.wait_state(job_id, {"RUNNING"}, 30)
        assert slurm_cluster.job(job_id)["TimeLimit"] == "00:02:00"  # on time: whole --time
        assert end_time() <= latest_end
        time.sleep(max(0.0, (t0 + pd.Timedelta("65s") - now_floor()).total_seconds()))
        slurm_cluster.run("scontrol", "requeue", job_id)
        deadline = time.monotonic() + 40
        while slurm_cluster.job(job_id).get("Restarts") != "1" or \
                slurm_cluster.job(job_id).get("JobState") != "RUNNING":
            assert time.monotonic() < deadline, slurm_cluster.job(job_id)
            time.sleep(0.5)
        assert slurm_cluster.job(job_id)["TimeLimit"] == "00:01:00"
        assert end_time() <= latest_end
    finally:
        slurm_cluster.run("scancel", job_id, check=False)


# -- multi-node launch and checkpoint moves, without Slurm ----------------------------

#: Stands in for srun inside a batch script: runs the step's program once per "node"
#: (2 nodes, 1 task each) with Slurm's variables, as srun would.
FAKE_SRUN = r'''#!/bin/bash
while [ "${1#-}" != "$1" ]; do shift; done   # srun's own options
for node in 0 1; do
    SLURM_NODEID=$node SLURM_PROCID=$node SLURM_LOCALID=0 SLURM_NTASKS=2 "$@" || exit 1
done
'''

#: Stands in for torchrun: prints its argv as JSON, one line per node.
FAKE_TORCHRUN = '''import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "node_rank": os.environ["NODE_RANK"],
                  "master": os.environ["MASTER_ADDR"]}))
'''


def _multinode(tmp_path: Path, command: list[str], gpus: int = 4, **zone) -> dict[str, str]:
    config = {"defaults": {"command": command},
              "zones": {"Z1": {"slurm": {"gpus_per_node": 2, **zone}}}}
    doc = plan_doc({"a": [segment("Z1", now_floor() + pd.Timedelta("1h"), 30, gpus)]})
    return export_slurm(Plan.from_dict(doc), parse_config(config))


def test_torchrun_gets_each_node_its_rank_and_the_command_stays_literal(tmp_path):
    """The batch script run by bash with a fake srun (2 nodes) and scontrol: torchrun's
    missing options come first, the node rank differs per node, the hostile argv
    arrives verbatim and nothing in it runs."""
    canary = tmp_path / "PWNED"
    evil = hostile(canary)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"srun": FAKE_SRUN, "scontrol": "#!/bin/sh\nprintf 'n7\\nn8\\n'\n",
                       "torchrun": f"#!{sys.executable}\n{FAKE_TORCHRUN}"}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    files = _multinode(tmp_path, ["torchrun", "--nproc_per_node", "2", "t.py", evil])
    script = files["j00-a-s000.sbatch"]
    assert "#SBATCH --ntasks-per-node=1" in script and "#SBATCH --signal=USR1@600" in script
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={"PATH": f"{bin_dir}:/usr/bin:/bin",
                                             "SLURM_JOB_NODELIST": "n[7-8]",
                                             "SLURM_NNODES": "2"})
    assert proc.returncode == 0, proc.stderr
    seen = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [s["argv"] for s in seen] == [
        ["--nnodes=2", f"--node-rank={k}", "--master-addr=n7", "--master-port=29500",
         "--nproc_per_node", "2", "t.py", evil] for k in (0, 1)]
    assert [(s["node_rank"], s["master"]) for s in seen] == [("0", "n7"), ("1", "n7")]
    assert not canary.exists()


def test_launch_options_per_launcher():
    srun = _multinode(Path(), ["python", "t.py"])["j00-a-s000.sbatch"]
    assert "launch=(srun --ntasks-per-node=2 --kill-on-bad-exit=1 bash -c " in srun
    assert 'RANK="$SLURM_PROCID" LOCAL_RANK="$SLURM_LOCALID" WORLD_SIZE="$SLURM_NTASKS"' in srun
    assert "#SBATCH --ntasks-per-node=2" in srun and "MASTER_PORT=29500" in srun
    # 12 GPUs on 8-GPU nodes: 6 on each of 2; 9 do not split: --gpus total, one task per
    # GPU wherever Slurm puts them, torchrun workers as many as the node's GPUs
    even = _multinode(Path(), ["torchrun", "t.py"], gpus=12, gpus_per_node=8)
    assert "--gres=gpu:6" in even["j00-a-s000.sbatch"]
    assert "--nproc-per-node=6" in even["j00-a-s000.sbatch"]
    odd = _multinode(Path(), ["python", "t.py"], gpus=9, gpus_per_node=8,
                     master_port=31000)["j00-a-s000.sbatch"]
    assert "#SBATCH --nodes=2" in odd and "#SBATCH --gpus=9" in odd
    assert "#SBATCH --ntasks=9" in odd and "MASTER_PORT=31000" in odd
    torch = _multinode(Path(), ["/opt/bin/torchrun", "t.py"], gpus=9,
                       gpus_per_node=8)["j00-a-s000.sbatch"]
    assert '--nproc-per-node="$SLURM_GPUS_ON_NODE"' in torch
    # --gpus=<total> (gpu_flag "gpus") may be spread unevenly: per node as Slurm placed
    spread = _multinode(Path(), ["torchrun", "t.py"], gpus=4, gpu_flag="gpus")
    assert "#SBATCH --gpus=4" in spread["j00-a-s000.sbatch"]
    assert '--nproc-per-node="$SLURM_GPUS_ON_NODE"' in spread["j00-a-s000.sbatch"]
    module = _multinode(Path(), ["python", "-m", "torch.distributed.run", "--nnodes=2",
                                 "--node_rank=$X", "--master-addr", "h", "--master_port=1",
                                 "--nproc-per-node=2", "t.py"], launcher="torchrun")
    step = module["j00-a-s000.sbatch"]
    assert 'exec "${@:1:3}" "${@:4}"' in step  # every option given: none added
    single = _multinode(Path(), ["python", "t.py"], gpus=2, launcher="none")
    assert "srun" not in single["j00-a-s000.sbatch"]
    assert "#SBATCH --signal=B:USR1@600" in single["j00-a-s000.sbatch"]


@pytest.mark.parametrize(("zone", "gpus", "expect"), [
    ({"launcher": "none"}, 4, "segment 0 of job 'a' needs 2 nodes (4 GPUs) in zone 'Z1', "
                              "whose launcher is 'none'"),
    ({"launcher": "torchrun"}, 2, "zone 'Z1', job 'a': launcher 'torchrun' but the command "
                                  "'python t.py' starts neither with torchrun"),
    ({"launcher": "torchrun", "gpu_flag": "gpus"}, 4, "has --standalone (each node would "
                                                     "train alone)"),
    ({"checkpoint_dir": "/shared/ckpt"}, 2, "zone 'Z1': jobs 'a' and 'b' would share the "
                                            "checkpoint directory '/shared/ckpt'"),
])
def test_launch_and_zone_errors_are_one_line(tmp_path, zone, gpus, expect):
    doc = plan_doc({n: [segment("Z1", now_floor() + pd.Timedelta("1h"), 30, gpus)]
                    for n in ("a", "b")})
    command = ["torchrun", "--standalone", "t.py"] if "gpu_flag" in zone else ["python", "t.py"]
    config = {"defaults": {"command": command},
              "zones": {"Z1": {"slurm": {"gpus_per_node": 2, **zone}}}}
    plan, cfg = _write(tmp_path, doc, config)
    result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--dry-run"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert expect in result.stderr


def _moves_config(tmp_path: Path, evil: str, arg: str, **extra) -> dict:
    """Three zones; the copy (a shell the user chose, its data as arguments) copies and
    writes its last argument ``arg`` to a file."""
    zone = {"partition": PARTITION, "launcher": "none"}
    copy = ["sh", "-c", 'cp -R "$1/." "$2" && printf %s "$3" > "$2/../arg"', "copy", "{src}",
            "{dst}", arg]
    return {"defaults": {"command": ["echo", "hi"], "workdir": str(tmp_path),
                         "checkpoint_copy": copy, **extra},
            "zones": {"Z1": {"slurm": {**zone, "checkpoint_dir": f"A {evil}/{{job}}",
                                       "checkpoint_url": f"{tmp_path}/A {evil}/{{job}}"}},
                      "Z2": {"slurm": {**zone, "checkpoint_dir": f"B {evil}/{{job}}",
                                       "cluster": "c2"}},
                      "Z3": {"slurm": {**zone, "checkpoint_dir": f"B {evil}/{{job}}",
                                       "cluster": "c2"}}}}


def test_a_migration_becomes_a_transfer_job_with_literal_paths(tmp_path):
    """Z1 -> Z2 (another cluster, no federation): a transfer job on Z2's cluster in the
    window between the segments, afterok before segment 1 and no afterany across
    clusters; run with bash it copies, hostile paths and arguments staying literal.
    Z2 -> Z3 (one shared directory): nothing to move, afterany as before."""
    canary = tmp_path / "PWNED"
    # braces would be placeholders (refused); slashes would make directories
    arg = hostile(canary).replace("{}", "").replace("${HOME}", "$HOME")
    evil = arg.replace("/", "_")
    t0 = now_floor() + pd.Timedelta("1h")
    doc = plan_doc({"a": [segment("Z1", t0, 30, 2), segment("Z2", t0 + pd.Timedelta("50min"),
                                                             30, 2),
                          segment("Z3", t0 + pd.Timedelta("2h"), 30, 2)]})
    doc["jobs"][0]["checkpoint_save_hours"] = 0.25  # newer plans: the lead follows it
    files = export_slurm(Plan.from_dict(doc), parse_config(_moves_config(tmp_path, evil, arg)))
    assert sorted(n for n in files if n.startswith("transfer-")) == [
        "transfer-j00-a-s001.sbatch"]
    move = files["transfer-j00-a-s001.sbatch"]
    begin, until = t0 + pd.Timedelta("30min"), t0 + pd.Timedelta("50min")
    for line in (f"--begin={begin.strftime('%Y-%m-%dT%H:%M:%S')}", "--time=20",
                 f"--deadline={(until + pd.Timedelta('59s')).strftime('%Y-%m-%dT%H:%M:%S')}",
                 "--clusters=c2", "--ntasks=1", "--nodes=1"):
        assert f"#SBATCH {line}\n" in move
    assert "gpu" not in move.split("set -u")[0].replace(f"={PARTITION}", "")
    assert "#SBATCH --signal=B:USR1@900" in files["j00-a-s000.sbatch"]  # 0.25 h
    submit = [line for line in files["submit.sh"].splitlines() if line.startswith("submit ")]
    assert submit == ["submit segment 0 0 j00-a-s000.sbatch",
                      "submit transfer 0 1 transfer-j00-a-s001.sbatch",
                      'submit segment 0 1 j00-a-s001.sbatch --dependency=afterok:"$id_j0s1t"',
                      'submit segment 0 2 j00-a-s002.sbatch --dependency=afterany:"$id_j0s1"']
    index = json.loads(files["export.json"])
    assert [t["script"] for t in index["transfers"]] == ["transfer-j00-a-s001.sbatch"]
    assert index["transfers"][0]["argv"][-1] == arg
    assert [s["dependency"] for s in index["segments"]] == [None, "afterok", "afterany"]
    key = job_key("a")
    assert index["segments"][1]["checkpoint_dir"] == f"B {evil}/{key}"
    src = tmp_path / f"A {evil}" / key
    src.mkdir(parents=True)
    (src / "step-1").write_text("w")
    proc = subprocess.run(["bash", "-c", move], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / f"B {evil}" / key / "step-1").read_text() == "w"
    assert (tmp_path / f"B {evil}" / "arg").read_text() == arg
    assert not canary.exists() and not list(tmp_path.glob("*PWNED"))
    lead = export_slurm(Plan.from_dict(doc), parse_config(
        _moves_config(tmp_path, evil, arg, checkpoint_lead="2min")))
    assert "#SBATCH --signal=B:USR1@120" in lead["j00-a-s000.sbatch"]  # the config's wins


def test_submit_records_the_move_before_its_segment(tmp_path):
    t0 = now_floor() + pd.Timedelta("1h")
    doc = plan_doc({"a": [segment("Z1", t0, 30, 2), segment("Z2", t0 + pd.Timedelta("1h"),
                                                             30, 2)]})
    zone = {"partition": PARTITION, "launcher": "none"}
    config = {"defaults": {"command": ["echo", "hi"]},
              "zones": {"Z1": {"slurm": {**zone, "checkpoint_dir": "/a/{job}"}},
                        "Z2": {"slurm": {**zone, "checkpoint_dir": "/b/{job}"}}}}
    plan, cfg = _write(tmp_path, doc, config)
    fake = tmp_path / "fake-sbatch"
    log = tmp_path / "sbatch.log"
    fake.write_text(f'#!/bin/bash\necho "$*" >> {log}\nn=$(wc -l < {log}); echo "$((100 + n))"\n')
    fake.chmod(0o755)
    out = tmp_path / "export"
    result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--out", str(out),
                      "--submit"], env={"SBATCH": str(fake)})
    assert result.exit_code == 0, result.output
    assert "wrote 3 sbatch script(s) (1 checkpoint move(s))" in result.stdout
    assert "submitted job 0 checkpoint move before segment 1: Slurm job 102" in result.stdout
    calls = log.read_text().splitlines()
    assert calls[1].endswith("--dependency=afterany:101 transfer-j00-a-s001.sbatch")
    assert calls[2].endswith("--dependency=afterok:102 j00-a-s001.sbatch")
    rows = [r.split("\t") for r in (out / "job_ids.tsv").read_text().splitlines()[1:]]
    assert [(r[1], r[5]) for r in rows] == [("0", "segment"), ("1", "transfer"),
                                            ("1", "segment")]


def test_no_move_between_segments_of_one_zone(tmp_path):
    """A zone whose checkpoint_url differs from its checkpoint_dir (what other clusters
    read) keeps its checkpoints where they are between two of its own segments."""
    t0 = now_floor() + pd.Timedelta("1h")
    doc = plan_doc({"a": [segment("Z1", t0, 30, 2), segment("Z1", t0 + pd.Timedelta("1h"),
                                                             30, 4)]})
    config = {"defaults": {"command": ["echo", "hi"]},
              "zones": {"Z1": {"slurm": {"checkpoint_dir": "/a/{job}",
                                         "checkpoint_url": "h:/a/{job}"}}}}
    files = export_slurm(Plan.from_dict(doc), parse_config(config))
    assert not [n for n in files if n.startswith("transfer-")]
    assert json.loads(files["export.json"])["segments"][1]["dependency"] == "afterany"
