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


def test_three_interruptions_resume_bit_identical(tmp_path: Path) -> None:
    straight = _start(["--steps", str(STEPS), "--out", str(tmp_path / "straight.pt")],
                      os.environ | {"GREENEPOCH_CHECKPOINT_DIR": str(tmp_path / "other")})
    interrupted = tmp_path / "interrupted.pt"
    args = ["--steps", str(STEPS), "--out", str(interrupted), "--step-sleep", "0.05"]
    procs = [straight]
    saved: list[int] = []
    try:
        for segment, at in enumerate([7, 16, 29]):
            proc = _start(args, _env(tmp_path, segment, resume=segment > 0))
            procs.append(proc)
            deadline = time.monotonic() + 60
            while _step(tmp_path / "progress.json") < at:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the training made no progress"
                time.sleep(0.01)
            proc.send_signal(signal.SIGUSR1)
            out = _finish(proc)
            assert f"start segment={segment}" in out
            assert "done" not in out  # it stopped early, and saved where it stopped
            saved.append(int(out.split("checkpoint step=")[1].split()[0]))
        last = _start(args, _env(tmp_path, 3, resume=True))
        procs.append(last)
        out = _finish(last)
        assert f"start segment=3 step={saved[-1]}" in out and f"done step={STEPS}" in out
        _finish(straight)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert saved == sorted(set(saved)) and saved[0] > 0 and saved[-1] < STEPS, saved
    a = torch.load(tmp_path / "straight.pt", weights_only=True)
    b = torch.load(interrupted, weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert tiny_train.weights_digest(tmp_path / "straight.pt") == \
        tiny_train.weights_digest(interrupted)


def test_the_digest_sees_one_bit(tmp_path: Path) -> None:
    """The comparison above can fail: one weight moved to the next float changes it."""
    state = {"w": torch.linspace(-1, 1, 12).reshape(3, 4), "b": torch.zeros(3)}
    torch.save(state, tmp_path / "a.pt")
    state["w"][1, 2] = torch.nextafter(state["w"][1, 2], torch.tensor(2.0))
    torch.save(state, tmp_path / "b.pt")
    assert tiny_train.weights_digest(tmp_path / "a.pt") != \
        tiny_train.weights_digest(tmp_path / "b.pt")
