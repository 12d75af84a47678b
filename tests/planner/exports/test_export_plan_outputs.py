"""Plan outputs are written atomically (issue 13 item 9): the plan JSON and its CSV are
replaced together or not at all, ``--out p.csv`` is refused before planning, and a
write that fails (here: the kernel's file-size limit, ``RLIMIT_FSIZE``, a real
``EFBIG`` like a full disk's ``ENOSPC``) leaves the earlier files as they were."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from export_fixtures import plan_doc, segment
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.cli.main import cli
from greenepoch.planner.plan import Plan

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
GOOD_JSON, GOOD_CSV = '{"good": "plan"}\n', "job,zone\ngood,csv\n"


def _limited(max_bytes: int):
    """preexec_fn: files of the child may not grow past ``max_bytes`` (EFBIG)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return apply


def _greenepoch(args: list[str], cwd: Path, max_bytes: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "GREENEPOCH_DATA": "", "OMP_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m",
        "greenepoch.planner.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=_limited(max_bytes))


def _one_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.startswith("greenepoch: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("command", [["plan", str(EXAMPLES / "minimal.toml")], ["demo"]])
def test_out_that_is_its_own_csv_is_refused_before_planning(tmp_path, command):
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(cli, [*command, "--out", str(out)],
                                env={"GREENEPOCH_DATA": ""}, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    line = _one_line(result.stderr)
    assert f"--out {out}: a .csv name is for the plan's segment CSV" in line
    assert "p.json" in line and "`" not in line
    assert "solving" not in result.output  # refused before any planning
    assert list(tmp_path.iterdir()) == []


def test_plan_write_puts_json_and_csv_side_by_side(tmp_path):
    t0 = pd.Timestamp("2023-06-01T07:00:00Z")
    plan = Plan.from_dict(plan_doc({"a": [segment("DE", t0, 60, 8)],
                                    "b,\"c\"": [segment("GB", t0, 30, 1)]}))
    (tmp_path / "p.json").write_text(GOOD_JSON)
    json_file, csv_file = plan.write(tmp_path / "p.json")
    assert csv_file == tmp_path / "p.csv"
    assert json.loads(json_file.read_text(encoding="utf-8")) == plan.to_dict()
    table = pd.read_csv(io.StringIO(csv_file.read_text(encoding="utf-8")))
    assert list(table["job"]) == ["a", "b,\"c\""] and list(table["gpus"]) == [8, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.json"]  # no temp files
    with pytest.raises(GreenEpochError, match=r"`json_path` .*x\.csv: a \.csv name is for"):
        plan.write(tmp_path / "x.csv")
    (tmp_path / "y.csv").mkdir()
    with pytest.raises(GreenEpochError, match="is a folder"):
        plan.write(tmp_path / "y.json")
    assert not (tmp_path / "y.json").exists()


def test_a_failed_plan_write_leaves_the_old_json_and_csv(tmp_path):
    """The plan JSON of examples/minimal.toml is about 3 kB and its CSV under 1 kB: with
    files limited to 1500 bytes the JSON cannot be written.  It used to be truncated
    over the good one, the CSV left stale; now both stay as they were."""
    (tmp_path / "p.json").write_text(GOOD_JSON)
    (tmp_path / "p.csv").write_text(GOOD_CSV)
    proc = _greenepoch(["plan", str(EXAMPLES / "minimal.toml"), "--oracle", "--out", "p.json"],
                       tmp_path, 1500)
    assert proc.returncode == 2, proc.stderr
    assert "File too large" in _one_line(proc.stderr)
    assert (tmp_path / "p.json").read_text() == GOOD_JSON
    assert (tmp_path / "p.csv").read_text() == GOOD_CSV
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.json"]  # no temp files


def test_a_failed_replay_per_job_write_leaves_the_old_file(tmp_path):
    (tmp_path / "per.csv").write_text(GOOD_CSV)
    proc = _greenepoch(["replay", "--zones", "DE", "--from", "2023-06-01", "--until",
                        "2023-06-03", "--generate", "n=3,dur=2-4,slack=24h", "--policies",
                        "run-now", "--per-job", "per.csv"], tmp_path, 300)
    assert proc.returncode == 2, proc.stderr
    assert "File too large" in _one_line(proc.stderr)
    assert (tmp_path / "per.csv").read_text() == GOOD_CSV
    assert [p.name for p in tmp_path.iterdir()] == ["per.csv"]
