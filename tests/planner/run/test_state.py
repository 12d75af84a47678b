"""The run directory: one supervisor at a time (a lock the kernel drops with its holder),
and a state file that survives a kill and refuses anything it did not write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from greenepoch.planner.run.clock import SimAnchor
from greenepoch.planner.run.state import RunDir, RunDirError, State

HOLD = """
import sys, time
from greenepoch.planner.run.state import RunDir
lock = RunDir(sys.argv[1]).lock()
print("locked", flush=True)
time.sleep(60)
"""


def _holder(run_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "locked\n", proc.stderr.read() if proc.stderr else line
    return proc


def test_a_second_supervisor_is_refused_naming_the_holder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = _holder(run_dir)
    try:
        with pytest.raises(RunDirError) as caught:
            RunDir(run_dir).lock()
        message = str(caught.value)
        assert f"pid {holder.pid}" in message and str(run_dir) in message
        assert "`run_dir`" in message and "\n" not in message
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_goes_with_a_holder_killed_by_sigkill(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = _holder(run_dir)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with RunDir(run_dir).lock() as lock:
        assert (run_dir / "supervisor.lock").read_text() == f"{os.getpid()}\n"
        assert not os.get_inheritable(lock.fd)  # a training started now does not hold it
        with pytest.raises(RunDirError, match=f"pid {os.getpid()}"):
            RunDir(run_dir).lock()  # another open file: refused in the same process too
    RunDir(run_dir).lock().release()  # released at the end of the block


def test_lock_creates_the_run_directory(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "a" / "b")
    with run.lock():
        assert run.checkpoints.is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(RunDirError, match="cannot create the run directory"):
        RunDir(tmp_path / "file" / "run").lock()


def _state() -> State:
    return State(run_id="r1", phase="paused", segment=3, child_pid=1234,
                 child_start_ticks=987654, restarts=1,
                 sim_anchor=SimAnchor(pd.Timestamp("2023-06-01T00:00Z"), 1.7e9, 3600.0),
                 done_gpu_h=2.5, energy_kwh=0.75, emissions_kg=0.2,
                 last_decision=pd.Timestamp("2023-06-01T03:15Z"),
                 since=pd.Timestamp("2023-06-01T03:00Z"), policy="threshold",
                 argv=["python", "train.py", "--lr", "0.1"])


def test_state_round_trips_atomically(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.load() is None  # a new run
    state = _state()
    run.save(state)
    assert run.load() == state
    raw = json.loads(run.state_path.read_text())
    assert raw["kind"] == "greenepoch-run-state" and raw["version"] == 1
    state.phase, state.child_pid, state.child_start_ticks = "done", None, None
    run.save(state)
    assert run.load() == state
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary left


def test_new_state_has_a_fresh_run_id() -> None:
    a, b = State.new("replan", ["python", "t.py"]), State.new("replan", ["python", "t.py"])
    assert a.run_id != b.run_id and a.phase == "new" and a.argv == ["python", "t.py"]


@pytest.mark.parametrize(("content", "why"), [
    ("{not json", "Expecting property name"),
    ("", "Expecting value"),
    ('["a list"]', "kind 'list'"),
    ('{"kind": "greenepoch-results", "version": 1}', "kind 'greenepoch-results'"),
    ('{"kind": "greenepoch-run-state", "version": 2, "run_id": "r"}', "version 2"),
    ('{"kind": "greenepoch-run-state", "version": 1, "run_id": "r", "colour": 1}',
     "unknown fields colour"),
    ('{"kind": "greenepoch-run-state", "version": 1}', "run_id"),
    ('{"kind": "greenepoch-run-state", "version": 1, "run_id": "r", "phase": "dancing"}',
     "state field 'phase' must be one of new, running"),
    ('{"kind": "greenepoch-run-state", "version": 1, "run_id": "r", "child_pid": 5}',
     "state field 'child_pid' and state field 'child_start_ticks'"),
    ('{"kind": "greenepoch-run-state", "version": 1, "run_id": "r", "energy_kwh": -1}',
     "state field 'energy_kwh' must be a finite number >= 0"),
    ('{"kind": "greenepoch-run-state", "version": 1, "run_id": "r", "since": "x"}',
     "unable to parse: x"),
    ('{"kind": "greenepoch-run-state", "version": 1, "run_id": "r", "sim_anchor": 1}',
     "sim, wall and speed"),
])
def test_a_corrupt_or_foreign_state_is_one_clear_error(tmp_path: Path, content: str,
                                                      why: str) -> None:
    run = RunDir(tmp_path)
    run.state_path.write_text(content)
    with pytest.raises(RunDirError) as caught:
        run.load()
    message = str(caught.value)
    assert message.startswith(f"{run.state_path}: not a GreenEpoch run state (")
    assert why in message and "`run_dir`" in message


def test_state_refuses_bad_fields() -> None:
    with pytest.raises(RunDirError, match="state field 'segment' must be a whole number"):
        State(run_id="r", segment=-1)
    with pytest.raises(RunDirError, match="state field 'last_decision' must be a tz-aware UTC"):
        State(run_id="r", last_decision=pd.Timestamp("2023-06-01"))
    with pytest.raises(RunDirError, match="state field 'argv' must be a list of strings"):
        State(run_id="r", argv="python train.py")  # type: ignore[arg-type]


def test_progress_is_none_until_the_gate_writes_it(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.progress() is None
    run.progress_path.write_text('{"progress": 0.42, "step": 420}')
    progress = run.progress()
    assert progress is not None and progress["progress"] == 0.42 and progress["step"] == 420
    run.progress_path.write_text("{half a file")  # a training writing it without the gate
    assert run.progress() is None
