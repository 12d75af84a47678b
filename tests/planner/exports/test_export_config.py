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
                    "[zones.Z1.slurm]: unknown key(s) 'partitoin'; allowed: account, "
                    "checkpoint_dir, checkpoint_url, cluster, gpu_flag, gpus_per_node, "
                    "launcher, master_port, partition, qos"),
    "k8s_unknown_key": ('[zones.Z1.kubernetes]\nephemeral = true\n',
                        "unknown key(s) 'ephemeral'; allowed: checkpoint_claim, checkpoint_dir, "
                        "checkpoint_url, cluster_queue, ephemeral_checkpoints, gpus_per_node, "
                        "master_port, namespace"),
    "launcher": ('[zones.Z1.slurm]\nlauncher = "mpirun"\n',
                 "[zones.Z1.slurm].launcher = 'mpirun': expected 'torchrun', 'srun'"),
    "launcher_bool": ('[zones.Z1.slurm]\nlauncher = true\n',
                      "[zones.Z1.slurm].launcher = true: expected 'torchrun'"),
    "port_low": ('[zones.Z1.slurm]\nmaster_port = 80\n',
                 "[zones.Z1.slurm].master_port = 80: must be a whole number from 1024 to 65535"),
    "port_high": ('[zones.Z1.kubernetes]\nmaster_port = 70000\n',
                  "[zones.Z1.kubernetes].master_port = 70000: must be a whole number from 1024"),
    "port_text": ('[zones.Z1.slurm]\nmaster_port = "29500"\n',
                  "[zones.Z1.slurm].master_port = '29500': expected a whole number"),
    "zone_ckpt_empty": ('[zones.Z1.slurm]\ncheckpoint_dir = " "\n',
                        "[zones.Z1.slurm].checkpoint_dir = ' ': must not be empty"),
    "zone_ckpt_placeholder": ('[zones.Z1.kubernetes]\ncheckpoint_dir = "/c/{name}"\n',
                              "[zones.Z1.kubernetes].checkpoint_dir = '/c/{name}': unknown "
                              "placeholder {name}; only {job} is replaced"),
    "zone_url_number": ('[zones.Z1.slurm]\ncheckpoint_url = 3\n',
                        "[zones.Z1.slurm].checkpoint_url = 3: expected text"),
    "zone_url_placeholder": ('[zones.Z1.slurm]\ncheckpoint_url = "s3://b/{src}"\n',
                             "unknown placeholder {src}; only {job} is replaced"),
    "copy_placeholder": ('[jobs.a]\ncheckpoint_copy = ["rclone", "copy", "{source}", "{dst}"]\n',
                         "[jobs.a].checkpoint_copy = '{source}': unknown placeholder {source}; "
                         "only {src}, {dst}, {job} are replaced"),
    "copy_empty": ('[jobs.a]\ncheckpoint_copy = []\n', "checkpoint_copy: must name a program"),
    "copy_number": ('[jobs.a]\ncheckpoint_copy = ["cp", 1]\n',
                    "[jobs.a].checkpoint_copy[1] = 1: expected text"),
    "ephemeral_text": ('[zones.Z1.kubernetes]\nephemeral_checkpoints = "yes"\n',
                       "[zones.Z1.kubernetes].ephemeral_checkpoints = 'yes': expected a boolean"),
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


def test_issue15_keys_are_read_with_their_defaults(tmp_path):
    from greenepoch.planner.exports.common import job_key
    from greenepoch.planner.exports.config import DEFAULT_COPY

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[defaults]\ncommand = ["/opt/bin/torchrun", "t.py"]\ncheckpoint_dir = "c/{job}"\n'
        '[jobs.a]\ncheckpoint_copy = "rclone copy {src} \'{dst} x\'"\ncheckpoint_lead = "2min"\n'
        '[jobs.b]\ncommand = ["python", "t.py"]\n'
        '[zones.Z1.slurm]\nlauncher = "none"\nmaster_port = 1024\ncheckpoint_dir = "/s/{job}"\n'
        'checkpoint_url = "h1:/s/{job}"\n'
        '[zones.Z2.slurm]\n[zones.Z2.kubernetes]\nephemeral_checkpoints = true\n'
        'master_port = 65535\n', encoding="utf-8")
    config = load_config(cfg)
    z1, z2, k2 = config.slurm["Z1"], config.slurm["Z2"], config.kubernetes["Z2"]
    a, b = config.job("a"), config.job("b")
    key = job_key("a")
    assert (z1.launcher_for(a.command), z2.launcher_for(a.command),
            z2.launcher_for(b.command)) == ("none", "torchrun", "srun")
    assert (z1.master_port, z2.master_port, k2.master_port) == (1024, 29500, 65535)
    assert (k2.ephemeral_checkpoints, config.kubernetes.get("Z1")) == (True, None)
    assert z1.checkpoint_path(a, "a") == f"/s/{key}"
    assert z1.checkpoint_source(a, "a") == f"h1:/s/{key}"
    assert z2.checkpoint_path(a, "a") == z2.checkpoint_source(a, "a") == f"c/{key}"
    assert a.copy_argv("a", "h:/{dst}", "/d") == ("rclone", "copy", "h:/{dst}", "/d x")
    assert b.checkpoint_copy == DEFAULT_COPY
    assert b.copy_argv("b", "/s", "/d") == ("rsync", "-a", "/s/", "/d/")
    # checkpoint_lead: the config's when set, else the plan's save time, else 600 s
    assert (a.lead_s(None), a.lead_s(900), b.lead_s(None), b.lead_s(900)) == (120, 120, 600,
                                                                             900)


def test_checkpoint_save_is_read_from_either_plan_version():
    from types import SimpleNamespace

    from greenepoch.planner.exports.common import checkpoint_save_s

    assert checkpoint_save_s(SimpleNamespace(checkpoint_save_hours=0.25, extra={})) == 900
    assert checkpoint_save_s(SimpleNamespace(extra={"checkpoint_save_hours": 1 / 60})) == 60
    for bad in (None, 0, -1, True, "0.5", float("nan")):
        assert checkpoint_save_s(SimpleNamespace(extra={"checkpoint_save_hours": bad})) is None


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
