"""Re-exporting over a submitted export (issue 13 item 10): ``job_ids.tsv`` and
``logs/`` are the only record of what was submitted.  A re-export is refused unless
``--force``, and even then those two are kept; a new submission appends its ids.

``submit.sh`` runs for real (bash) with a fake ``sbatch`` that prints job ids."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from export_fixtures import now_floor, plan_doc, run_cli, segment, toml
from greenepoch.planner.exports.common import MARKER, write_tree

CONFIG = {"defaults": {"command": ["echo", "hi"]},
          "zones": {"Z1": {"slurm": {"partition": "gpu"}},
                    "Z2": {"kubernetes": {"namespace": "ml", "checkpoint_claim": "ckpt"}}}}


def _fake_sbatch(tmp_path: Path) -> Path:
    """Prints 101, 102, ... across calls (a counter file), like ``sbatch --parsable``."""
    fake = tmp_path / "fake-sbatch"
    count = tmp_path / "sbatch.count"
    fake.write_text(f'#!/bin/bash\necho x >> {count}\nn=$(wc -l < {count}); '
                    'echo "$((100 + n))"\n')
    fake.chmod(0o755)
    return fake


def _plan(tmp_path: Path, name: str, hours: int) -> Path:
    doc = plan_doc({"a": [segment("Z1", now_floor() + pd.Timedelta(hours=hours), 30, 1)]})
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_reexport_over_a_submitted_export_needs_force_and_keeps_the_record(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(CONFIG))
    env = {"SBATCH": str(_fake_sbatch(tmp_path))}
    out = tmp_path / "export"
    first = run_cli(["export", "slurm", str(_plan(tmp_path, "p1.json", 1)), "--config",
                     str(cfg), "--out", str(out), "--submit"], env=env)
    assert first.exit_code == 0, first.output
    (out / "logs" / "j00-a-s000-101.out").write_text("training log of job 101\n")
    submitted = _tree(out)
    assert "job_ids.tsv" in submitted

    # a second plan, written over the first without --force: refused, nothing changed
    p2 = _plan(tmp_path, "p2.json", 2)
    refused = run_cli(["export", "slurm", str(p2), "--config", str(cfg), "--out", str(out)],
                      env=env)
    assert refused.exit_code == 2, refused.output
    line = refused.stderr.strip()
    assert len(line.splitlines()) == 1, refused.stderr
    assert f"--out {out}: holds job_ids.tsv and logs of a submitted export" in line
    assert "--force" in line
    assert _tree(out) == submitted
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.toml", "export", "fake-sbatch", "p1.json", "p2.json", "sbatch.count"]

    # with --force: the new scripts, and the record of the first submission intact
    forced = run_cli(["export", "slurm", str(p2), "--config", str(cfg), "--out", str(out),
                      "--force"], env=env)
    assert forced.exit_code == 0, forced.output
    now = _tree(out)
    assert now["job_ids.tsv"] == submitted["job_ids.tsv"]
    assert now["logs/j00-a-s000-101.out"] == b"training log of job 101\n"
    assert now["j00-a-s000.sbatch"] != submitted["j00-a-s000.sbatch"]  # the new plan
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.toml", "export", "fake-sbatch", "p1.json", "p2.json", "sbatch.count"]

    # submitting the new export appends its ids below the earlier ones
    again = run_cli(["export", "slurm", str(p2), "--config", str(cfg), "--out", str(out),
                     "--force", "--submit"], env=env)
    assert again.exit_code == 0, again.output
    assert "Slurm job 102" in again.stdout and "Slurm job 101" not in again.stdout
    rows = (out / "job_ids.tsv").read_text().splitlines()
    assert rows[0].startswith("job_index\tsegment")
    assert [r.split("\t")[3] for r in rows[1:]] == ["101", "102"]
    assert (out / "logs" / "j00-a-s000-101.out").exists()


def test_k8s_reexport_over_a_submitted_export_is_refused_too(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml({**CONFIG, "defaults": {**CONFIG["defaults"], "image": "r/t:1"}}))
    doc = plan_doc({"a": [segment("Z2", now_floor() + pd.Timedelta("1h"), 30, 1)]})
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(doc))
    out = tmp_path / "export"
    out.mkdir()
    (out / MARKER).write_text("x")
    (out / "job_ids.tsv").write_text("job_index\tsegment\tscript\tslurm_job_id\tcluster\n")
    result = run_cli(["export", "k8s", str(plan), "--config", str(cfg), "--out", str(out)])
    assert result.exit_code == 2 and "holds job_ids.tsv of a submitted export" in result.stderr
    result = run_cli(["export", "k8s", str(plan), "--config", str(cfg), "--out", str(out),
                      "--force"])
    assert result.exit_code == 0, result.output
    assert (out / "job_ids.tsv").read_text().startswith("job_index")
    assert any(p.suffix == ".yaml" for p in out.iterdir())


def test_a_failed_replacement_puts_the_record_back(tmp_path):
    """A forced re-export whose new tree cannot be written (a file name the file system
    refuses: too long) leaves the earlier export, job ids and logs as they were."""
    out = tmp_path / "export"
    write_tree({"a.sh": "echo\n"}, out)
    (out / "logs").mkdir()
    (out / "logs" / "x.out").write_text("log")
    (out / "job_ids.tsv").write_text("ids")
    before = _tree(out)
    with pytest.raises(OSError):
        write_tree({"a.sh": "echo 2\n", "x" * 300: "too long a name"}, out, force=True)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temp dirs left


def test_submit_over_an_empty_job_ids_file_writes_the_header(tmp_path):
    """An empty job_ids.tsv (e.g. a submission killed before its first sbatch) gets the
    header; the ids are read back (reading it failed with an IndexError)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(CONFIG))
    out = tmp_path / "export"
    assert run_cli(["export", "slurm", str(_plan(tmp_path, "p.json", 1)), "--config", str(cfg),
                    "--out", str(out)]).exit_code == 0
    (out / "job_ids.tsv").write_text("")
    result = run_cli(["export", "slurm", str(_plan(tmp_path, "p.json", 1)), "--config",
                      str(cfg), "--out", str(out), "--force", "--submit"],
                     env={"SBATCH": str(_fake_sbatch(tmp_path))})
    assert result.exit_code == 0, result.output
    assert "Slurm job 101" in result.stdout
    rows = (out / "job_ids.tsv").read_text().splitlines()
    assert rows[0].startswith("job_index\tsegment") and rows[1].split("\t")[3] == "101"
