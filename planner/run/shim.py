"""The shim between the supervisor and the training:
``python -m greenepoch.planner.run.shim --status FILE [--linger S] -- CMD ARGS...``.

The supervisor starts the shim in a new session; the shim starts CMD in a process group
of its own (CMD's pid is its group id), forwards every signal it receives among
:data:`FORWARDED` to that whole group (a torchrun and all its workers get it), and when
CMD exits:

1. waits up to ``--linger`` seconds for the rest of CMD's group (workers CMD left
   behind) to exit, then kills what is left, so no training process outlives its
   status;
2. writes CMD's exit status to FILE atomically, as JSON: ``{"kind":
   "greenepoch-run-exit", "shim_pid", "shim_start_ticks", "cmd_pid", "returncode",
   "time"}`` (``returncode`` as :mod:`subprocess` gives it: negative for a signal);
3. ends the same way as CMD (the same exit code, or the same signal).

A supervisor killed with SIGKILL leaves the shim running: the next supervisor finds it
by pid and start ticks (state.json), signals it, and reads FILE when it has ended, as
it is no longer its parent.  A CMD that cannot be started is status 127 (not found) or
126 (not executable).  Standard library only (it starts with every training segment).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from greenepoch.data.atomic import write_atomic

EXIT_KIND = "greenepoch-run-exit"

#: the signals the shim passes on to CMD's process group (SIGKILL and SIGSTOP cannot be
#: caught: the supervisor sends SIGKILL to the whole session instead)
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGTERM, signal.SIGALRM, signal.SIGCONT)

_PR_SET_CHILD_SUBREAPER = 36


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, session id, start ticks)`` of process ``pid`` from ``/proc/<pid>/stat``
    (fields 3, 6 and 22), or None when there is no such process.  The start time, in
    clock ticks since boot, tells a process from a later one given the same pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    rest = raw.rsplit(b")", 1)[1].split()  # the command name may hold spaces and ')'
    return rest[0].decode("ascii"), int(rest[3]), int(rest[19])


def _become_subreaper() -> None:
    """Adopt the orphans of CMD's workers (Linux), so :func:`_group_alive` sees them
    reaped rather than as zombies nobody waits for."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _group_alive(pgid: int) -> bool:
    _reap()
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Forwarder:
    """Signal handler: passes each signal to CMD's group, or keeps it until CMD exists."""

    def __init__(self) -> None:
        self.pgid: int | None = None
        self.pending: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.pgid is None:
            self.pending.append(signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signum)

    def attach(self, pgid: int) -> None:
        self.pgid = pgid
        for signum in self.pending:
            self(signum, None)
        self.pending.clear()


def _run(cmd: list[str], forward: _Forwarder) -> tuple[int, int | None]:
    """Start and wait for CMD: ``(returncode, cmd pid)``."""
    try:
        proc = subprocess.Popen(cmd, process_group=0)
    except OSError as exc:
        print(f"greenepoch run: cannot start {cmd[0]!r}: {exc.strerror or exc}",
              file=sys.stderr, flush=True)
        return (127 if isinstance(exc, FileNotFoundError) else 126), None
    forward.attach(proc.pid)
    return proc.wait(), proc.pid


def _linger(pgid: int, seconds: float) -> None:
    """Wait for what is left of CMD's group to exit, up to ``seconds``; then kill it."""
    end = time.monotonic() + seconds
    while _group_alive(pgid):
        if time.monotonic() >= end:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.05)
            _reap()
            return
        time.sleep(0.02)


def _write_status(path: Path, returncode: int, cmd_pid: int | None) -> None:
    me = proc_stat(os.getpid())
    status = {"kind": EXIT_KIND, "shim_pid": os.getpid(),
              "shim_start_ticks": me[2] if me else None, "cmd_pid": cmd_pid,
              "returncode": returncode, "time": datetime.now(UTC).isoformat()}
    try:
        write_atomic(path, json.dumps(status) + "\n")
    except Exception as exc:  # the run directory went away: still end like CMD
        print(f"greenepoch run: cannot write the exit status {path}: {exc}",
              file=sys.stderr, flush=True)


def _end_like(returncode: int) -> None:
    if returncode < 0:  # CMD died of a signal: so does the shim, for its parent to see
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
            signal.signal(-returncode, signal.SIG_DFL)
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), -returncode)
            time.sleep(1)  # a signal whose default is to be ignored: end by exit code
        sys.exit(128 - returncode)
    sys.exit(returncode)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m greenepoch.planner.run.shim")
    parser.add_argument("--status", required=True, type=Path,
                        help="file to write CMD's exit status to (JSON)")
    parser.add_argument("--linger", type=float, default=10.0,
                        help="seconds CMD's workers may outlive it before they are killed")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given after --")
    forward = _Forwarder()
    for signum in FORWARDED:
        signal.signal(signum, forward)
    _become_subreaper()
    returncode, cmd_pid = _run(cmd, forward)
    if cmd_pid is not None:
        _linger(cmd_pid, max(args.linger, 0.0))
    _write_status(args.status, returncode, cmd_pid)
    _end_like(returncode)


if __name__ == "__main__":
    main()
