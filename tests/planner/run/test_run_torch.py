"""``greenepoch run`` end to end with a real tiny PyTorch training (tests/support/tiny_train.py)
under accelerated history: paused and resumed by its checkpoint signal, its final weights
bit-identical to a run straight through; the supervisor SIGKILLed and started again (one
training process at any time, the log continuous); a training that ignores the signal
terminated after the grace and resumed from its last periodic checkpoint.

The history is a small export folder with a 3-hour cycle (2 h at 300 g/kWh, 1 h at 460)
replayed at 720x (an hour in 5 s), so each run lasts about 10 s of wall time: longer than
a training process's start (importing torch takes seconds on a loaded machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from source_fixtures import HEADER

torch = pytest.importorskip("torch")

TINY = Path(__file__).parents[2] / "support" / "tiny_train.py"
START = pd.Timestamp("2023-03-01T00:00Z")
LOW, HIGH = 300.0, 460.0


def write_cycle(folder: Path, days: int = 10, zone: str = "DE") -> Path:
    """An export folder whose ``zone`` runs a 3-hour cycle: 2 h LOW, 1 h HIGH."""
    exports = folder / "electricitymaps"
    exports.mkdir(parents=True)
    rows = []
    for i, t in enumerate(pd.date_range(START, periods=days * 24, freq="1h")):
        value = HIGH if i % 3 == 2 else LOW
        rows.append(f"{t.strftime('%Y-%m-%d %H:%M:%S')},X,{zone},{zone},{value:.2f},"
                    f"{value + 40:.2f},50,40,test,false,\n")
    (exports / f"{zone}_2023_hourly.csv").write_text(HEADER + "".join(rows), encoding="utf-8")
    return folder


def supervisor_args(data: Path, run_dir: Path, out: Path, *extra_train: str,
                    steps: int, grace: str = "20s") -> list[str]:
    return [sys.executable, "-m", "greenepoch.planner.cli.main", "run",
            "--zone", "DE", "--threshold", "380", "--min-run", "15min", "--min-pause", "15min",
            "--simulate", "--data", str(data), "--from", "2023-03-06T01:00Z",
            "--fit-until", "2023-03-06T00:00Z",
            "--speed", "720", "--forecast", "persistence", "--run-dir", str(run_dir),
            "--grace", grace, "--term-grace", "5s", "--restart-backoff", "0s", "--",
            sys.executable, str(TINY), "--steps", str(steps), "--step-sleep", "0.1",
            "--out", str(out), *extra_train]


class Supervisor:
    """A ``greenepoch run`` process; killed (its whole session) when the test ends."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)

    def wait(self, timeout: float) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def trainings(marker: str) -> list[int]:
    """Pids of tiny_train processes whose command line has ``marker`` (the shims too
    have it, after their own module: only the python running tiny_train.py counts)."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if len(argv) > 1 and argv[1].endswith(b"tiny_train.py") and state not in "ZX" \
                and marker.encode() in b" ".join(argv):
            found.append(int(pid))
    return found


class Census(threading.Thread):
    """Counts the training processes every 20 ms; ``most`` is the highest count seen."""

    def __init__(self, marker: str) -> None:
        super().__init__(daemon=True)
        self.marker = marker
        self.most = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.most = max(self.most, len(trainings(self.marker)))
            time.sleep(0.02)


def events(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def wait_for(predicate: Any, timeout: float, what: str, sup: Supervisor) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if sup.proc.poll() is not None:
            raise AssertionError(f"the supervisor ended first: {sup.proc.communicate()[0]}")
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, GREENEPOCH_CACHE=str(tmp_path / "cache"), PYTHONHASHSEED="0")


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    """Everything a test starts, ended however the test ends."""
    started: list[Any] = []
    yield started
    for item in started:
        item.kill()


def reference(tmp_path: Path, steps: int, env: dict[str, str]) -> dict[str, Any]:
    """The final weights of the training run straight through (same seed)."""
    out = tmp_path / "straight.pt"
    subprocess.run([sys.executable, str(TINY), "--steps", str(steps), "--out", str(out)],
                   env={k: v for k, v in env.items() if not k.startswith("GREENEPOCH_")
                        or k == "GREENEPOCH_CACHE"},
                   check=True, timeout=120, capture_output=True, cwd=tmp_path)
    return torch.load(out)


def assert_same_weights(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


class Killer:
    """Ends the tiny_train processes of a test by its marker (when a test fails)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def kill(self) -> None:
        for pid in trainings(self.marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)


def test_paused_resumed_killed_supervisor_bit_identical(tmp_path: Path, env: dict[str, str],
                                                        cleanup: list[Any]) -> None:
    steps = 250
    data = write_cycle(tmp_path / "data")
    run_dir, out = tmp_path / "run", tmp_path / "supervised.pt"
    log = run_dir / "run.jsonl"
    args = supervisor_args(data, run_dir, out, steps=steps)
    census = Census(str(out))
    census.start()
    cleanup.append(Killer(str(out)))
    first = Supervisor(args, env)
    cleanup.append(first)
    # SIGKILL the supervisor while the training computes after its second resume
    def computing() -> bool:
        lines = events(log)
        resumes = [i for i, e in enumerate(lines) if e["event"] == "resume"]
        return len(resumes) >= 2 and lines[-1]["state"] == "running" and \
            (lines[-1].get("progress") or 0) > (lines[resumes[-1]].get("progress") or 0)

    wait_for(computing, 240, "the training computing after a second resume", first)
    before = trainings(str(out))
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    after = trainings(str(out))
    assert len(before) == 1 and after == before, (before, after, events(log)[-3:])
    second = Supervisor(args, env)
    cleanup.append(second)
    code, output = second.wait(300)
    census.done.set()
    census.join(5)
    assert code == 0, output
    lines = events(log)
    kinds = [e["event"] for e in lines]
    assert kinds[0] == "supervisor" and kinds[-1] == "done"
    assert kinds.count("supervisor") == 1
    again = [e for e in lines if e["event"] == "restart" and e.get("supervisor")]
    assert len(again) == 1 and "adopted the running training" in again[0]["reason"]
    assert kinds.count("pause") >= 3 and kinds.count("resume") >= 3, kinds
    assert all(e["how"] == "clean" for e in lines if e["event"] == "pause")
    times = [pd.Timestamp(e["time"]) for e in lines]
    assert times == sorted(times)  # one continuous story across both supervisors
    assert census.most == 1  # never two trainings at once
    assert not trainings(str(out))
    assert lines[-1]["emissions_kg"] > 0 and lines[-1]["energy_kwh"] > 0
    # the runs were charged at LOW: the high hours were paused through (an hour's lag)
    assert_same_weights(torch.load(out), reference(tmp_path, steps, env))


def test_ignored_signal_terminated_after_grace_resumes_from_checkpoint(
        tmp_path: Path, env: dict[str, str], cleanup: list[Any]) -> None:
    steps = 150
    data = write_cycle(tmp_path / "data")
    run_dir, out = tmp_path / "run", tmp_path / "supervised.pt"
    cleanup.append(Killer(str(out)))
    sup = Supervisor(supervisor_args(data, run_dir, out, "--ignore-signal",
                                     "--checkpoint-every", "20", steps=steps, grace="1s"),
                     env)
    cleanup.append(sup)
    code, output = sup.wait(300)
    assert code == 0, output
    lines = events(run_dir / "run.jsonl")
    pauses = [e for e in lines if e["event"] == "pause"]
    assert pauses and all(e["how"] == "term" for e in pauses), pauses
    assert all("terminated (SIGTERM) after the 1 s grace" in e["reason"] for e in pauses)
    assert all(1.0 <= e["pause_s"] < 5.0 for e in pauses)
    assert lines[-1]["event"] == "done"
    # resumed from the periodic checkpoints: the steps since were redone, same bits
    starts = [line for line in output.splitlines() if line.startswith("start segment=")]
    assert len(starts) == len(pauses) + 1
    assert all(int(s.split("step=")[1]) % 20 == 0 for s in starts)
    assert_same_weights(torch.load(out), reference(tmp_path, steps, env))


def test_in_process_paused_by_the_gate_bit_identical(tmp_path: Path, env: dict[str, str],
                                                     cleanup: list[Any]) -> None:
    """--in-process: one training process, held in gate.wait() through each pause."""
    steps = 150
    data = write_cycle(tmp_path / "data")
    run_dir, out = tmp_path / "run", tmp_path / "supervised.pt"
    cleanup.append(Killer(str(out)))
    args = supervisor_args(data, run_dir, out, "--in-process", steps=steps)
    at = args.index("--")
    args[at:at] = ["--in-process"]
    args[args.index("--speed") + 1] = "1440"
    sup = Supervisor(args, env)
    cleanup.append(sup)
    code, output = sup.wait(300)
    assert code == 0, output
    lines = events(run_dir / "run.jsonl")
    kinds = [e["event"] for e in lines]
    assert kinds.count("pause") >= 3 and kinds.count("resume") >= 3, kinds
    assert {e["segment"] for e in lines} == {0}  # never restarted
    assert all(e["how"] == "gate" for e in lines if e["event"] == "pause")
    assert kinds[-1] == "done"
    assert_same_weights(torch.load(out), reference(tmp_path, steps, env))
