"""The in-process gate (planner/run/gate.py): the control-file protocol, wait and resume
across threads and processes, atomic rate-limited progress, the checkpoint signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.run import gate as gate_mod
from greenepoch.planner.run.gate import Control, Gate, GateError, read_control, write_control


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# the control file
def test_write_control_numbers_every_write(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    assert read_control(path) == Control()  # no file: run
    assert write_control(path, pause=True, reason="412 > 380") == \
        Control(pause=True, stop=False, seq=1, reason="412 > 380")
    assert write_control(path) == Control(seq=2)
    assert write_control(path, stop=True).seq == 3
    assert json.loads(path.read_text()) == {"pause": False, "stop": True, "seq": 3,
                                            "reason": ""}
    assert [p.name for p in tmp_path.iterdir()] == ["control.json"]  # no temporary left


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not JSON"),
    ("[1]", "expected a JSON object, found list"),
    ('{"pause": "yes"}', "`pause` and `stop` must be true or false"),
    ('{"seq": -1}', "`seq` must be an integer >= 0"),
    ('{"reason": 3}', "`reason` must be a string"),
])
def test_malformed_control_file_is_one_clear_error(tmp_path: Path, text: str,
                                                   message: str) -> None:
    path = tmp_path / "control.json"
    path.write_text(text)
    with pytest.raises(GateError, match=message) as info:
        read_control(path)
    assert str(path) in str(info.value) and isinstance(info.value, GreenEpochError)
    assert write_control(path, pause=True).seq == 1  # the supervisor replaces it


def test_a_broken_control_file_does_not_stop_the_training(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    gate = Gate(path)
    write_control(path, pause=True)
    assert gate.should_pause()
    path.write_text('{"pause": ')
    with pytest.warns(UserWarning, match="keeping the last control state"):
        assert gate.should_pause()
    write_control(path, pause=False)
    assert not gate.should_pause()


def test_should_pause_sees_every_change_even_within_one_clock_tick(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    gate = Gate(path)
    assert not gate.should_pause()
    for i in range(50):  # writes faster than the file system's timestamps move
        write_control(path, pause=i % 2 == 0)
        assert gate.should_pause() is (i % 2 == 0)
    path.unlink()
    assert not gate.should_pause()


def test_should_pause_reads_the_file_only_when_it_changed(tmp_path: Path,
                                                          monkeypatch) -> None:
    path = tmp_path / "control.json"
    write_control(path, pause=True)
    old = time.time() - 60
    os.utime(path, (old, old))  # past the freshness window
    reads = []
    real = gate_mod.read_control
    monkeypatch.setattr(gate_mod, "read_control", lambda p: reads.append(p) or real(p))
    gate = Gate(path)
    assert all(gate.should_pause() for _ in range(1000))
    assert len(reads) == 1
    write_control(path, pause=False)
    reads.clear()  # write_control read the old seq
    assert not gate.should_pause() and len(reads) == 1


# wait and resume
def test_wait_across_threads(tmp_path: Path) -> None:
    path, progress = tmp_path / "control.json", tmp_path / "progress.json"
    gate = Gate(path, progress, poll_max_s=0.02)
    assert gate.wait() is True  # not paused: at once
    write_control(path, pause=True, reason="high")
    assert gate.should_pause()
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(gate.wait()))
    waiter.start()
    _wait_for(lambda: (gate_mod.read_progress(progress) or {}).get("state") == "paused")
    assert gate_mod.read_progress(progress)["seq"] == 1  # the pause it acknowledges
    time.sleep(0.05)
    assert waiter.is_alive() and not result
    write_control(path, pause=False)
    waiter.join(timeout=10)
    assert result == [True]
    assert gate_mod.read_progress(progress)["state"] == "running"

    write_control(path, pause=True)
    waiter = threading.Thread(target=lambda: result.append(gate.wait()))
    waiter.start()
    time.sleep(0.05)
    write_control(path, pause=True, stop=True)
    waiter.join(timeout=10)
    assert result == [True, False]  # stop: checkpoint and exit


def test_wait_timeout(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    write_control(path, pause=True, reason="intensity 412 > 380")
    gate = Gate(path, poll_max_s=0.01)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="412 > 380"):
        gate.wait(timeout=0.1)
    assert time.monotonic() - start < 5


_CHILD = textwrap.dedent("""
    import sys, time
    from greenepoch.planner.run.gate import Gate
    gate = Gate.from_env(report_every_s=0, poll_max_s=0.02)
    print("resume", gate.resume, "segment", gate.segment, gate.checkpoint_dir, flush=True)
    for step in range(1, 10**6):
        gate.report(step=step, total=10**6)
        if gate.should_pause():
            print("paused at", step, flush=True)
            if not gate.wait():
                print("stopped", flush=True)
                sys.exit(0)
            print("resumed", flush=True)
        time.sleep(0.002)
""")


def test_wait_and_resume_across_processes(tmp_path: Path) -> None:
    control, progress = tmp_path / "control.json", tmp_path / "progress.json"
    env = os.environ | {"GREENEPOCH_GATE": str(control), "GREENEPOCH_PROGRESS": str(progress),
                        "GREENEPOCH_RESUME": "1", "GREENEPOCH_SEGMENT": "2",
                        "GREENEPOCH_CHECKPOINT_DIR": str(tmp_path / "ck")}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def step() -> int:
            return (gate_mod.read_progress(progress) or {}).get("step") or 0

        _wait_for(lambda: step() > 5)
        write_control(control, pause=True)
        _wait_for(lambda: (gate_mod.read_progress(progress) or {}).get("state") == "paused")
        frozen = step()
        time.sleep(0.2)
        assert step() == frozen and proc.poll() is None  # paused, alive
        write_control(control, pause=False)
        _wait_for(lambda: step() > frozen + 5)
        write_control(control, stop=True)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == f"resume True segment 2 {tmp_path / 'ck'}"
    assert lines[1:3] == [f"paused at {frozen}", "resumed"]
    assert lines[3].startswith("paused at") and lines[4] == "stopped"
    record = gate_mod.read_progress(progress)
    assert record["segment"] == 2 and record["pid"] == proc.pid


# progress
def test_progress_writes_are_atomic(tmp_path: Path) -> None:
    progress = tmp_path / "progress.json"
    gate = Gate(None, progress, report_every_s=0)
    done = threading.Event()
    bad: list[str] = []
    seen: list[int] = []

    def reader() -> None:
        while not done.is_set():
            try:
                text = progress.read_text()
            except FileNotFoundError:
                continue
            try:
                seen.append(json.loads(text)["step"])
            except ValueError:
                bad.append(text)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for step in range(1, 101):
            gate.report(step=step, total=100)
    finally:
        done.set()
        thread.join()
    assert not bad and seen and seen == sorted(seen)
    record = gate_mod.read_progress(progress)
    assert record["progress"] == 1 and record["step"] == 100 and record["total"] == 100
    assert record["time"].endswith("Z") and record["state"] == "running"


def test_progress_is_rate_limited_and_flushed(tmp_path: Path) -> None:
    progress = tmp_path / "progress.json"
    gate = Gate(None, progress, report_every_s=3600)
    gate.report(0.1)
    gate.report(0.2)
    gate.report(0.3)
    assert gate_mod.read_progress(progress)["progress"] == 0.1  # the first only
    gate.flush()
    assert gate_mod.read_progress(progress)["progress"] == 0.3
    gate.report(0.4, force=True)
    assert gate_mod.read_progress(progress)["progress"] == 0.4
    gate.report(step=10, total=10)  # the end is never held back
    assert gate_mod.read_progress(progress)["progress"] == 1.0
    with pytest.raises(ValueError, match=r"`progress` must lie in \[0, 1\], found 1.5"):
        gate.report(1.5)


def test_read_progress_tolerates_what_is_not_there(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    assert gate_mod.read_progress(path) is None
    path.write_text("[]")
    assert gate_mod.read_progress(path) is None
    path.write_text('{"progress": 7, "step": 3}')
    assert gate_mod.read_progress(path) == {"progress": None, "step": 3}


# the environment
def test_outside_a_supervisor_the_gate_never_pauses(tmp_path: Path, monkeypatch) -> None:
    for var in ("GREENEPOCH_GATE", "GREENEPOCH_PROGRESS", "GREENEPOCH_CHECKPOINT_DIR",
                "GREENEPOCH_RESUME", "GREENEPOCH_SEGMENT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    gate = Gate.from_env()
    assert not gate.supervised and not gate.should_pause() and gate.wait() is True
    assert (gate.resume, gate.checkpoint_dir, gate.segment) == (False, None, 0)
    gate.report(step=1, total=2, force=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("var", "value", "message"), [
    ("GREENEPOCH_RESUME", "yes", r"\$GREENEPOCH_RESUME must be 0 or 1, found 'yes'"),
    ("GREENEPOCH_SEGMENT", "-1", r"\$GREENEPOCH_SEGMENT must be an integer >= 0"),
])
def test_bad_environment(var: str, value: str, message: str) -> None:
    with pytest.raises(GateError, match=message):
        Gate.from_env({var: value})


# the checkpoint signal (restart mode)
def test_the_signal_makes_the_training_checkpoint_and_end(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    gate = Gate(path)
    previous = gate.install_signal_handler(signal.SIGUSR1)
    try:
        assert not gate.should_pause() and not gate.signalled
        os.kill(os.getpid(), signal.SIGUSR1)
        _wait_for(lambda: gate.signalled)
        assert gate.should_pause() and gate.should_stop()
        start = time.monotonic()
        assert gate.wait() is False
        assert time.monotonic() - start < 1
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_the_signal_ends_a_wait_in_progress(tmp_path: Path) -> None:
    """A training paused in process and then sent the signal: wait returns False."""
    path = tmp_path / "control.json"
    write_control(path, pause=True)
    gate = Gate(path, poll_max_s=0.02)
    previous = gate.install_signal_handler(signal.SIGUSR2)
    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR2))
    try:
        timer.start()
        assert gate.wait(timeout=10) is False
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR2, previous)


def test_the_gate_imports_nothing_heavy() -> None:
    """It runs inside the user's training: importing it loads no numpy, pandas or torch
    (run.md's layering rule), checked in a fresh interpreter."""
    code = ("import sys, greenepoch.planner.run.gate; "
            "print(' '.join(m for m in ('numpy', 'pandas', 'torch', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == ""
