"""The Hugging Face Transformers adapter (planner/run/hf.py): a Trainer on a tiny
nn.Module built here (no downloads, HF_HUB_OFFLINE=1), in a real training process:
paused mid-training through the control file, a checkpoint saved at the pause, resumed;
stopped through the control file, restarted with GREENEPOCH_RESUME=1 from that
checkpoint, and the training completes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from greenepoch.planner.run.gate import read_progress, write_control


def _require(module: str, extra: str = "transformers") -> None:
    """Skip without ``module`` (found, not imported: the training imports it), except in
    CI (GREENEPOCH_REQUIRE_SERVICES=1), where it fails."""
    if importlib.util.find_spec(module) is None:
        if os.environ.get("GREENEPOCH_REQUIRE_SERVICES"):
            pytest.fail(f"GREENEPOCH_REQUIRE_SERVICES is set but {module} is not installed "
                        "(the test extra installs it)")
        pytest.skip(f"{module} is not installed: pip install 'greenepoch[{extra}]'")


_require("transformers")
_require("accelerate")  # the Trainer's
_require("torch", "test")

STEPS = 40

_TRAIN = textwrap.dedent(f"""
    import time
    import torch
    from transformers import Trainer, TrainingArguments
    from greenepoch.planner.run.gate import Gate
    from greenepoch.planner.run.hf import GreenEpochCallback

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def forward(self, x, labels):
            time.sleep(0.03)
            return {{"loss": torch.nn.functional.mse_loss(self.layer(x), labels)}}

    torch.manual_seed(0)
    xs = torch.randn(64, 4)
    data = [{{"x": x, "labels": x.sum(0, keepdim=True)}} for x in xs]
    callback = GreenEpochCallback(Gate.from_env(report_every_s=0, poll_max_s=0.02))
    args = TrainingArguments(output_dir=str(callback.checkpoint_dir), max_steps={STEPS},
                             per_device_train_batch_size=8, learning_rate=0.05,
                             save_strategy="no", logging_strategy="no", report_to="none",
                             use_cpu=True, disable_tqdm=True, remove_unused_columns=False,
                             save_total_limit=2, seed=0)
    trainer = Trainer(model=Tiny(), args=args, train_dataset=data, callbacks=[callback])
    resume = callback.resume_checkpoint(args.output_dir)
    print("resuming from", resume, flush=True)
    trainer.train(resume_from_checkpoint=resume)
    print(f"end step={{trainer.state.global_step}} stopped={{callback.stopped}} "
          f"pauses={{callback.pauses}}", flush=True)
""")


def _wait_for(predicate, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _progress(path: Path) -> dict:
    return read_progress(path) or {}


def _saved_step(folder: Path) -> int:
    """The global step of the last checkpoint-N the Trainer wrote in ``folder``."""
    state = json.loads(max(folder.glob("checkpoint-*/trainer_state.json"),
                           key=lambda p: int(p.parent.name.split("-")[1])).read_text())
    return int(state["global_step"])


@pytest.mark.slow
def test_trainer_paused_saved_resumed_stopped_and_restarted(tmp_path: Path) -> None:
    control, progress = tmp_path / "control.json", tmp_path / "progress.json"
    ckpt = tmp_path / "checkpoints"
    script = tmp_path / "train.py"
    script.write_text(_TRAIN)
    env = os.environ | {"GREENEPOCH_GATE": str(control), "GREENEPOCH_PROGRESS": str(progress),
                        "GREENEPOCH_CHECKPOINT_DIR": str(ckpt),
                        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                        "GREENEPOCH_RESUME": "0", "GREENEPOCH_SEGMENT": "0"}
    procs = []
    try:
        proc = subprocess.Popen([sys.executable, str(script)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        _wait_for(lambda: (_progress(progress).get("step") or 0) >= 8, proc)
        write_control(control, pause=True, reason="intensity 412 > 380")
        _wait_for(lambda: _progress(progress).get("state") == "paused", proc)
        at = _progress(progress)["step"]
        assert _saved_step(ckpt) == at  # saved at the pause
        time.sleep(0.3)
        assert _progress(progress)["step"] == at  # and not training
        write_control(control, pause=False)
        _wait_for(lambda: (_progress(progress).get("step") or 0) >= at + 8, proc)
        write_control(control, stop=True)  # the supervisor ends the run
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert "resuming from None" in out and "stopped=True pauses=1" in out, out
        stopped_at = int(out.split("end step=")[1].split()[0])
        assert at + 8 <= stopped_at < STEPS and _saved_step(ckpt) == stopped_at

        write_control(control)  # the supervisor clears the stop before it restarts
        env |= {"GREENEPOCH_RESUME": "1", "GREENEPOCH_SEGMENT": "1"}
        proc = subprocess.Popen([sys.executable, str(script)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert f"resuming from {ckpt}/checkpoint-{stopped_at}" in out
    assert f"end step={STEPS} stopped=False pauses=0" in out, out
    record = json.loads(progress.read_text())
    assert record["progress"] == 1 and record["segment"] == 1


def test_a_missing_framework_names_the_extra(tmp_path: Path) -> None:
    """Without transformers the import fails with the pip command to run."""
    blocker = tmp_path / "transformers.py"
    blocker.write_text("raise ImportError('not here')\n")
    code = "from greenepoch.planner.run import hf\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": str(tmp_path)}, timeout=60)
    assert proc.returncode == 1
    assert "pip install 'greenepoch[transformers]'" in proc.stderr
