"""``slurm status`` rules on ``squeue --json`` documents built by hand: ended jobs
(squeue keeps them for MinJobAge) and segments that left the queue."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from export_fixtures import now_floor, plan_doc, run_cli, segment
from greenepoch.planner.exports.common import plan_id
from greenepoch.planner.exports.slurm_status import compare
from greenepoch.planner.plan import Plan


def _plan(start: pd.Timestamp, minutes: float = 30) -> Plan:
    return Plan.from_dict(plan_doc({"a": [segment("Z1", start, minutes, 2)]}))


def _job(plan: Plan, job_id: int, state: str | list[str], seg: int = 0) -> dict:
    return {"job_id": job_id, "comment": f"greenepoch:{plan_id(plan)}:0:{seg}",
            "job_state": state, "tres_per_node": "gres:gpu:2", "node_count": 1}


@pytest.mark.parametrize("state", ["CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL",
                                   "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
                                   ["CANCELLED"]])  # Slurm >= 23.02 gives a list
def test_a_dead_job_is_drift(state):
    plan = _plan(now_floor() + pd.Timedelta("1h"))
    rows, unplanned = compare(plan, [_job(plan, 4, state)])
    assert rows[0].slurm_job_id == 4
    assert [d.split(":")[0] for d in rows[0].drift] == ["dead"], rows[0].drift
    assert unplanned == []


def test_a_requeued_preempted_job_is_live():
    plan = _plan(now_floor() + pd.Timedelta("1h"))
    rows, _ = compare(plan, [_job(plan, 4, ["PREEMPTED", "REQUEUED"])])
    assert not any(d.startswith("dead") for d in rows[0].drift)


def test_an_ended_duplicate_neither_counts_nor_hides_the_live_job():
    plan = _plan(now_floor() + pd.Timedelta("1h"))
    jobs = [_job(plan, 2, "PENDING"), _job(plan, 5, "CANCELLED"),
            _job(plan, 6, "CANCELLED", seg=1)]  # seg 1 is not in the plan
    rows, unplanned = compare(plan, jobs)
    assert rows[0].slurm_job_id == 2 and rows[0].state == "PENDING"
    assert rows[0].drift == [] and rows[0].ended == ["5 CANCELLED"]
    assert unplanned == []
    jobs += [_job(plan, 7, "PENDING"), _job(plan, 8, "PENDING", seg=1)]
    rows, unplanned = compare(plan, jobs)
    assert rows[0].slurm_job_id == 7
    assert rows[0].drift == ["duplicate: 2 live queue jobs (2, 7)"]
    assert [u["slurm_job_id"] for u in unplanned] == [8]


def test_a_completed_job_in_its_window_is_not_drift():
    start = now_floor() - pd.Timedelta("20min")
    plan = _plan(start)
    rows, _ = compare(plan, [_job(plan, 3, "COMPLETED")])
    assert rows[0].drift == [] and rows[0].state == "COMPLETED"


@pytest.mark.parametrize(("start_in", "state", "drift"), [
    ("1h", "not in queue", ["missing"]),           # window not started: never submitted
    ("-20min", "gone (finished or purged)", []),   # ended early (checkpoint) and purged
    ("-29min", "gone (finished or purged)", []),
    ("-2h", "gone (window over)", []),
])
def test_a_segment_absent_from_squeue(start_in, state, drift):
    plan = _plan(now_floor() + pd.Timedelta(start_in))
    rows, _ = compare(plan, [])
    assert rows[0].state == state
    assert [d.split(":")[0] for d in rows[0].drift] == drift


def test_cli_fails_on_a_dead_segment_but_not_on_a_purged_one(tmp_path):
    t0 = now_floor()
    doc = plan_doc({"a": [segment("Z1", t0 - pd.Timedelta("25min"), 30, 2),
                          segment("Z1", t0 + pd.Timedelta("1h"), 30, 2)]})
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(doc))
    squeue = tmp_path / "sq.json"
    squeue.write_text(json.dumps({"jobs": [_job(Plan.from_dict(doc), 9, "CANCELLED", seg=1)]}))
    result = run_cli(["slurm", "status", str(plan), "--squeue-json", str(squeue),
                      "--fail-on-drift", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["drift"] == 1
    assert report["segments"][0]["state"] == "gone (finished or purged)"
    assert report["segments"][1]["drift"][0].startswith("dead: job 9 ended CANCELLED")
    squeue.write_text(json.dumps({"jobs": [_job(Plan.from_dict(doc), 9, "PENDING", seg=1)]}))
    result = run_cli(["slurm", "status", str(plan), "--squeue-json", str(squeue),
                      "--fail-on-drift"])
    assert result.exit_code == 0, result.output


def test_a_closed_stdout_ends_quietly(tmp_path):
    t0 = now_floor() + pd.Timedelta("1h")
    doc = plan_doc({"a": [segment("Z1", t0 + pd.Timedelta(hours=k), 30, 2)
                          for k in range(3000)]})
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(doc))
    squeue = tmp_path / "sq.json"
    squeue.write_text('{"jobs": []}')
    proc = subprocess.Popen([sys.executable, "-m", "greenepoch.planner.cli.main", "slurm", "status",
                             str(plan), "--squeue-json", str(squeue)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b'"a" segment 0')  # numbered from 0, as files and env
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141, -13), err
    assert err == ""


@pytest.mark.parametrize("job, expect", [
    ({"job_id": "x"}, "jobs[0].job_id = 'x': expected a whole number"),
    ({"job_id": 7, "comment": []}, "jobs[0].comment = []: expected text, found a list"),
    ({"job_id": 7, "job_state": 3}, "jobs[0].job_state = 3: expected text or a list"),
    ({"job_id": 7, "job_state": ["PENDING", 1]}, "jobs[0].job_state = ['PENDING', 1]"),
    ({"job_id": 7, "name": 5}, "jobs[0].name = 5: expected text"),
    ({"job_id": 7, "eligible_time": {"set": True, "number": 1e20}},
     "jobs[0].eligible_time = {'set': True, 'number': 1e+20}: expected a whole number"),
    ({"job_id": 7, "time_limit": 1.5}, "jobs[0].time_limit = 1.5: expected a whole number"),
    (5, "jobs[0] = 5: expected an object (a queue job), found a whole number"),
])
def test_a_queue_entry_of_the_wrong_shape_is_one_error(tmp_path, job, expect):
    """Such an entry was skipped (exit 0, its segment reported as missing) or was a
    traceback (an eligible time past pandas' range)."""
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(_plan(now_floor() + pd.Timedelta("1h")).to_dict()))
    queue = tmp_path / "q.json"
    queue.write_text(json.dumps({"jobs": [job]}))
    result = run_cli(["slurm", "status", str(plan), "--squeue-json", str(queue)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"greenepoch: error: squeue JSON {expect}" in result.stderr


def test_slurm_number_objects_are_read():
    plan = _plan(now_floor() + pd.Timedelta("1h"))
    job = {**_job(plan, 4, ["PENDING"]), "job_id": 4,
           "time_limit": {"set": True, "infinite": False, "number": 30},
           "eligible_time": {"set": False, "infinite": False, "number": 0}}
    from greenepoch.planner.exports.slurm_status import parse_squeue

    rows, _ = compare(plan, parse_squeue(json.dumps({"jobs": [job]})))
    assert rows[0].slurm_job_id == 4 and rows[0].drift == []


# -- the clusters config (options.config_option, like export) ---------------------------
@pytest.mark.parametrize("content", ["", "[defaults]\ncommand = ['echo']\n",
                                     "[zones.Z9.slurm]\npartition = 'gpu'\n"])
def test_a_clusters_config_mapping_none_of_the_zones_is_one_error(tmp_path, content):
    """It used to check nothing and report no drift, exit 0."""
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(plan_doc({"a": [segment("Z1", now_floor() + pd.Timedelta("1h"),
                                                        30, 2)]})))
    squeue = tmp_path / "sq.json"
    squeue.write_text('{"jobs": []}')
    cfg = tmp_path / "c.toml"
    cfg.write_text(content)
    for args, env in (([f"--config={cfg}"], None), ([], {"GREENEPOCH_CLUSTERS": str(cfg)})):
        result = run_cli(["slurm", "status", str(plan), "--squeue-json", str(squeue), *args],
                         env=env)
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"greenepoch: error: {cfg}: maps none of the plan's zones (Z1) to a Slurm cluster, "
            "so partition, account and nodes cannot be checked; add a [zones.<zone>.slurm] "
            "table for them (examples/clusters.toml shows the format), or compare without a "
            "clusters config\n")
    cfg.write_text(content + "[zones.Z1.slurm]\npartition = 'gpu'\n")
    result = run_cli(["slurm", "status", str(plan), "--squeue-json", str(squeue),
                      "--config", str(cfg)])
    assert result.exit_code == 0, result.output


def test_status_takes_the_shared_config_option():
    from greenepoch.planner.cli.export_cmd import slurm as export_slurm
    from greenepoch.planner.cli.slurm_cmd import status

    def config(command):
        return next(p for p in command.params if p.name == "config_file")

    assert config(status).to_info_dict() == config(export_slurm).to_info_dict()


def test_checkpoint_moves_are_listed_before_their_segment(tmp_path):
    """A move is a row of its own (kind "transfer"), found by its comment, or expected
    from the clusters config: then its absence is drift, and a failed one is dead."""
    from greenepoch.planner.exports.config import parse_config

    t0 = now_floor() + pd.Timedelta("1h")
    plan = Plan.from_dict(plan_doc({"a": [segment("Z1", t0, 30, 2),
                                          segment("Z2", t0 + pd.Timedelta("1h"), 30, 2)]}))
    pid = plan_id(plan)
    move = {"job_id": 11, "comment": f"greenepoch:{pid}:0:1:transfer", "job_state": "PENDING",
            "eligible_time": int((t0 + pd.Timedelta("30min")).timestamp())}
    segs = [_job(plan, 10, "PENDING"), _job(plan, 12, "PENDING", seg=1)]
    rows, unplanned = compare(plan, [*segs, move])
    assert [(r.kind, r.segment, r.slurm_job_id) for r in rows] == [
        ("segment", 0, 10), ("transfer", 1, 11), ("segment", 1, 12)]
    assert rows[1].drift == [] and rows[1].gpus == 0 and unplanned == []
    rows, _ = compare(plan, segs)  # without a config nothing says a move was exported
    assert [r.kind for r in rows] == ["segment", "segment"]
    config = parse_config({"zones": {"Z1": {"slurm": {"checkpoint_dir": "/a/{job}"}},
                                     "Z2": {"slurm": {"checkpoint_dir": "/b/{job}"}}}})
    rows, _ = compare(plan, segs, config)
    assert rows[1].kind == "transfer" and rows[1].drift[0].startswith("missing")
    rows, _ = compare(plan, [*segs, {**move, "job_state": "DEADLINE"}], config)
    assert rows[1].drift[0].startswith("dead: job 11 ended DEADLINE") \
        and "checkpoint move (the next segment waits for it)" in rows[1].drift[0]
    shared = parse_config({"zones": {"Z1": {"slurm": {}}, "Z2": {"slurm": {}}}})
    rows, _ = compare(plan, segs, shared)  # one shared filesystem: nothing to move
    assert [r.kind for r in rows] == ["segment", "segment"]
    squeue = tmp_path / "sq.json"
    squeue.write_text(json.dumps({"jobs": [*segs, move]}))
    path = tmp_path / "p.json"
    path.write_text(json.dumps(plan.to_dict()))
    result = run_cli(["slurm", "status", str(path), "--squeue-json", str(squeue)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith(
        '"a" checkpoint move before segment 1 [Z2]'), result.stdout
