"""The tiny training of the run tests, alone: stopped by its checkpoint signal three times
and resumed, it ends bit-identical to a run straight through (tests/support/tiny_train.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import tiny_train  # noqa: E402  (tests/support, after the torch check)
from greenepoch.planner.run.gate import read_progress, write_control  # noqa: E402

SCRIPT = Path(tiny_train.__file__)
STEPS = 40


def _env(tmp: Path, segment: int, resume: bool) -> dict[str, str]:
    return os.environ | {
        "GREENEPOCH_CHECKPOINT_DIR": str(tmp / "checkpoints"),
        "GREENEPOCH_PROGRESS": str(tmp / "progress.json"),
        "GREENEPOCH_RESUME": "1" if resume else "0",
        "GREENEPOCH_SEGMENT": str(segment),
    }


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _step(progress: Path) -> int:
    try:
        return int(json.loads(progress.read_text())["step"])
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        return -1


def _finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The final weights of one run straight through."""
    folder = tmp_path_factory.mktemp("straight")
    proc = _start(["--steps", str(STEPS), "--out", str(folder / "straight.pt")],
                  os.environ | {"GREENEPOCH_CHECKPOINT_DIR": str(folder / "checkpoints")})
    try:
        out = _finish(proc)
    finally:
        _kill([proc])
    assert "checkpoint" not in out and f"done step={STEPS}" in out
    return folder / "straight.pt"


def _kill(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_step(proc: subprocess.Popen[str], progress: Path, at: int) -> None:
    deadline = time.monotonic() + 60
    while _step(progress) < at:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the training made no progress"
        time.sleep(0.01)


def _assert_identical(straight: Path, other: Path) -> None:
    a = torch.load(straight, weights_only=True)
    b = torch.load(other, weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert tiny_train.weights_digest(straight) == tiny_train.weights_digest(other)


@pytest.mark.slow
def test_three_interruptions_resume_bit_identical(tmp_path: Path, straight: Path) -> None:
    interrupted = tmp_path / "interrupted.pt"
    args = ["--steps", str(STEPS), "--out", str(interrupted), "--step-sleep", "0.05"]
    procs: list[subprocess.Popen[str]] = []
    saved: list[int] = []
    try:
        for segment, at in enumerate([7, 16, 29]):
            proc = _start(args, _env(tmp_path, segment, resume=segment > 0))
            procs.append(proc)
            _wait_step(proc, tmp_path / "progress.json", at)
            proc.send_signal(signal.SIGUSR1)
            out = _finish(proc)
            assert f"start segment={segment}" in out
            assert "done" not in out  # it stopped early, and saved where it stopped
            saved.append(int(out.split("checkpoint step=")[1].split()[0]))
        last = _start(args, _env(tmp_path, 3, resume=True))
        procs.append(last)
        out = _finish(last)
        assert f"start segment=3 step={saved[-1]}" in out and f"done step={STEPS}" in out
    finally:
        _kill(procs)
    assert saved == sorted(set(saved)) and saved[0] > 0 and saved[-1] < STEPS, saved
    _assert_identical(straight, interrupted)


@pytest.mark.slow
def test_in_process_pauses_then_a_stop_resume_bit_identical(tmp_path: Path,
                                                           straight: Path) -> None:
    """--in-process: two pauses through the control file (the process waits, saving at
    each), a stop (it exits 0), a restart: the same bits again."""
    control, progress = tmp_path / "control.json", tmp_path / "progress.json"
    out_path = tmp_path / "in_process.pt"
    args = ["--steps", str(STEPS), "--out", str(out_path), "--step-sleep", "0.05",
            "--in-process"]
    env = _env(tmp_path, 0, resume=False) | {"GREENEPOCH_GATE": str(control)}
    procs: list[subprocess.Popen[str]] = []
    try:
        proc = _start(args, env)
        procs.append(proc)
        for at in (6, 15):
            _wait_step(proc, progress, at)
            write_control(control, pause=True)
            deadline = time.monotonic() + 60
            while (read_progress(progress) or {}).get("state") != "paused":
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.2)
            assert proc.poll() is None  # waiting, not exited
            write_control(control, pause=False)
        _wait_step(proc, progress, 24)
        write_control(control, stop=True)
        out = _finish(proc)
        steps = [int(line.split("=")[1]) for line in out.splitlines()
                 if line.startswith("checkpoint step=")]
        assert len(steps) == 3 and steps == sorted(set(steps)) and "done" not in out, out
        write_control(control)  # a supervisor clears the stop before it restarts
        proc = _start(args, _env(tmp_path, 1, resume=True) | {"GREENEPOCH_GATE": str(control)})
        procs.append(proc)
        out = _finish(proc)
        assert f"start segment=1 step={steps[-1]}" in out and f"done step={STEPS}" in out
    finally:
        _kill(procs)
    _assert_identical(straight, out_path)


def test_the_digest_sees_one_bit(tmp_path: Path) -> None:
    """The comparison above can fail: one weight moved to the next float changes it."""
    state = {"w": torch.linspace(-1, 1, 12).reshape(3, 4), "b": torch.zeros(3)}
    torch.save(state, tmp_path / "a.pt")
    state["w"][1, 2] = torch.nextafter(state["w"][1, 2], torch.tensor(2.0))
    torch.save(state, tmp_path / "b.pt")
    assert tiny_train.weights_digest(tmp_path / "a.pt") != \
        tiny_train.weights_digest(tmp_path / "b.pt")
