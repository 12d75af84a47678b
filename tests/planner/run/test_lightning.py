"""The PyTorch Lightning adapter (planner/run/lightning.py) on a tiny model built here (no
downloads), in a real training process: paused mid-training through the control file, a
checkpoint saved at the pause, resumed; stopped by the checkpoint signal, restarted with
GREENEPOCH_RESUME=1 from that checkpoint, and the training completes."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from greenepoch.planner.run.gate import read_progress, write_control


def _require(module: str) -> None:
    """Skip without ``module`` (found, not imported: the training imports it), except in
    CI (GREENEPOCH_REQUIRE_SERVICES=1), where it fails."""
    if importlib.util.find_spec(module) is None:
        if os.environ.get("GREENEPOCH_REQUIRE_SERVICES"):
            pytest.fail(f"GREENEPOCH_REQUIRE_SERVICES is set but {module} is not installed "
                        "(the test extra installs it)")
        pytest.skip(f"{module} is not installed: pip install 'greenepoch[{module}]'")


_require("lightning")
torch = pytest.importorskip("torch")

STEPS = 40

_TRAIN = textwrap.dedent(f"""
    import time
    import torch
    import lightning.pytorch as L
    from torch.utils.data import DataLoader, TensorDataset
    from greenepoch.planner.run.gate import Gate
    from greenepoch.planner.run.lightning import GreenEpochCallback

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            time.sleep(0.03)
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    callback = GreenEpochCallback(Gate.from_env(report_every_s=0, poll_max_s=0.02))
    trainer = L.Trainer(max_steps={STEPS}, callbacks=[callback], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", devices=1)
    print("resuming from", callback.ckpt_path, flush=True)
    trainer.fit(Tiny(), data, ckpt_path=callback.ckpt_path)
    print(f"end step={{trainer.global_step}} stopped={{callback.stopped}} "
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


def _saved_step(path: Path) -> int:
    return int(torch.load(path, weights_only=False)["global_step"])


@pytest.mark.slow
def test_paused_saved_resumed_stopped_and_restarted(tmp_path: Path) -> None:
    control, progress = tmp_path / "control.json", tmp_path / "progress.json"
    ckpt = tmp_path / "checkpoints" / "greenepoch.ckpt"
    script = tmp_path / "train.py"
    script.write_text(_TRAIN)
    env = os.environ | {"GREENEPOCH_GATE": str(control), "GREENEPOCH_PROGRESS": str(progress),
                        "GREENEPOCH_CHECKPOINT_DIR": str(ckpt.parent),
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
        assert ckpt.exists() and _saved_step(ckpt) == at  # saved at the pause
        time.sleep(0.3)
        assert _progress(progress)["step"] == at  # and not training
        write_control(control, pause=False)
        _wait_for(lambda: (_progress(progress).get("step") or 0) >= at + 8, proc)
        proc.send_signal(signal.SIGUSR1)  # restart mode's checkpoint signal
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert "resuming from None" in out and "stopped=True pauses=1" in out, out
        stopped_at = int(out.split("end step=")[1].split()[0])
        assert at + 8 <= stopped_at < STEPS and _saved_step(ckpt) == stopped_at

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
    assert f"resuming from {ckpt}" in out
    assert f"end step={STEPS} stopped=False pauses=0" in out, out
    record = json.loads(progress.read_text())
    assert record["progress"] == 1 and record["segment"] == 1


def test_a_missing_framework_names_the_extra(tmp_path: Path) -> None:
    """Without lightning the import fails with the pip command to run."""
    blocker = tmp_path / "lightning.py"
    blocker.write_text("raise ImportError('not here')\n")
    code = ("from greenepoch.planner.run import lightning\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": str(tmp_path)}, timeout=60)
    assert proc.returncode == 1
    assert "pip install 'greenepoch[lightning]'" in proc.stderr
