"""The clusters config is read strictly, like requests (issue 13 item 5's rules):
tables are tables, booleans are booleans, counts whole numbers, durations whole
seconds, unknown keys refused with the known ones, and every error one line naming
its field, the value found and what to write instead."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from export_fixtures import now_floor, plan_doc, run_cli, segment
from greenepoch.planner.exports.config import load_config

BASE = '[defaults]\ncommand = ["python", "train.py"]\nimage = "r/t:1"\n'

#: (TOML added to BASE, text the one error line must hold)
BAD = {
    "zones_text": ('zones = "DE"\n', "[zones]: expected a table, found text ('DE')"),
    "slurm_bool": ('slurm = true\n', "[slurm]: expected a table, found a boolean (true)"),
    "federation_text": ('[slurm]\nfederation = "false"\n',
                        "[slurm].federation = 'false': expected a boolean, found text"),
    "zone_slurm_text": ('[zones.Z1]\nslurm = "gpu"\n',
                        "[zones.Z1.slurm]: expected a table, found text ('gpu')"),
    "gpus_fraction": ('[zones.Z1.slurm]\ngpus_per_node = 8.5\n',
                      "[zones.Z1.slurm].gpus_per_node = 8.5: expected a whole number"),
    "gpus_bool": ('[zones.Z1.slurm]\ngpus_per_node = true\n',
                  "[zones.Z1.slurm].gpus_per_node = true: expected a whole number, found a "
                  "boolean"),
    "gpus_text": ('[zones.Z1.kubernetes]\ngpus_per_node = "8"\n',
                  "[zones.Z1.kubernetes].gpus_per_node = '8': expected a whole number"),
    "gpus_zero": ('[zones.Z1.slurm]\ngpus_per_node = 0\n',
                  "[zones.Z1.slurm].gpus_per_node = 0: must be a whole number from 1"),
    "env_number": ('[defaults.env]\nSEED = 1\n',
                   "[defaults].env.SEED = 1: expected text, found a whole number"),
    "argv_number": ('[jobs.a]\ncommand = ["python", 3]\n',
                    "[jobs.a].command[1] = 3: expected text"),
    "lead_fraction": ('[jobs.a]\ncheckpoint_lead = "1.5s"\n',
                      "[jobs.a].checkpoint_lead = '1.5s': must be whole seconds"),
    "lead_bool": ('[jobs.a]\ncheckpoint_lead = true\n',
                  "[jobs.a].checkpoint_lead = true: expected a duration, found a boolean"),
    "ckpt_empty": ('[jobs.a]\ncheckpoint_dir = ""\n',
                   "[jobs.a].checkpoint_dir = '': must not be empty"),
    "ckpt_placeholder": ('[jobs.a]\ncheckpoint_dir = "ckpt/{jobs}"\n',
                         "unknown placeholder {jobs}; only {job} is replaced"),
    "job_text": ('[jobs]\na = "train.py"\n', "[jobs.a]: expected a table, found text"),
    "affinity_text": ('[zones.Z1.kubernetes]\nnode_affinity = "gpu"\n',
                      "[zones.Z1.kubernetes].node_affinity: expected a table, found text"),
    "unknown_key": ('[zones.Z1.slurm]\npartitoin = "gpu"\n',
                    "[zones.Z1.slurm]: unknown key(s) 'partitoin'; allowed: account, cluster, "
                    "gpu_flag, gpus_per_node, partition, qos"),
    "signal": ('[jobs.a]\ncheckpoint_signal = "KILL"\n',
               "[jobs.a].checkpoint_signal = 'KILL': not one of USR1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("kind", ["slurm", "k8s"])
def test_bad_config_values_are_one_line_naming_the_field(tmp_path, case, kind):
    extra, expect = BAD[case]
    cfg = tmp_path / "c.toml"
    # top-level keys go before the first table
    cfg.write_text(BASE + extra if extra.startswith("[") else extra + BASE, encoding="utf-8")
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(plan_doc({"a": [segment("Z1", now_floor() + pd.Timedelta("1h"),
                                                        30, 1)]})))
    result = run_cli(["export", kind, str(plan), "--config", str(cfg), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"greenepoch: error: {cfg}: ")
    assert expect in result.stderr


def test_not_utf8_is_one_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(BASE.encode() + b'[defaults.env]\nNAME = "caf\xe9"\n')
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(plan_doc({"a": [segment("Z1", now_floor() + pd.Timedelta("1h"),
                                                        30, 1)]})))
    result = run_cli(["export", "slurm", str(plan), "--config", str(cfg), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert f"{cfg}: not a UTF-8 text file (byte 86" in result.stderr
    assert "save the clusters config as UTF-8 TOML" in result.stderr
    assert result.stderr.count("\n") == 1


def test_good_values_are_read_as_written(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(BASE + '[defaults.env]\nSEED = "1"\n[jobs.a]\ncheckpoint_lead = "90s"\n'
                   'checkpoint_signal = "sigusr2"\ncheckpoint_dir = "ckpt/{job}"\n'
                   '[zones.Z1.slurm]\ngpus_per_node = 8\n[slurm]\nfederation = true\n',
                   encoding="utf-8")
    config = load_config(cfg)
    job = config.job("a")
    assert (job.checkpoint_lead_s, job.checkpoint_signal, job.env) == (90, "USR2",
                                                                         (("SEED", "1"),))
    assert config.slurm["Z1"].gpus_per_node == 8 and config.slurm_federation is True


def test_load_config_reads_through_the_request_reader(tmp_path, monkeypatch):
    from greenepoch.planner.exports.common import ExportError
    from greenepoch.planner.exports.config import ClusterConfig

    with pytest.raises(ExportError, match="no such clusters config file"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "deep.toml").write_text("a = " + "[" * 2000 + "]" * 2000 + "\n")
    with pytest.raises(ExportError, match="not a clusters config \\(its TOML is nested"):
        load_config(tmp_path / "deep.toml")
    assert load_config(None) == load_config("") == ClusterConfig()  # empty variable: unset
    monkeypatch.setenv("GREENEPOCH_CLUSTERS", "")
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(plan_doc({"a": [segment("Z1", now_floor() + pd.Timedelta("1h"),
                                                        30, 1)]})))
    result = run_cli(["export", "slurm", str(plan), "--dry-run"])
    assert result.exit_code == 2
    assert "pass it with --config (or $GREENEPOCH_CLUSTERS" in result.stderr
    result = run_cli(["export", "slurm", str(plan), "--dry-run", "--config", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"greenepoch: error: {tmp_path}: ")
