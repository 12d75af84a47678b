"""``greenepoch run`` on the command line: bad input is one error line and exit 2 (before
any process starts), a second supervisor on a run directory refuses, a short run ends
done with its log, and the live source failing mid-run falls back (the log marks it)
while the deadline is met (fake providers on 127.0.0.1, a real training process)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_electricitymaps as fem
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from fake_http import FakeServer, Reply
from greenepoch.planner.cli.main import cli
from greenepoch.planner.run.log import read_log
from greenepoch.planner.run.state import RunDir
from source_fixtures import write_exports

TOKEN = "em-run-token-5c1e"
DOWN = "http://127.0.0.1:9"


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["run", *args])


def _one_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines()
             if line.startswith("greenepoch: error:")]
    assert len(lines) == 1, result.output
    return lines[0]


SIM = ["--simulate", "--from", "2023-03-06T00:00Z"]


@pytest.mark.parametrize(("args", "says"), [
    (["--zone", "DE", "--threshold", "300", "--simulate", "--", "true"],
     "--simulate needs --from TIME"),
    (["--zone", "DE", "--threshold", "300", "--live", *SIM, "--", "true"],
     "--live and --simulate exclude each other"),
    (["--zone", "DE", *SIM, "--", "true"], "--policy threshold needs --threshold G"),
    (["--zone", "DE", "--policy", "plan", *SIM, "--", "true"],
     "--policy plan needs --plan PLAN.json and --job NAME"),
    (["--zone", "DE", "--deadline", "2023-03-07T00:00Z", *SIM, "--", "true"],
     "--policy replan needs --gpu-hours H"),
    (["--zone", "DE", "--threshold", "300", "--", "true"],
     "give --live (the grid now) or --simulate --from TIME"),
    (["--zone", "DE", "--threshold", "300", *SIM], "no training command"),
    (["--zone", "DE", "--threshold", "300", "--interval", "soon", *SIM, "--", "true"],
     "--interval"),
    (["--zone", "DE", "--threshold", "300", "--resume-below", "400", *SIM, "--", "true"],
     "--resume-below = 400 g/kWh is above --threshold"),
    (["--zone", "DE", "--threshold", "300", "--checkpoint-signal", "SIGNOPE", *SIM, "--",
      "true"], "--checkpoint-signal = 'SIGNOPE': not a signal name"),
    (["--zone", "DE", "--threshold", "300", "--speed", "10", "--live", "--", "true"],
     "--from and --speed go with --simulate"),
    (["--zone", "DE", "--policy", "threshold", "--threshold", "300", "--deadline",
      "2023-03-05T00:00Z", *SIM, "--",
      "true"], "--deadline 2023-03-05T00:00:00+00:00 is not after --from"),
    (["--zone", "DE", "--threshold", "300", *SIM, "--speed", "0", "--", "true"], "--speed"),
    (["--zone", "DE", "--threshold", "300", *SIM, "--speed", "nan", "--", "true"], "--speed"),
])
def test_bad_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               args: list[str], says: str) -> None:
    monkeypatch.chdir(tmp_path)
    data = write_exports(tmp_path / "data")
    line = _one_error(_run("--data", str(data), *args))
    assert says in line, line
    assert not (tmp_path / "greenepoch-run").exists()  # refused before the run directory


def test_second_supervisor_refuses(tmp_path: Path) -> None:
    data = write_exports(tmp_path / "data")
    run_dir = RunDir(tmp_path / "run")
    with run_dir.lock():
        line = _one_error(_run("--zone", "DE", "--threshold", "300", "--data", str(data),
                               *SIM, "--run-dir", str(run_dir.path), "--", "true"))
    assert "another supervisor (pid" in line and "--run-dir" in line


def test_short_run_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENEPOCH_CACHE", str(tmp_path / "cache"))
    data = write_exports(tmp_path / "data")
    log = tmp_path / "logs" / "mine.jsonl"
    result = _run("--zone", "DE", "--threshold", "1000", "--data", str(data), *SIM,
                  "--speed", "3600", "--forecast", "persistence", "--run-dir",
                  str(tmp_path / "run"), "--log", str(log), "--gpus", "4", "--",
                  sys.executable, "-c", "import time; time.sleep(0.5)")
    assert result.exit_code == 0, result.output
    assert "training done at 2023-03-06T0" in result.output
    lines = read_log(log)
    assert [e["event"] for e in lines if e["event"] != "decision"] == [
        "supervisor", "start", "done"]
    assert lines[0]["gpus"] == 4 and lines[0]["simulate"] is True
    assert not (tmp_path / "run" / "run.jsonl").exists()  # --log put it elsewhere


# ------------------------------------------------------------------ live fallback
@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Fake Electricity Maps at the real now; ukci down; a private config and archive."""
    config = tmp_path / "config.toml"
    config.write_text('[live]\nproviders = ["electricitymaps"]\n'
                      "[http]\ntimeout_s = 1\nattempts = 1\ntotal_s = 2\n")
    config.chmod(0o600)
    with FakeServer() as em:
        fem.serve(em, TOKEN, now=pd.Timestamp.now(tz="UTC"))
        env = {"ELECTRICITYMAPS_TOKEN": TOKEN, "GREENEPOCH_ELECTRICITYMAPS_URL": em.url,
               "GREENEPOCH_UKCI_URL": DOWN, "GREENEPOCH_WATTTIME_URL": DOWN,
               "GREENEPOCH_CONFIG": str(config),
               "GREENEPOCH_ARCHIVE": f"sqlite:///{tmp_path / 'archive.db'}",
               "GREENEPOCH_CACHE": "off"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
        yield {"em": em, "dir": tmp_path}


def test_live_source_failing_mid_run_falls_back_and_meets_the_deadline(
        live: dict[str, Any]) -> None:
    import os
    import time

    tmp = live["dir"]
    deadline = pd.Timestamp.now(tz="UTC") + pd.Timedelta("40s")
    run_dir = tmp / "run"
    child = ("import os, time\n"
             "for i in range(60):\n"
             "    time.sleep(0.1)\n")
    args = [sys.executable, "-m", "greenepoch.planner.cli.main", "run", "--live",
            "--zone", "DE", "--policy", "threshold", "--threshold", "1000",
            "--deadline", deadline.isoformat(), "--gpu-hours", "0.01", "--margin", "5s",
            "--interval", "1s", "--run-dir", str(run_dir), "--grace", "5s", "--",
            sys.executable, "-c", child]
    proc = subprocess.Popen(args, env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log = run_dir / "run.jsonl"
        end = time.monotonic() + 30
        while time.monotonic() < end and not (
                log.exists() and "start" in [e["event"] for e in read_log(log)]):
            time.sleep(0.05)
        live["em"].fail(*[Reply(503, {"error": "down"})] * 1000)  # down from now on
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, out
    lines = read_log(run_dir / "run.jsonl")
    names = [e["event"] for e in lines]
    assert names[-1] == "done", out
    fallbacks = [e for e in lines if e["event"] == "fallback"]
    assert fallbacks, names
    assert "archive" in fallbacks[0]["reason"] and "electricitymaps" in fallbacks[0]["reason"]
    after = lines[names.index("fallback"):]
    stale = [e for e in after if e["event"] == "decision"]
    assert stale and all(e["provenance"]["stale"] for e in stale)
    assert all(e["provenance"]["provider"].startswith("archive") for e in stale)
    assert all(e["intensity"] is not None for e in stale)  # the fallback holds a value
    assert pd.Timestamp(lines[-1]["time"]) < deadline
    before = [e for e in lines[:names.index("fallback")] if e["event"] == "decision"]
    assert before and before[0]["provenance"] == {
        "provider": "electricitymaps", "kind": "actual", "stale": False,
        "age_s": before[0]["provenance"]["age_s"]}
    json.dumps(lines)  # every line is plain JSON
