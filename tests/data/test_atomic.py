"""greenepoch.data.atomic: outputs are replaced whole or not at all."""

from __future__ import annotations

import errno
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from greenepoch.data.atomic import write_atomic, write_together
from greenepoch.data.errors import GreenEpochError


def test_write_replaces_whole_file(tmp_path):
    target = tmp_path / "plan.json"
    target.write_text("old", encoding="utf-8")
    write_atomic(target, "new content")
    assert target.read_text(encoding="utf-8") == "new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_failed_staging_leaves_every_target_untouched(tmp_path, monkeypatch):
    a, b = tmp_path / "p.json", tmp_path / "p.csv"
    a.write_text("good json", encoding="utf-8")
    b.write_text("good csv", encoding="utf-8")
    calls = []
    import greenepoch.data.atomic as atomic

    real = atomic._stage

    def fail_second(target, content):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(target, content)

    monkeypatch.setattr(atomic, "_stage", fail_second)
    with pytest.raises(OSError):
        write_together({a: "new json", b: "new csv"})
    assert a.read_text(encoding="utf-8") == "good json"
    assert b.read_text(encoding="utf-8") == "good csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.json"]


def test_same_path_twice_is_refused(tmp_path):
    a = tmp_path / "p.csv"
    (tmp_path / "sub").mkdir()
    with pytest.raises(GreenEpochError, match="given twice"):
        write_together({a: "1", tmp_path / "sub" / ".." / "p.csv": "2"})
    assert not a.exists()


def test_missing_folder_and_directory_target_are_errors(tmp_path):
    with pytest.raises(GreenEpochError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "x.json", "x")
    with pytest.raises(GreenEpochError, match="is a directory"):
        write_atomic(tmp_path, "x")


def test_bytes_are_written_verbatim(tmp_path):
    target = tmp_path / "fig.png"
    write_atomic(target, b"\x89PNG\x00\xff")
    assert target.read_bytes() == b"\x89PNG\x00\xff"


# --- QA pass: a failed write names the output ("File too large" alone said nothing) ------

PLAN = (Path(__file__).resolve().parents[1] / "fixtures" / "plans"
        / "minimal-forecast-schema-1.0-before-release.json")


def test_a_write_error_without_a_file_name_names_the_target(tmp_path, monkeypatch):
    import greenepoch.data.atomic as atomic

    target = tmp_path / "plan.json"
    target.write_text("old", encoding="utf-8")

    def too_large(fd):
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))  # as the kernel says it: no name

    monkeypatch.setattr(atomic.os, "fsync", too_large)
    with pytest.raises(OSError) as err:
        write_atomic(target, "new")
    assert (err.value.errno, err.value.filename) == (errno.EFBIG, str(target))
    assert err.value.strerror == os.strerror(errno.EFBIG)
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


@pytest.mark.skipif(sys.platform == "win32", reason="ulimit -f is a POSIX shell limit")
def test_a_file_size_limit_is_one_error_line_naming_the_output(tmp_path):
    """End to end: the CLI under ``ulimit -f 1`` (1 KB) writing a report of a few KB."""
    command = (f"ulimit -f 1; exec {shlex.quote(sys.executable)} -m greenepoch.planner.cli.main "
               f"report {shlex.quote(str(PLAN))} --out report.html")
    env = {k: v for k, v in os.environ.items() if k != "GREENEPOCH_DATA"}
    run = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines()[-1] == (f"greenepoch: error: report.html: "
                                           f"{os.strerror(errno.EFBIG)}")
    assert list(tmp_path.iterdir()) == []  # no half-written report, no temporary file
