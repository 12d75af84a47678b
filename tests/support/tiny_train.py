"""A real tiny PyTorch training for the ``greenepoch run`` tests (CPU, deterministic).

    python tests/support/tiny_train.py --steps 60 --out final.pt [--seed 0]
        [--step-sleep 0.02] [--in-process] [--checkpoint-every K] [--ignore-signal]

A small MLP with dropout (so the RNG state matters) trained with Adam (so the optimiser
state matters) on a synthetic regression set drawn from the seed, in shuffled batches
(so the data position matters).  Everything a step depends on is in the checkpoint:
model, optimiser, the torch RNG, the shuffling generator, the epoch's permutation and
the position in it, and the step.  So a run stopped and resumed any number of times ends
with the same bits as one run straight through (torch.use_deterministic_algorithms, one
thread).

The supervisor's protocol (docs/run.md): ``$GREENEPOCH_CHECKPOINT_DIR`` holds
``tiny.pt``; ``$GREENEPOCH_RESUME=1`` loads it.  Restart mode (default): SIGUSR1 makes
the training save at the end of the current step and exit 0 (``--ignore-signal``
ignores it: a training that the supervisor must terminate; with ``--checkpoint-every K``
it resumes from its last periodic checkpoint and redoes the steps since).  In-process
mode (``--in-process``): at a pause the training saves, then waits in
``gate.wait()``; it exits 0 only when the supervisor asks it to stop (the control
file's ``stop``, or the signal).  Progress goes
through the gate at every step.  At the end the final ``state_dict`` goes to ``--out``
(written atomically) and ``done step=N`` to stdout; each checkpoint prints
``checkpoint step=N``, each start ``start segment=S step=N``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from greenepoch.planner.run.gate import Gate

CHECKPOINT = "tiny.pt"
N_SAMPLES, N_FEATURES, BATCH = 96, 8, 16


def _configure() -> None:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # set once per process; already is
        torch.set_num_interop_threads(1)


def build(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.Tensor,
                              torch.Tensor]:
    """The model, its optimiser and the data set, all from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N_SAMPLES, N_FEATURES, generator=gen)
    w = torch.randn(N_FEATURES, 1, generator=gen)
    y = x @ w + 0.1 * torch.randn(N_SAMPLES, 1, generator=gen)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(N_FEATURES, 16), torch.nn.Tanh(),
                                torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))
    return model, torch.optim.Adam(model.parameters(), lr=1e-2), x, y


class Loader:
    """Shuffled batches with a resumable position (the generator, permutation, index)."""

    def __init__(self, seed: int) -> None:
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.perm = torch.randperm(N_SAMPLES, generator=self.gen)
        self.pos = 0

    def next_indices(self) -> torch.Tensor:
        if self.pos + BATCH > N_SAMPLES:  # a new epoch: a new permutation
            self.perm = torch.randperm(N_SAMPLES, generator=self.gen)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + BATCH]
        self.pos += BATCH
        return idx

    def state(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.perm, self.pos = state["perm"], state["pos"]


def _save(obj: Any, path: Path) -> None:
    """torch.save to ``path`` atomically (a kill mid-save leaves the old file)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(folder: Path, step: int, model: torch.nn.Module,
                    opt: torch.optim.Optimizer, loader: Loader) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _save({"step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
           "rng": torch.get_rng_state(), "loader": loader.state()}, folder / CHECKPOINT)
    print(f"checkpoint step={step}", flush=True)


def load_checkpoint(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
                    loader: Loader) -> int:
    state = torch.load(folder / CHECKPOINT, weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    loader.load(state["loader"])
    return int(state["step"])


def weights_digest(path: str | Path) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes of a saved state_dict."""
    state = torch.load(path, weights_only=True)
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="final state_dict")
    ap.add_argument("--step-sleep", type=float, default=0.0,
                    help="seconds slept per step (stretches the run for a test)")
    ap.add_argument("--in-process", action="store_true",
                    help="pause in gate.wait() instead of exiting on the signal")
    ap.add_argument("--checkpoint-every", type=int, default=0,
                    help="also save every K steps (0: only when asked)")
    ap.add_argument("--ignore-signal", action="store_true",
                    help="ignore SIGUSR1 (the supervisor must terminate it)")
    ap.add_argument("--report-every", type=float, default=0.1,
                    help="least seconds between two progress writes")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _configure()
    gate = Gate.from_env(report_every_s=args.report_every, poll_max_s=0.05)
    folder = gate.checkpoint_dir or args.out.parent / "checkpoints"
    if args.ignore_signal:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    else:  # in-process too: the signal still means "save and exit"
        gate.install_signal_handler(signal.SIGUSR1)

    model, opt, x, y = build(args.seed)
    loader = Loader(args.seed)
    step = 0
    if gate.resume and (folder / CHECKPOINT).exists():
        step = load_checkpoint(folder, model, opt, loader)
    print(f"start segment={gate.segment} step={step}", flush=True)
    gate.report(step=step, total=args.steps, force=True)

    model.train()
    while step < args.steps:
        idx = loader.next_indices()
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        step += 1
        gate.report(step=step, total=args.steps)
        if args.step_sleep:
            time.sleep(args.step_sleep)
        if step == args.steps:
            break
        if args.checkpoint_every and step % args.checkpoint_every == 0:
            save_checkpoint(folder, step, model, opt, loader)
        if gate.should_pause():
            save_checkpoint(folder, step, model, opt, loader)
            if not gate.wait():
                return 0

    args.out.parent.mkdir(parents=True, exist_ok=True)
    _save(model.state_dict(), args.out)
    print(f"done step={step}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
