"""Process control with real processes (tests/support/run_children.py): the pause protocol
(checkpoint signal, SIGTERM, SIGKILL), the environment, the shim's exit status, restarts
with backoff, and a restarted supervisor adopting the training a killed one started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import run_children
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.run.process import (
    CLEAN,
    EXITED,
    KILL,
    TERM,
    Child,
    RestartPolicy,
    Training,
    running,
)
from greenepoch.planner.run.shim import proc_stat
from greenepoch.planner.run.state import RunDir, State

CHILD = str(Path(run_children.__file__))
WAIT_S = 30.0  # the longest any process of these tests may take to start (a loaded CI)


def _cmd(mode: str, folder: Path, n: int | None = None) -> list[str]:
    return [sys.executable, CHILD, mode, str(folder), *([] if n is None else [str(n)])]


def _session(sid: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()
            and (stat := proc_stat(int(p))) is not None and stat[1] == sid
            and stat[0] not in "ZX"]


def running_pid(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat[0] not in "ZX"


@pytest.fixture
def sessions() -> Iterator[list[int]]:
    """Session ids (shim pids) the test started: every process in them is killed at the
    end, whatever the outcome."""
    started: list[int] = []
    yield started
    for sid in started:
        for pid in _session(sid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "marks"
    out.mkdir()
    return out


def _until(check, what: str, timeout: float = WAIT_S):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)
    return found


def _ready(folder: Path, count: int = 1) -> list[int]:
    """Pids of the children that have installed their handlers (at least ``count``)."""
    def pids() -> list[int]:
        found = [int(p.name.split("-")[1]) for p in folder.glob("ready-*")]
        return found if len(found) >= count else []
    return _until(pids, f"{count} ready child(ren) in {folder}")


def _start(sessions: list[int], training: Training, segment: int = 0,
           resume: bool = False) -> Child:
    child = training.start(segment, resume)
    sessions.append(child.pid)
    return child


def _training(tmp_path: Path, argv: list[str], **kw: object) -> Training:
    run = RunDir(tmp_path / "run")
    return Training(argv, run, checkpoint_dir=run.checkpoints, **kw)  # type: ignore[arg-type]


def test_pause_ends_cleanly_on_the_checkpoint_signal(tmp_path: Path, folder: Path,
                                                      sessions: list[int]) -> None:
    training = _training(tmp_path, _cmd("obey", folder), grace_s=20, term_grace_s=5)
    _start(sessions, training)
    assert training.alive and training.poll() is None
    [pid] = _ready(folder)
    ended = training.pause()
    assert (ended.how, ended.returncode) == (CLEAN, 0)
    assert ended.seconds < 10  # not the grace period
    assert (folder / f"checkpoint-{pid}").exists()
    assert not training.alive and training.child is None and training.poll() == 0
    assert training.pause().how == EXITED  # nothing left to pause


def test_a_training_deaf_to_the_signal_gets_sigterm_after_the_grace(
        tmp_path: Path, folder: Path, sessions: list[int]) -> None:
    training = _training(tmp_path, _cmd("termable", folder), grace_s=0.5, term_grace_s=20)
    _start(sessions, training)
    _ready(folder)
    ended = training.pause()
    assert (ended.how, ended.returncode) == (TERM, -signal.SIGTERM)
    assert 0.5 <= ended.seconds < 10


def test_a_training_deaf_to_both_is_killed_with_its_whole_session(
        tmp_path: Path, folder: Path, sessions: list[int]) -> None:
    training = _training(tmp_path, _cmd("deaf", folder), grace_s=0.3, term_grace_s=0.3)
    _start(sessions, training)
    [pid] = _ready(folder)
    ended = training.pause()
    assert (ended.how, ended.returncode) == (KILL, -signal.SIGKILL)
    assert 0.6 <= ended.seconds < 10
    assert not running_pid(pid)
    assert _session(sessions[0]) == []


def test_the_process_group_gets_the_signal(tmp_path: Path, folder: Path,
                                            sessions: list[int]) -> None:
    """CMD and the worker it started both get the checkpoint signal (as torchrun's
    workers would) and both checkpoint."""
    training = _training(tmp_path, _cmd("parent", folder), grace_s=20)
    _start(sessions, training)
    pids = _ready(folder, 2)
    grandchild = int((folder / "grandchild").read_text())
    assert grandchild in pids
    ended = training.pause()
    assert (ended.how, ended.returncode) == (CLEAN, 0)
    assert sorted(int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*")) == \
        sorted(pids)
    assert _session(sessions[0]) == []


def test_workers_left_behind_are_ended_before_the_status(tmp_path: Path, folder: Path,
                                                         sessions: list[int]) -> None:
    """CMD exits at once leaving a worker: the shim waits for it (``grace_s``), then
    kills it, so no training process outlives the status a supervisor reads."""
    training = _training(tmp_path, _cmd("orphan", folder), grace_s=0.5)
    began = time.monotonic()
    _start(sessions, training)
    code = _until(lambda: training.poll() is not None and [training.poll()],
                  "the orphaning training to end")
    assert code == [0] and time.monotonic() - began >= 0.5
    grandchild = int((folder / "grandchild").read_text())
    assert not running_pid(grandchild)
    assert _session(sessions[0]) == []


def test_the_environment_of_the_training(tmp_path: Path, folder: Path,
                                         sessions: list[int]) -> None:
    run = RunDir(tmp_path / "run")
    base = dict(os.environ, GREENEPOCH_GATE="/stale/control.json", OTHER="kept")
    for gate, segment, resume in ((False, 0, False), (True, 4, True)):
        training = Training(_cmd("obey", folder), run, checkpoint_dir=tmp_path / "ck",
                            env=base, gate=gate, grace_s=20)
        _start(sessions, training, segment, resume)
        [pid] = _ready(folder)
        env = json.loads((folder / f"env-{pid}.json").read_text())
        assert env["GREENEPOCH_RESUME"] == ("1" if resume else "0")
        assert env["GREENEPOCH_SEGMENT"] == str(segment)
        assert env["GREENEPOCH_CHECKPOINT_DIR"] == str((tmp_path / "ck").absolute())
        assert env["GREENEPOCH_RUN_DIR"] == str(run.path.absolute())
        assert env["GREENEPOCH_PROGRESS"] == str(run.progress_path.absolute())
        if gate:
            assert env["GREENEPOCH_GATE"] == str(run.control_path.absolute())
        else:  # an inherited control file must not switch the training to in-process mode
            assert "GREENEPOCH_GATE" not in env
        assert (tmp_path / "ck").is_dir()
        assert training.pause().how == CLEAN
        (folder / f"ready-{pid}").unlink()


def test_one_training_process_at_a_time(tmp_path: Path, folder: Path,
                                        sessions: list[int]) -> None:
    training = _training(tmp_path, _cmd("obey", folder), grace_s=20)
    _start(sessions, training)
    with pytest.raises(GreenEpochError, match=r"a training process \(pid \d+\) is running"):
        training.start(1, True)
    _ready(folder)
    other = _training(tmp_path, _cmd("obey", folder))
    with pytest.raises(GreenEpochError, match="runs a training process already"):
        training.adopt(sessions[0], 1)
    assert other.adopt(sessions[0], training.child.start_ticks).status == "running"  # type: ignore[union-attr]
    assert training.pause().how == CLEAN
    assert _until(lambda: not other.alive, "the adopter to see the end")


def test_exit_statuses_through_the_shim(tmp_path: Path, folder: Path,
                                        sessions: list[int]) -> None:
    for argv, expected in ((_cmd("exit", folder, 7), 7),
                           (_cmd("die", folder, int(signal.SIGUSR2)), -signal.SIGUSR2),
                           ([str(tmp_path / "no-such-program")], 127)):
        training = _training(tmp_path, argv)
        _start(sessions, training)
        assert _until(lambda t=training: t.poll() is not None, "the exit") is True  # type: ignore[misc]
        assert training.poll() == expected and training.status_known
        status = json.loads((tmp_path / "run" / "exit.json").read_text())
        assert status["returncode"] == expected and status["shim_pid"] == sessions[-1]


def test_the_shim_ends_like_its_command(tmp_path: Path, folder: Path) -> None:
    shim = [sys.executable, "-m", "greenepoch.planner.run.shim", "--status",
            str(tmp_path / "exit.json"), "--"]
    died = subprocess.run([*shim, *_cmd("die", folder, int(signal.SIGUSR2))],
                          timeout=WAIT_S, check=False)
    assert died.returncode == -signal.SIGUSR2
    exited = subprocess.run([*shim, *_cmd("exit", folder, 5)], timeout=WAIT_S, check=False)
    assert exited.returncode == 5
    assert json.loads((tmp_path / "exit.json").read_text())["returncode"] == 5
    usage = subprocess.run(shim, timeout=WAIT_S, check=False, capture_output=True, text=True)
    assert usage.returncode == 2 and "no command given" in usage.stderr


def test_restarts_with_backoff_then_success_or_giving_up(tmp_path: Path, folder: Path,
                                                         sessions: list[int]) -> None:
    """The restart loop a supervisor runs for a training that exits non-zero on its own."""
    assert [RestartPolicy().delay(n) for n in range(4)] == [10.0, 20.0, 40.0, None]

    def run(crashes: int, policy: RestartPolicy) -> tuple[list[int], list[float]]:
        (folder / "crashes").unlink(missing_ok=True)
        training = _training(tmp_path, _cmd("crash", folder, crashes))
        codes: list[int] = []
        waits: list[float] = []
        _start(sessions, training, 0, False)
        while True:
            _until(lambda: training.poll() is not None, "the exit")
            codes.append(training.poll())  # type: ignore[arg-type]
            delay = policy.delay(len(waits))
            if codes[-1] == 0 or delay is None:
                return codes, waits
            began = time.monotonic()
            time.sleep(delay)
            waits.append(time.monotonic() - began)
            _start(sessions, training, len(codes), True)

    codes, waits = run(2, RestartPolicy(max_restarts=3, backoff_s=0.05, factor=2))
    assert codes == [3, 3, 0] and waits[0] >= 0.05 and waits[1] >= 0.1
    codes, waits = run(5, RestartPolicy(max_restarts=2, backoff_s=0.01))
    assert codes == [3, 3, 3] and len(waits) == 2  # two restarts, then it gives up


def test_restart_policy_refuses_bad_parameters() -> None:
    for kw, name in (({"max_restarts": -1}, "max_restarts"), ({"backoff_s": -1}, "backoff_s"),
                     ({"factor": 0.5}, "factor"), ({"max_restarts": 1.5}, "max_restarts")):
        with pytest.raises(GreenEpochError, match=f"{name}` must be|RestartPolicy {name} must"):
            RestartPolicy(**kw)  # type: ignore[arg-type]


def test_training_refuses_bad_parameters(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    for argv in ([], "python train.py", [1]):
        with pytest.raises(GreenEpochError, match="the training command must be a non-empty list"):
            Training(argv, run, checkpoint_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(GreenEpochError, match="`checkpoint_signal` cannot be SIGKILL"):
        Training(["x"], run, checkpoint_dir=tmp_path, checkpoint_signal=signal.SIGKILL)
    with pytest.raises(GreenEpochError, match="Training grace_s must be a number of seconds"):
        Training(["x"], run, checkpoint_dir=tmp_path, grace_s=-1)


def test_adopt_after_the_training_object_is_forgotten(tmp_path: Path, folder: Path,
                                                      sessions: list[int]) -> None:
    """A supervisor gone (its Training object dropped): another one rebuilt from the
    state adopts the running training, and pauses it by its signal."""
    first = _training(tmp_path, _cmd("obey", folder), grace_s=20)
    _start(sessions, first)
    child = first.child
    assert child is not None
    run = RunDir(tmp_path / "run")
    state = State.new("threshold", first.argv)
    state.child_pid, state.child_start_ticks = child.pid, child.start_ticks
    run.save(state)
    del first
    [pid] = _ready(folder)
    saved = run.load()
    assert saved is not None
    second = Training(saved.argv, run, checkpoint_dir=run.checkpoints, grace_s=20)
    assert second.adopt(saved.child_pid, saved.child_start_ticks).status == "running"  # type: ignore[arg-type]
    assert second.alive and second.child == child
    ended = second.pause()
    assert (ended.how, ended.returncode) == (CLEAN, 0)
    assert (folder / f"checkpoint-{pid}").exists()


def test_a_training_that_ended_meanwhile_is_not_adopted_but_its_status_read(
        tmp_path: Path, folder: Path, sessions: list[int]) -> None:
    first = _training(tmp_path, _cmd("exit", folder, 5))
    child = _start(sessions, first)
    _until(lambda: not running(child), "the exit")
    second = _training(tmp_path, _cmd("exit", folder, 5))
    adoption = second.adopt(child.pid, child.start_ticks)
    assert (adoption.status, adoption.returncode) == ("exited", 5)
    assert not second.alive and second.poll() == 5


def test_a_dead_or_reused_pid_is_never_adopted(tmp_path: Path, folder: Path,
                                               sessions: list[int]) -> None:
    training = _training(tmp_path, _cmd("obey", folder), grace_s=20)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert training.adopt(dead.pid, 1).status == "gone"
    me = proc_stat(os.getpid())
    assert me is not None  # a live process with the right start ticks, but not a shim
    assert training.adopt(os.getpid(), me[2]).status == "gone"
    other = _training(tmp_path, _cmd("obey", folder), grace_s=20)
    _start(sessions, other)
    child = other.child
    assert child is not None
    # the pid of a live shim, with other start ticks: a process that reused the pid
    assert training.adopt(child.pid, child.start_ticks + 1).status == "gone"
    assert not training.alive
    training.pause()  # nothing to pause: the other process is untouched
    assert other.alive
    _ready(folder)
    assert other.pause().how == CLEAN


SUPERVISE = """
import sys, time
from greenepoch.planner.run.process import Training
from greenepoch.planner.run.state import RunDir, State
run = RunDir(sys.argv[1])
lock = run.lock()
training = Training(sys.argv[2:], run, checkpoint_dir=run.checkpoints, grace_s=20)
child = training.start(0, False)
state = State.new("threshold", sys.argv[2:])
state.phase, state.child_pid, state.child_start_ticks = "running", child.pid, child.start_ticks
run.save(state)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_supervisor_killed_by_sigkill_leaves_its_training_reachable(
        tmp_path: Path, folder: Path, sessions: list[int]) -> None:
    """SIGKILL to the supervisor: the training keeps running, the lock is free (the
    training did not inherit it), and the next supervisor adopts and pauses it: one
    training process throughout."""
    run = RunDir(tmp_path / "run")
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISE, str(run.path),
                                   *_cmd("obey", folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert supervisor.stdout is not None
        sessions.append(int(supervisor.stdout.readline()))
        [pid] = _ready(folder)
    finally:
        supervisor.kill()
        supervisor.wait()
    with run.lock():
        state = run.load()
        assert state is not None and state.child_pid == sessions[0]
        training = Training(state.argv, run, checkpoint_dir=run.checkpoints, grace_s=20)
        assert training.adopt(state.child_pid, state.child_start_ticks).status == "running"  # type: ignore[arg-type]
        assert running(training.child)  # type: ignore[arg-type]
        assert list(folder.glob("ready-*")) == [folder / f"ready-{pid}"]
        ended = training.pause()
        assert (ended.how, ended.returncode) == (CLEAN, 0)  # from the shim's status file
        assert training.status_known and (folder / f"checkpoint-{pid}").exists()


def test_a_training_whose_shim_was_killed_is_ended_not_left_running(
        tmp_path: Path, folder: Path, sessions: list[int]) -> None:
    """The shim killed on its own (SIGKILL, the OOM killer): its training has nobody to
    report its status; the next supervisor ends it by the pause protocol (checkpoint
    first) before it may start another, so there is never a second training."""
    first = _training(tmp_path, _cmd("obey", folder), grace_s=20)
    child = _start(sessions, first)
    [pid] = _ready(folder)
    os.kill(child.pid, signal.SIGKILL)
    _until(lambda: not running(child), "the shim's end")
    assert running_pid(pid)
    second = _training(tmp_path, _cmd("obey", folder), grace_s=20)
    adoption = second.adopt(child.pid, child.start_ticks)
    assert (adoption.status, adoption.leftovers) == ("gone", 1)
    assert (folder / f"checkpoint-{pid}").exists() and not running_pid(pid)
    assert _session(child.pid) == []


def test_a_test_child_left_behind_ends_on_its_own(folder: Path) -> None:
    """A child a failing test never stops (here one deaf to SIGUSR1 and SIGTERM) ends
    after its lifetime, so no test leaves a process running for good."""
    child = subprocess.Popen(_cmd("deaf", folder),
                             env={**os.environ, "RUN_CHILDREN_LIFETIME_S": "1"})
    try:
        assert child.wait(10) == -signal.SIGALRM
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
