"""The run directory of ``greenepoch run``: one supervisor at a time, and what it must
remember to continue after being killed.

Layout (every JSON file is replaced atomically through
:func:`greenepoch.data.atomic.write_atomic`: a reader sees the old file or the new one)::

    DIR/supervisor.lock   flock of the supervisor running this run; holds its pid
    DIR/state.json        State: phase, segment, the child's pid and start ticks, ...
    DIR/checkpoints/      the training's default GREENEPOCH_CHECKPOINT_DIR
    DIR/run.jsonl         the run log (planner/run/log.py)
    DIR/progress.json     the training's progress (written by the gate)
    DIR/control.json      the in-process mode's control file (read by the gate)
    DIR/exit.json         the exit status of the last training process (the shim)

The lock is an advisory ``flock``: the kernel drops it when its holder exits however it
ends (SIGKILL included), so a dead supervisor never blocks the next one, and its file
descriptor is not inherited by the training (Python opens it close-on-exec), so a
training that outlives its supervisor does not hold it either.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.atomic import write_atomic
from greenepoch.data.errors import GreenEpochError, param
from greenepoch.planner.run.clock import SimAnchor
from greenepoch.planner.run.gate import read_progress

KIND = "greenepoch-run-state"
VERSION = 1
PHASES = ("new", "running", "pausing", "paused", "done", "failed", "stopped")


class RunDirError(GreenEpochError):
    """The run directory is in use by another supervisor, or its state file is not one
    this version of GreenEpoch wrote."""


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _time_or_none(value: object, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    if not isinstance(value, pd.Timestamp) or value.tzinfo is None:
        raise RunDirError(f"state field '{name}' must be a tz-aware UTC time or None, "
                          f"found {value!r}")
    return value.tz_convert("UTC")


@dataclass
class State:
    """What a supervisor needs to continue a run it did not start.

    Attributes
    ----------
    run_id : str
        Names the run (kept across supervisor restarts).
    phase : str
        new | running | pausing | paused | done | failed | stopped; ``pausing``: the
        checkpoint signal is (being) sent, so an exit 0 is a checkpoint, not done.
    segment : int
        The segment of the last training process started (GREENEPOCH_SEGMENT).
    child_pid, child_start_ticks : int or None
        The training's shim process and its start time (``/proc/<pid>/stat`` field 22)
        while one may be running, else None: a pid is adopted only when both match.
    restarts : int
        Restarts after a training exited non-zero on its own.
    sim_anchor : SimAnchor or None
        The simulated clock's anchor (``--simulate``), None on real time.
    done_gpu_h, energy_kwh, emissions_kg : float
        Work done (GPU-hours), energy (kWh) and emissions (kg CO2eq) so far.
    last_decision : Timestamp or None
        The (simulated) time of the last decision.
    accounted : Timestamp or None
        The (simulated) time up to which energy, emissions and work are charged (a
        supervisor started again charges a training it adopts from there).
    since : Timestamp or None
        The (simulated) time the current phase began (minimum run and pause lengths).
    policy : str
        The policy's name.
    argv : list of str
        The training command.
    """

    run_id: str
    phase: str = "new"
    segment: int = 0
    child_pid: int | None = None
    child_start_ticks: int | None = None
    restarts: int = 0
    sim_anchor: SimAnchor | None = None
    done_gpu_h: float = 0.0
    energy_kwh: float = 0.0
    emissions_kg: float = 0.0
    last_decision: pd.Timestamp | None = None
    accounted: pd.Timestamp | None = None
    since: pd.Timestamp | None = None
    policy: str = ""
    argv: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.run_id, str) or not self.run_id:
            raise RunDirError(f"state field 'run_id' must be a non-empty string, "
                              f"found {self.run_id!r}")
        if self.phase not in PHASES:
            raise RunDirError(f"state field 'phase' must be one of {', '.join(PHASES)}, "
                              f"found {self.phase!r}")
        for name in ("segment", "restarts"):
            if not _count(getattr(self, name)):
                raise RunDirError(f"state field '{name}' must be a whole number >= 0, "
                                  f"found {getattr(self, name)!r}")
        if (self.child_pid is None) != (self.child_start_ticks is None) or not all(
                v is None or (_count(v) and v > 0)
                for v in (self.child_pid, self.child_start_ticks)):
            raise RunDirError(f"state field 'child_pid' and state field 'child_start_ticks' must "
                              f"be whole numbers > 0 given together, or both None; found "
                              f"{self.child_pid!r} and {self.child_start_ticks!r}")
        for name in ("done_gpu_h", "energy_kwh", "emissions_kg"):
            if not _number(getattr(self, name)) or getattr(self, name) < 0:
                raise RunDirError(f"state field '{name}' must be a finite number >= 0, "
                                  f"found {getattr(self, name)!r}")
        if self.sim_anchor is not None and not isinstance(self.sim_anchor, SimAnchor):
            raise RunDirError(f"state field 'sim_anchor' must be a SimAnchor or None, "
                              f"found {self.sim_anchor!r}")
        self.last_decision = _time_or_none(self.last_decision, "last_decision")
        self.accounted = _time_or_none(self.accounted, "accounted")
        self.since = _time_or_none(self.since, "since")
        if not isinstance(self.policy, str):
            raise RunDirError(f"state field 'policy' must be a string, found {self.policy!r}")
        if not isinstance(self.argv, list) or not all(isinstance(a, str) for a in self.argv):
            raise RunDirError(f"state field 'argv' must be a list of strings, found {self.argv!r}")

    @classmethod
    def new(cls, policy: str, argv: list[str]) -> State:
        """A new run's state, with a fresh ``run_id`` (UTC start time and 6 random hex)."""
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
        return cls(run_id=f"{stamp}-{secrets.token_hex(3)}", policy=policy, argv=list(argv))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": KIND, "version": VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, pd.Timestamp):
                value = value.isoformat()
            elif isinstance(value, SimAnchor):
                value = value.to_json()
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, raw: object) -> State:
        """The state :meth:`to_json` wrote; :class:`RunDirError` or ValueError otherwise."""
        if not isinstance(raw, dict) or raw.get("kind") != KIND:
            kind = raw.get("kind") if isinstance(raw, dict) else type(raw).__name__
            raise ValueError(f"not a run state (kind {kind!r}, expected {KIND!r})")
        if raw.get("version") != VERSION:
            raise ValueError(f"state version {raw.get('version')!r}; this GreenEpoch reads "
                             f"version {VERSION} (written by another GreenEpoch version?)")
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k not in ("kind", "version")}
        if unknown := sorted(set(values) - names):
            raise ValueError(f"unknown fields {', '.join(unknown)}")
        for name in ("last_decision", "accounted", "since"):
            if values.get(name) is not None:
                values[name] = pd.Timestamp(values[name])
        if values.get("sim_anchor") is not None:
            values["sim_anchor"] = SimAnchor.from_json(values["sim_anchor"])
        return cls(**values)


class RunLock:
    """This process's hold on a run directory; :meth:`release` (or the end of a ``with``
    block, or the process's end) gives it up."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd: int | None = fd
        self.path = path

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor drops the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunDir:
    """The folder of one run (the paths above); nothing is created until :meth:`lock`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path / "supervisor.lock"
        self.state_path = self.path / "state.json"
        self.checkpoints = self.path / "checkpoints"
        self.log_path = self.path / "run.jsonl"
        self.progress_path = self.path / "progress.json"
        self.control_path = self.path / "control.json"
        self.exit_path = self.path / "exit.json"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def lock(self) -> RunLock:
        """Create the folder (and ``checkpoints/``) and lock it for this process, or
        refuse with one error naming the pid of the supervisor that holds it."""
        import fcntl  # POSIX only, as is the rest of process control

        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)  # close-on-exec
        except OSError as exc:
            raise RunDirError(f"{self.path}: cannot create the run directory or its lock "
                              f"({exc.strerror or exc}); give a {param('run_dir')} you can "
                              "write to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise RunDirError(
                f"{self.path}: another supervisor (pid {holder}) is running this run; "
                f"wait for it to end, stop it (kill -TERM {holder}: it checkpoints the "
                f"training first), or give another {param('run_dir')}") from None
        except BaseException:
            os.close(fd)
            raise
        lock = RunLock(fd, self.lock_path)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except BaseException:
            lock.release()
            raise
        return lock

    def save(self, state: State) -> None:
        """Replace ``state.json`` atomically."""
        write_atomic(self.state_path, json.dumps(state.to_json(), indent=1) + "\n")

    def load(self) -> State | None:
        """The saved state; None when this run directory has none (a new run)."""
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unreadable(str(exc)) from None
        try:
            return State.from_json(json.loads(text))
        except (ValueError, TypeError, RunDirError) as exc:  # JSONDecodeError is a ValueError
            raise self._unreadable(str(exc)) from None

    def _unreadable(self, why: str) -> RunDirError:
        return RunDirError(
            f"{self.state_path}: not a GreenEpoch run state ({why}); only `greenepoch run` "
            f"writes it: move it away to start a new run there, or give another "
            f"{param('run_dir')}")

    def progress(self) -> dict[str, Any] | None:
        """The training's last progress report (see :func:`.gate.read_progress`), or None
        when it reported none.  A file that is not a JSON object is None too: a training
        writing its own must not stop the supervisor."""
        return read_progress(self.progress_path)
