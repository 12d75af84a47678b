"""The training side of ``greenepoch run``: pause in process, report progress.

A training loop asks the gate at each step whether to pause, and waits while paused::

    from greenepoch.planner.run import gate as greenepoch_gate

    gate = greenepoch_gate.Gate.from_env()
    gate.install_signal_handler()            # restart mode: SIGUSR1 asks for a checkpoint
    if gate.resume:
        load_checkpoint(gate.checkpoint_dir)
    for step in range(start, total):
        train_one_step()
        gate.report(step=step + 1, total=total)
        if gate.should_pause():
            save_checkpoint(gate.checkpoint_dir)
            if not gate.wait():              # the supervisor wants the process to end
                sys.exit(0)

Two files carry the protocol, both JSON, both replaced atomically (a reader sees the old
content or the new, never half of it):

- the control file (``$GREENEPOCH_GATE``), written by the supervisor through
  :func:`write_control`: ``{"pause": bool, "stop": bool, "seq": int, "reason": str}``.
  ``seq`` grows by one at each write.  No file means run.  ``stop`` means: checkpoint
  and exit 0 (the supervisor is shutting down or switches to restart mode).
- the progress file (``$GREENEPOCH_PROGRESS``), written by :meth:`Gate.report`:
  ``{"progress": 0.42, "step": 420, "total": 1000, "time": ISO UTC, "state":
  "running"|"paused", "seq": last control seq seen, "segment": n, "pid": pid}``; read
  with :func:`read_progress`.

Without ``$GREENEPOCH_GATE`` (restart mode, or no supervisor) the gate never pauses on
a control file; without ``$GREENEPOCH_PROGRESS`` (no supervisor) it reports nothing, so
the same script runs unchanged on its own.  A checkpoint signal received
(:meth:`Gate.install_signal_handler`) makes :meth:`Gate.should_pause` true and
:meth:`Gate.wait` return False at once: in restart mode the supervisor waits for the
process to exit.

This module imports the standard library only (it runs inside the user's training).
"""

from __future__ import annotations

import json
import os
import signal
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from greenepoch.data.atomic import write_atomic
from greenepoch.data.errors import GreenEpochError, param

#: the variables the supervisor sets for the training (docs/run.md)
ENV_GATE = "GREENEPOCH_GATE"
ENV_PROGRESS = "GREENEPOCH_PROGRESS"
ENV_CHECKPOINT_DIR = "GREENEPOCH_CHECKPOINT_DIR"
ENV_RESUME = "GREENEPOCH_RESUME"
ENV_SEGMENT = "GREENEPOCH_SEGMENT"

#: a file whose modification time is younger than this is read again even when its
#: stat looks unchanged: two writes within one tick of the file system's clock can leave
#: the same size, time and (reused) inode
_FRESH_S = 1.0


class GateError(GreenEpochError):
    """The gate's environment or files are malformed (a variable, the control file)."""


class MissingExtraError(GreenEpochError, ImportError):
    """An adapter's framework is not installed; the message names the extra to install."""


def missing_extra(framework: str, module: str, extra: str) -> MissingExtraError:
    """The error an adapter raises when ``module`` (of ``framework``) cannot be imported."""
    return MissingExtraError(f"the {framework} adapter needs the '{module}' package, which is "
                             f"not installed: pip install 'greenepoch[{extra}]'")


@dataclass(frozen=True)
class Control:
    """What the supervisor asks of an in-process training (the control file)."""

    pause: bool = False
    stop: bool = False
    seq: int = 0
    reason: str = ""

    @classmethod
    def from_json(cls, text: str, where: str) -> Control:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise GateError(f"{where}: not JSON ({exc}); the supervisor writes it with "
                            "write_control") from exc
        if not isinstance(raw, dict):
            raise GateError(f"{where}: expected a JSON object, found {type(raw).__name__}")
        pause, stop = raw.get("pause", False), raw.get("stop", False)
        seq, reason = raw.get("seq", 0), raw.get("reason", "")
        if not isinstance(pause, bool) or not isinstance(stop, bool):
            raise GateError(f"{where}: {param('pause')} and {param('stop')} must be true or "
                            f"false, found {pause!r} and {stop!r}")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise GateError(f"{where}: {param('seq')} must be an integer >= 0, found {seq!r}")
        if not isinstance(reason, str):
            raise GateError(f"{where}: {param('reason')} must be a string, found {reason!r}")
        return cls(pause=pause, stop=stop, seq=seq, reason=reason)


def read_control(path: str | Path) -> Control:
    """The control file at ``path``; a missing file is "run" (seq 0)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Control()
    return Control.from_json(text, str(path))


def write_control(path: str | Path, *, pause: bool = False, stop: bool = False,
                  reason: str = "") -> Control:
    """Replace the control file at ``path`` atomically (the supervisor's side).

    ``seq`` is the previous file's plus one, so a training sees every change.  A
    malformed previous file is replaced (its seq restarts from 1)."""
    try:
        previous = read_control(path).seq
    except GateError:
        previous = 0
    control = Control(pause=bool(pause), stop=bool(stop), seq=previous + 1, reason=reason)
    write_atomic(path, json.dumps(asdict(control)) + "\n")
    return control


def read_progress(path: str | Path) -> dict[str, Any] | None:
    """The progress file at ``path`` (the supervisor's side), or None if there is none
    yet or it is not a JSON object.  ``progress`` is a float in [0, 1] or None."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    value = raw.get("progress")
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raw["progress"] = None
    return raw


def _utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Gate:
    """The in-process gate of one training process.

    Parameters
    ----------
    control : path of the control file, or None (never pause on it).
    progress : path of the progress file, or None (report nothing).
    checkpoint_dir, resume, segment : as the supervisor set them.
    report_every_s : least time between two progress writes (the last value is kept
        and written by :meth:`flush`, on pausing and at progress 1).
    poll_max_s : longest sleep between two looks at the control file while paused.
    """

    def __init__(self, control: str | Path | None = None, progress: str | Path | None = None,
                 *, checkpoint_dir: str | Path | None = None, resume: bool = False,
                 segment: int = 0, report_every_s: float = 1.0,
                 poll_max_s: float = 0.25) -> None:
        if report_every_s < 0 or poll_max_s <= 0:
            raise ValueError(f"{param('report_every_s')} must be >= 0 and "
                             f"{param('poll_max_s')} > 0, found {report_every_s!r} and "
                             f"{poll_max_s!r}")
        self._control_path = Path(control) if control else None
        self._progress_path = Path(progress) if progress else None
        self._checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self._resume = resume
        self._segment = segment
        self._report_every_s = report_every_s
        self._poll_max_s = poll_max_s
        self._control = Control()
        self._stat_key: tuple[int, int, int, int] | None = None
        self._warned: str | None = None
        self._signalled = False
        self._pending: dict[str, Any] | None = None
        self._last_write = float("-inf")
        self._state = "running"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **options: Any) -> Gate:
        """The gate the supervisor set up through the environment (module docstring);
        outside a supervisor, a gate that never pauses.  ``options`` as for the class."""
        env = os.environ if environ is None else environ
        resume = env.get(ENV_RESUME, "0").strip() or "0"
        if resume not in ("0", "1"):
            raise GateError(f"${ENV_RESUME} must be 0 or 1, found {resume!r}")
        segment = env.get(ENV_SEGMENT, "0").strip() or "0"
        if not segment.isdigit():
            raise GateError(f"${ENV_SEGMENT} must be an integer >= 0, found {segment!r}")
        return cls(env.get(ENV_GATE) or None, env.get(ENV_PROGRESS) or None,
                   checkpoint_dir=env.get(ENV_CHECKPOINT_DIR) or None,
                   resume=resume == "1", segment=int(segment), **options)

    # what the supervisor said at the start
    @property
    def resume(self) -> bool:
        """True when the training must load its checkpoint ($GREENEPOCH_RESUME=1)."""
        return self._resume

    @property
    def checkpoint_dir(self) -> Path | None:
        """Where to save and load checkpoints ($GREENEPOCH_CHECKPOINT_DIR), or None."""
        return self._checkpoint_dir

    @property
    def segment(self) -> int:
        """The n-th start of this run, from 0 ($GREENEPOCH_SEGMENT)."""
        return self._segment

    @property
    def supervised(self) -> bool:
        """True when a supervisor's control file is configured."""
        return self._control_path is not None

    @property
    def control(self) -> Control:
        """The control file's content as last read."""
        return self._control

    @property
    def signalled(self) -> bool:
        """True once the checkpoint signal arrived (see :meth:`install_signal_handler`)."""
        return self._signalled

    # the checkpoint signal (restart mode)
    def install_signal_handler(self, signum: int = signal.SIGUSR1) -> Any:
        """Catch ``signum`` (the supervisor's checkpoint signal): from then on
        :meth:`should_pause` is True and :meth:`wait` returns False.  Call it from the
        main thread; returns the previous handler."""

        def _handler(_signum: int, _frame: FrameType | None) -> None:
            # only a flag (no lock: a handler taking a lock the interrupted code holds
            # would deadlock); the training checks it between steps
            self._signalled = True

        return signal.signal(signum, _handler)

    # the control file (in-process mode)
    def _refresh(self) -> Control:
        """Re-read the control file when its stat changed (one os.stat per call)."""
        if self._control_path is None:
            return self._control
        try:
            st = os.stat(self._control_path)
        except FileNotFoundError:
            self._stat_key = None
            self._control = Control(seq=self._control.seq)
            return self._control
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key == self._stat_key and time.time() - st.st_mtime > _FRESH_S:
            return self._control
        try:
            self._control = read_control(self._control_path)
            self._warned = None
        except GateError as exc:
            # a foreign or broken writer must not kill a training: keep the last state
            if self._warned != str(exc):
                warnings.warn(f"{exc}; keeping the last control state", stacklevel=3)
                self._warned = str(exc)
        except FileNotFoundError:
            pass
        self._stat_key = key
        return self._control

    def should_pause(self) -> bool:
        """True when the training should pause now (paused or asked to stop by the
        control file, or the checkpoint signal arrived).  Cheap: call it every step."""
        if self._signalled:
            return True
        control = self._refresh()
        return control.pause or control.stop

    def should_stop(self) -> bool:
        """True when the training should checkpoint and exit (stop or the signal)."""
        return self._signalled or self._refresh().stop

    def wait(self, timeout: float | None = None) -> bool:
        """Block while paused.  Returns True to carry on training, False when the
        supervisor asks the process to end (save a checkpoint and exit 0).

        Polls the control file with a sleep growing to ``poll_max_s``.  ``timeout``
        (seconds) bounds the wait: TimeoutError if still paused then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        sleep = 0.005
        paused = False
        try:
            while True:
                if self.should_stop():
                    return False
                if not self._control.pause:
                    return True
                if not paused:  # tell the supervisor the pause took effect
                    paused = True
                    self._state = "paused"
                    self.flush()
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"still paused after {timeout} s "
                                       f"({self._control.reason or 'no reason given'})")
                time.sleep(sleep)
                sleep = min(sleep * 2, self._poll_max_s)
        finally:
            if paused:
                self._state = "running"
                self.flush()

    # progress
    def report(self, progress: float | None = None, step: int | None = None,
               total: int | None = None, *, force: bool = False) -> None:
        """Report the training's progress: ``progress`` in [0, 1], or ``step`` of
        ``total``.  Written at most every ``report_every_s`` (always with ``force`` or
        at progress 1); a no-op outside a supervisor."""
        if progress is None and step is not None and total:
            progress = step / total
        if progress is not None and not 0 <= progress <= 1:
            raise ValueError(f"{param('progress')} must lie in [0, 1], found {progress!r} "
                             f"(step {step!r} of {total!r})")
        self._pending = {"progress": progress, "step": step, "total": total}
        now = time.monotonic()
        if force or progress == 1 or now - self._last_write >= self._report_every_s:
            self.flush()

    def flush(self) -> None:
        """Write the last reported progress now (and the gate's state)."""
        if self._progress_path is None:
            return
        record = dict(self._pending or {"progress": None, "step": None, "total": None})
        record.update(time=_utcnow(), state=self._state, seq=self._control.seq,
                      segment=self._segment, pid=os.getpid())
        write_atomic(self._progress_path, json.dumps(record) + "\n")
        self._last_write = time.monotonic()


class GateCallback:
    """What the framework adapters (:mod:`.lightning`, :mod:`.hf`) share: the gate they
    ask, whether to save before waiting at a pause, the checkpoint signal they catch,
    and what happened (``stopped``, ``pauses``).

    Parameters
    ----------
    gate : the gate to ask; default ``Gate.from_env()``.
    save_on_pause : save a checkpoint before waiting at a pause (a machine lost while
        paused then loses nothing); a stop always saves.
    signum : the checkpoint signal to catch (restart mode), or None to leave it alone.
    """

    def __init__(self, gate: Gate | None = None, *, save_on_pause: bool = True,
                 signum: int | None = signal.SIGUSR1) -> None:
        self.gate = gate if gate is not None else Gate.from_env()
        self.save_on_pause = save_on_pause
        self.signum = signum
        self.stopped = False  # True once the training saved and stopped on request
        self.pauses = 0

    def install_signal_handler(self) -> None:
        """Catch :attr:`signum` (call it as the training starts, on the main thread)."""
        if self.signum is not None:
            self.gate.install_signal_handler(self.signum)
