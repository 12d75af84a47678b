"""Hostile input files found by QA after the strict-input work (issue 13 item 6):
a FIFO without a writer, deeply nested TOML/JSON, a results file that is a list,
work or durations so large that time arithmetic overflows, a plan --out in .CSV."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "examples" / "minimal.toml"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GREENEPOCH_DATA": ""}
    return subprocess.run([sys.executable, "-m",
        "greenepoch.planner.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("greenepoch: error:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("args", [
    ("plan", "fifo", "--out", "o.json"),
    ("export", "json", "fifo", "--out", "x.json"),
    ("whatif", "fifo", "--out", "r.jsonl"),
])
def test_a_fifo_without_writer_is_refused_not_waited_on(tmp_path: Path, args: tuple[str, ...]
                                                       ) -> None:
    os.mkfifo(tmp_path / "fifo")
    one_error_line(run(*args, cwd=tmp_path))  # the old code blocked until the timeout


def test_a_clusters_config_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    plan = run("plan", str(MINIMAL), "--oracle", "--out", "p.json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    one_error_line(run("export", "slurm", "p.json", "--config", "fifo", "--out", "s",
                       "--dry-run", cwd=tmp_path))


@pytest.mark.parametrize(("name", "content", "args"), [
    ("deep.toml", "a = " + "[" * 500 + "]" * 500 + "\n", ("plan", "deep.toml", "--out", "o.json")),
    ("deep.json", "[" * 1000 + "]" * 1000 + "\n", ("export", "json", "deep.json", "--out", "x")),
    ("deep.json", "[" * 1000 + "]" * 1000 + "\n", ("report", "deep.json", "--out", "r.html")),
    ("list.jsonl", "[]\n", ("whatif", str(ROOT / "examples" / "whatif.toml"), "--out",
                            "list.jsonl")),
])
def test_nested_or_mistyped_documents_are_one_error_line(tmp_path: Path, name: str,
                                                        content: str,
                                                        args: tuple[str, ...]) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    one_error_line(run(*args, cwd=tmp_path))


@pytest.mark.parametrize(("old", "new", "expect"), [
    ("gpu_hours = 6144 ", "gpu_hours = 1e12 ", "gpu_hours"),
    ("gpu_hours = 6144 ", "duration = 1e12 ", "duration"),
])
def test_work_beyond_time_arithmetic_names_its_field(tmp_path: Path, old: str, new: str,
                                                     expect: str) -> None:
    text = MINIMAL.read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "r.toml").write_text(text.replace(old, new), encoding="utf-8")
    line = one_error_line(run("plan", "r.toml", "--oracle", "--out", "o.json", cwd=tmp_path))
    assert expect in line


def test_plan_out_with_an_upper_case_csv_suffix_is_refused(tmp_path: Path) -> None:
    one_error_line(run("plan", str(MINIMAL), "--oracle", "--out", "p.CSV", cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []
