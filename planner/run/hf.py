"""``greenepoch run`` for Hugging Face Transformers: a TrainerCallback that pauses, saves
and stops.

    from transformers import Trainer, TrainingArguments
    from greenepoch.planner.run.hf import GreenEpochCallback

    greenepoch = GreenEpochCallback()
    args = TrainingArguments(output_dir=greenepoch.checkpoint_dir or "out",
                             save_total_limit=2, ...)
    trainer = Trainer(model, args, train_dataset=data, callbacks=[greenepoch])
    trainer.train(resume_from_checkpoint=greenepoch.resume_checkpoint(args.output_dir))
    if greenepoch.stopped:            # saved and asked to end: no final export yet
        sys.exit(0)

At every optimiser step the callback reports progress (``global_step`` of
``max_steps``) and asks the gate (:mod:`.gate`).  Paused through the control file
(in-process mode), it has the Trainer save a checkpoint (``checkpoint-N`` in
``output_dir``; ``save_on_pause``) and waits once it is written; when the supervisor asks
the training to end (the control file's ``stop``, or the checkpoint signal SIGUSR1 in
restart mode) it saves and sets ``should_training_stop``.  Keep ``output_dir`` on
``$GREENEPOCH_CHECKPOINT_DIR`` so a restarted training finds the checkpoint, and
``save_total_limit`` small: every pause writes one.

Several ranks: each waits on the control file (which must then lie on a file system
every rank sees) and rank 0's decision is broadcast.  Needs ``transformers`` (and its
Trainer's ``accelerate``): ``pip install 'greenepoch[transformers]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenepoch.planner.run.gate import GateCallback, missing_extra

try:
    import transformers
    from transformers.trainer_utils import get_last_checkpoint
except ImportError as exc:  # the optional extra
    raise missing_extra("Hugging Face Transformers", "transformers", "transformers") from exc

_WAIT, _STOP = "wait", "stop"


class GreenEpochCallback(GateCallback, transformers.TrainerCallback):
    """Pause, checkpoint and stop a Transformers ``Trainer`` as the supervisor asks
    (parameters: :class:`~.gate.GateCallback`)."""

    _after_save: str | None = None  # what to do once the Trainer's save is written

    @property
    def checkpoint_dir(self) -> Path | None:
        """$GREENEPOCH_CHECKPOINT_DIR: the ``output_dir`` to give the Trainer."""
        return self.gate.checkpoint_dir

    def resume_checkpoint(self, output_dir: str | Path | None = None) -> str | None:
        """``trainer.train``'s ``resume_from_checkpoint``: the last ``checkpoint-N`` in
        ``output_dir`` (default the checkpoint folder) when the supervisor restarted the
        training ($GREENEPOCH_RESUME=1), else None."""
        folder = output_dir if output_dir is not None else self.checkpoint_dir
        if not self.gate.resume or folder is None or not Path(folder).is_dir():
            return None
        return get_last_checkpoint(str(folder))

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.install_signal_handler()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero and state.max_steps > 0:
            self.gate.report(step=min(state.global_step, state.max_steps),
                             total=state.max_steps)
        if not _agree(args, self.gate.should_pause()):
            return
        stop = _agree(args, self.gate.should_stop())
        if self.save_on_pause or stop:
            control.should_save = True  # the Trainer saves after this callback: wait then
            self._after_save = _STOP if stop else _WAIT
            return
        self._wait(args, control, saved=False)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        pending, self._after_save = self._after_save, None
        if pending == _STOP:
            self._stop(control)
        elif pending == _WAIT:
            self._wait(args, control, saved=True)

    def _wait(self, args: Any, control: Any, *, saved: bool) -> None:
        self.pauses += 1
        if _agree(args, not self.gate.wait()):
            if not saved:  # save now: the Trainer saves after on_step_end
                control.should_save = True
            self._stop(control)

    def _stop(self, control: Any) -> None:
        self.stopped = True
        control.should_training_stop = True


def _agree(args: Any, flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (ranks must pause at the same step)."""
    if getattr(args, "world_size", 1) <= 1:
        return flag
    import torch.distributed as dist  # only with several ranks: torch is there

    if not dist.is_available() or not dist.is_initialized():
        return flag
    box = [flag]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])
