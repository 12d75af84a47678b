"""Process control of the training: start, pause by its checkpoint signal, watch, adopt.

One :class:`Training` runs one training process at a time.  Each start runs the
training command CMD through the shim (:mod:`.shim`), in a new session:

* the shim starts CMD in a process group of its own and forwards the signals it gets
  to that whole group, so a ``torchrun`` and every worker it started receive the
  checkpoint signal (each must handle it, or ignore it and let ``torchrun`` pass it on);
* a pause sends the checkpoint signal, waits ``grace_s`` (wall seconds, also under
  ``--simulate``) for CMD to exit, then sends SIGTERM, waits ``term_grace_s``, then
  kills every process of the session with SIGKILL;
* the shim writes CMD's exit status to ``exit.json`` in the run directory, so a
  supervisor that was killed (SIGKILL) and started again, no longer the parent, learns
  how the training ended; while it still runs, the new supervisor adopts it by the pid
  and start ticks saved in state.json (:meth:`Training.adopt`): a pid reused by another
  process has other start ticks and is never mistaken for the training.

Exit codes are as :mod:`subprocess` gives them: negative for a signal.  POSIX only
(Linux's ``/proc`` identifies processes).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from greenepoch.data.errors import GreenEpochError, param
from greenepoch.planner.run.shim import EXIT_KIND, proc_stat
from greenepoch.planner.run.state import RunDir

#: how a pause ended: the checkpoint signal, SIGTERM or SIGKILL ended the training, or it
#: had already exited before the pause
CLEAN, TERM, KILL, EXITED = "clean", "term", "kill", "exited"

_POLL_S = 0.02
#: a process SIGKILL cannot end within this long is stuck in the kernel (state D)
_KILL_WAIT_S = 10.0


@dataclass(frozen=True)
class Child:
    """A training process as state.json keeps it: the shim's pid and start ticks."""

    pid: int
    start_ticks: int


@dataclass(frozen=True)
class Ended:
    """How a pause ended: ``how`` (clean | term | kill | exited), CMD's exit code, and
    the wall seconds from the checkpoint signal to the training's end."""

    how: str
    returncode: int | None
    seconds: float


@dataclass(frozen=True)
class Adoption:
    """What a restarted supervisor found of the training state.json names: ``running``
    (adopted: it is now this :class:`Training`'s process), ``exited`` (with its exit
    code, from the shim's status file), or ``gone`` (no such process and no status).

    ``leftovers`` counts the processes of a training whose shim was killed on its own
    (SIGKILL, the OOM killer): :meth:`Training.adopt` ends them by the pause protocol,
    as they cannot be watched without it and a new start would make two trainings."""

    status: str
    returncode: int | None = None
    leftovers: int = 0


@dataclass(frozen=True)
class RestartPolicy:
    """Restarts of a training that exits non-zero on its own: wait ``backoff_s``, then
    ``factor`` times longer at each next restart, at most ``max_restarts`` times."""

    max_restarts: int = 3
    backoff_s: float = 10.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int) \
                or self.max_restarts < 0:
            raise GreenEpochError(f"{param('max_restarts')} must be a whole number >= 0, "
                                  f"found {self.max_restarts!r}")
        for name, low in (("backoff_s", 0.0), ("factor", 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < low:
                raise GreenEpochError(f"RestartPolicy {name} must be a number >= {low:g}, "
                                      f"found {value!r}")

    def delay(self, restarts: int) -> float | None:
        """Wall seconds to wait before the next restart, when ``restarts`` were made
        already; None: give up."""
        if restarts >= self.max_restarts:
            return None
        return float(self.backoff_s * self.factor ** restarts)


def _is_shim(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"greenepoch.planner.run.shim" in fh.read()
    except OSError:
        return False


def running(child: Child) -> bool:
    """True while ``child`` is this very process (same start ticks) and not a zombie."""
    stat = proc_stat(child.pid)
    return stat is not None and stat[2] == child.start_ticks and stat[0] not in "ZXx"


def session_members(child: Child) -> list[int]:
    """The live processes of ``child``'s session (the shim's, CMD's and any worker's,
    unless one left it with setsid), even after the shim ended.  Empty when the pid now
    belongs to another process: its session is not ours (the kernel reuses a pid only
    once no process has it as session id, so members of ours are never mistaken)."""
    leader = proc_stat(child.pid)
    if leader is not None and leader[2] != child.start_ticks:
        return []
    return [int(p) for p in os.listdir("/proc") if p.isdigit()
            and (stat := proc_stat(int(p))) is not None and stat[1] == child.pid
            and stat[0] not in "ZXx"]


def _signal_session(child: Child, sig: int) -> None:
    for _ in range(5 if sig == signal.SIGKILL else 1):  # again, for processes forked
        members = session_members(child)               # during the scan
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if sig == signal.SIGKILL:
            time.sleep(_POLL_S)


class Training:
    """The training command, started and paused through the shim (module docstring).

    Parameters
    ----------
    argv : sequence of str
        The training command CMD and its arguments.
    run_dir : RunDir or path
        The run directory (the shim's status file, progress and control files).
    checkpoint_dir : path
        GREENEPOCH_CHECKPOINT_DIR of the training (created at start).
    checkpoint_signal : signal
        Asks the training to checkpoint and exit 0 (SIGUSR1).
    grace_s, term_grace_s : float
        Wall seconds a pause waits after the checkpoint signal, then after SIGTERM.
    env : mapping, optional
        The training's base environment (None: the supervisor's); the GREENEPOCH_
        variables are set over it.
    gate : bool
        In-process mode: GREENEPOCH_GATE names the control file the supervisor writes.
    """

    def __init__(self, argv: Sequence[str], run_dir: RunDir | str | Path, *,
                 checkpoint_dir: str | Path,
                 checkpoint_signal: signal.Signals | int = signal.SIGUSR1,
                 grace_s: float = 120.0, term_grace_s: float = 30.0,
                 env: Mapping[str, str] | None = None, gate: bool = False) -> None:
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise GreenEpochError(f"the training command must be a non-empty list of strings, "
                                  f"found {argv!r}")
        for name, value in (("grace_s", grace_s), ("term_grace_s", term_grace_s)):
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise GreenEpochError(f"Training {name} must be a number of seconds >= 0, "
                                      f"found {value!r}")
        try:
            self.checkpoint_signal = signal.Signals(checkpoint_signal)
        except ValueError:
            raise GreenEpochError(f"{param('checkpoint_signal')}: {checkpoint_signal!r} is "
                                  "not a signal; use e.g. SIGUSR1") from None
        if self.checkpoint_signal in (signal.SIGKILL, signal.SIGSTOP):
            raise GreenEpochError(f"{param('checkpoint_signal')} cannot be "
                                  f"{self.checkpoint_signal.name}: a training cannot catch "
                                  "it to checkpoint; use e.g. SIGUSR1")
        self.argv = list(argv)
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.grace_s, self.term_grace_s = float(grace_s), float(term_grace_s)
        self.env = env
        self.gate = gate
        self._child: Child | None = None
        self._popen: subprocess.Popen[bytes] | None = None  # None for an adopted child
        self._returncode: int | None = None
        self.status_known = True  # False: the child vanished without a status file

    @property
    def child(self) -> Child | None:
        """The running training's shim (pid and start ticks), None when none runs."""
        return self._child if self.alive else None

    @property
    def alive(self) -> bool:
        return self._child is not None and self.poll() is None

    def environment(self, segment: int, resume: bool) -> dict[str, str]:
        """The training's environment for its ``segment``-th start."""
        env = dict(os.environ if self.env is None else self.env)
        env.pop("GREENEPOCH_GATE", None)  # a variable inherited must not switch modes
        env.update({
            "GREENEPOCH_RESUME": "1" if resume else "0",
            "GREENEPOCH_CHECKPOINT_DIR": str(self.checkpoint_dir.absolute()),
            "GREENEPOCH_SEGMENT": str(segment),
            "GREENEPOCH_RUN_DIR": str(self.run_dir.path.absolute()),
            "GREENEPOCH_PROGRESS": str(self.run_dir.progress_path.absolute()),
        })
        if self.gate:
            env["GREENEPOCH_GATE"] = str(self.run_dir.control_path.absolute())
        return env

    def start(self, segment: int, resume: bool) -> Child:
        """Start the training's ``segment``-th process; refused while one runs.  A
        supervisor that finds a child in state.json adopts it (:meth:`adopt`) first."""
        if self.alive:
            assert self._child is not None
            raise GreenEpochError(f"a training process (pid {self._child.pid}) is running "
                                  "already; pause it before starting another")
        if isinstance(segment, bool) or not isinstance(segment, int) or segment < 0:
            raise GreenEpochError(f"the segment number must be a whole number >= 0, "
                                  f"found {segment!r}")
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.exit_path.unlink(missing_ok=True)  # never read a previous one's status
        # -P: a folder named greenepoch in the working directory must not shadow ours
        shim = [sys.executable, "-P", "-m", "greenepoch.planner.run.shim",
                "--status", str(self.run_dir.exit_path.absolute()),
                "--linger", repr(self.grace_s), "--", *self.argv]
        popen = subprocess.Popen(shim, env=self.environment(segment, resume),
                                 start_new_session=True, stdin=subprocess.DEVNULL)
        stat = proc_stat(popen.pid)  # readable: not reaped before we wait for it
        assert stat is not None, f"no /proc entry for our own child {popen.pid}"
        self._popen, self._child = popen, Child(popen.pid, stat[2])
        self._returncode, self.status_known = None, True
        return self._child

    def adopt(self, pid: int, start_ticks: int) -> Adoption:
        """Take over the training a previous supervisor started (state.json's pid and
        start ticks): keep it running and watch it, or learn how it ended."""
        if self.alive:
            raise GreenEpochError("this supervisor runs a training process already; "
                                  "adopt the previous one before starting another")
        child = Child(pid, start_ticks)
        if running(child) and _is_shim(pid):
            self._child, self._popen, self._returncode = child, None, None
            self.status_known = True
            return Adoption("running")
        leftovers = 0 if running(child) else self._end_leftovers(child)  # not a shim: not ours
        code = self._status(child)
        if code is None:
            return Adoption("gone", None, leftovers)
        self._returncode = code
        return Adoption("exited", code, leftovers)

    def poll(self) -> int | None:
        """None while the training runs; else its exit code (the last one ended)."""
        if self._child is None:
            return self._returncode
        if self._popen is not None:
            if self._popen.poll() is None:
                return None
            fallback: int | None = self._popen.returncode
        elif running(self._child):
            return None
        else:
            fallback = None
        code = self._status(self._child)
        self.status_known = code is not None or fallback is not None
        # the shim ends like CMD; without its status file it was killed with SIGKILL
        self._returncode = code if code is not None else \
            fallback if fallback is not None else -signal.SIGKILL
        self._child, self._popen = None, None
        return self._returncode

    def pause(self) -> Ended:
        """Checkpoint signal, ``grace_s``; SIGTERM, ``term_grace_s``; SIGKILL."""
        began = time.monotonic()
        if not self.alive:
            return Ended(EXITED, self._returncode, 0.0)
        self._send(self.checkpoint_signal)
        how = CLEAN
        if not self._wait(self.grace_s):
            how = TERM
            self._send(signal.SIGTERM)
            if not self._wait(self.term_grace_s):
                how = KILL
                self._kill_session()
                if not self._wait(_KILL_WAIT_S):
                    assert self._child is not None
                    raise GreenEpochError(f"the training (pid {self._child.pid}) survived "
                                          "SIGKILL (stuck in the kernel?); end it and "
                                          "start again")
        return Ended(how, self._returncode, time.monotonic() - began)

    def _send(self, sig: int) -> None:
        child = self._child
        if child is not None and running(child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, sig)  # the shim passes it to CMD's process group

    def _wait(self, seconds: float) -> bool:
        """True once the training ended, within ``seconds``."""
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(seconds)
            return self.poll() is not None
        end = time.monotonic() + seconds
        while self.poll() is None:
            if time.monotonic() >= end:
                return False
            time.sleep(_POLL_S)
        return True

    def _kill_session(self) -> None:
        """SIGKILL every process of the shim's session (CMD's group, anything CMD
        started in other groups, the shim): signals cannot be forwarded then."""
        if self._child is not None:
            _signal_session(self._child, signal.SIGKILL)

    def _end_leftovers(self, child: Child) -> int:
        """End what is left of a training whose shim is gone: the checkpoint signal,
        SIGTERM, SIGKILL to each process, with the pause's waits.  How many there were."""
        found = len(session_members(child))
        if not found:
            return 0
        for sig, seconds in ((self.checkpoint_signal, self.grace_s),
                             (signal.SIGTERM, self.term_grace_s), (signal.SIGKILL, _KILL_WAIT_S)):
            _signal_session(child, sig)
            end = time.monotonic() + seconds
            while session_members(child):
                if time.monotonic() >= end:
                    break
                time.sleep(_POLL_S)
            else:
                return found
        raise GreenEpochError(f"processes of the training (session {child.pid}) survived "
                              "SIGKILL (stuck in the kernel?); end them and start again")

    def _status(self, child: Child) -> int | None:
        """CMD's exit code from the shim's status file, if it is ``child``'s."""
        try:
            raw = json.loads(self.run_dir.exit_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict) or raw.get("kind") != EXIT_KIND \
                or raw.get("shim_pid") != child.pid \
                or raw.get("shim_start_ticks") != child.start_ticks:
            return None
        code = raw.get("returncode")
        return code if isinstance(code, int) and not isinstance(code, bool) else None
