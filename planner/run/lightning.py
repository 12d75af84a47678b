"""``greenepoch run`` for PyTorch Lightning: a Callback that pauses, saves and stops.

    import lightning.pytorch as L
    from greenepoch.planner.run.lightning import GreenEpochCallback

    greenepoch = GreenEpochCallback()
    trainer = L.Trainer(max_steps=10_000, callbacks=[greenepoch])
    trainer.fit(model, ckpt_path=greenepoch.ckpt_path)  # the checkpoint when resuming
    if greenepoch.stopped:                              # saved and asked to end: no
        sys.exit(0)                                     # final export yet

After every training batch the callback reports progress (``global_step`` of
``max_steps``, or of the estimated total) and asks the gate (:mod:`.gate`).  Paused
through the control file (in-process mode), it saves a checkpoint to
``$GREENEPOCH_CHECKPOINT_DIR/greenepoch.ckpt`` (``save_on_pause``) and waits; when the
supervisor asks the training to end (the control file's ``stop``, or the checkpoint
signal SIGUSR1 in restart mode) it saves and sets ``trainer.should_stop``.

Several ranks: each waits on the control file (which must then lie on a file system
every rank sees) and rank 0's decision is broadcast, so all ranks pause at the same
step.  Needs the ``lightning`` package: ``pip install 'greenepoch[lightning]'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from greenepoch.planner.run.gate import GateCallback, missing_extra

try:
    import lightning.pytorch as pl
except ImportError as exc:  # the optional extra
    raise missing_extra("PyTorch Lightning", "lightning", "lightning") from exc

CHECKPOINT = "greenepoch.ckpt"


class GreenEpochCallback(GateCallback, pl.Callback):
    """Pause, checkpoint and stop a Lightning training as the supervisor asks
    (parameters: :class:`~.gate.GateCallback`)."""

    @property
    def checkpoint_path(self) -> Path | None:
        """Where the callback saves (None without a checkpoint folder)."""
        folder = self.gate.checkpoint_dir
        return folder / CHECKPOINT if folder is not None else None

    @property
    def ckpt_path(self) -> str | None:
        """``trainer.fit``'s ``ckpt_path``: the saved checkpoint when the supervisor
        restarted the training ($GREENEPOCH_RESUME=1) and it exists, else None."""
        path = self.checkpoint_path
        return str(path) if self.gate.resume and path is not None and path.exists() else None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.install_signal_handler()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.is_global_zero:
            self._report(trainer)
        if not self._agree(trainer, self.gate.should_pause()):
            return
        stop = self._agree(trainer, self.gate.should_stop())
        if self.save_on_pause or stop:
            self.save(trainer)
        if not stop:
            self.pauses += 1
            stop = self._agree(trainer, not self.gate.wait())
            if stop and not self.save_on_pause:
                self.save(trainer)
        if stop:
            self.stopped = True
            trainer.should_stop = True

    def _report(self, trainer: pl.Trainer) -> None:
        total = trainer.max_steps if trainer.max_steps > 0 else trainer.estimated_stepping_batches
        if 0 < total < float("inf"):
            self.gate.report(step=trainer.global_step, total=int(total))

    @staticmethod
    def _agree(trainer: pl.Trainer, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (ranks must pause at the same step)."""
        if trainer.world_size <= 1:
            return flag
        return bool(trainer.strategy.broadcast(flag, src=0))

    def save(self, trainer: pl.Trainer) -> Path | None:
        """Save a full checkpoint (model, optimisers, loops) to :attr:`checkpoint_path`,
        replacing the last one atomically.  Every rank calls it (Lightning's save is
        collective); without a checkpoint folder nothing is saved."""
        path = self.checkpoint_path
        if path is None:
            return None
        tmp = path.with_name(f".{path.name}.tmp")
        if trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp)  # a barrier inside: the folder exists for every rank
        if trainer.is_global_zero:
            os.replace(tmp, path)
        return path
