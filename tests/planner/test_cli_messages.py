"""Library messages name parameters, the CLI names flags (issue 14 item 6).

A library message names the parameter a Python caller passes, in backquotes
(``data.errors.param``: `test_from`); the CLI's error funnel (``cli.main.as_flags``)
shows the option that sets it (``--test-from``), found in one map built from the click
tree (``option_flags``).  Tested here: the rewrite itself, that every name a library
message uses is in that map (or knowingly not), and both readings of real errors.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from export_fixtures import now_floor, plan_doc, segment, toml
from greenepoch.data.errors import DataError, GreenEpochError, RequestError, param
from greenepoch.forecasts.backtest import BacktestConfig
from greenepoch.forecasts.base import ForecastError
from greenepoch.planner.cli.main import as_flags, cli, option_flags
from greenepoch.planner.exports.common import MARKER, ExportError
from greenepoch.planner.exports.config import load_config
from greenepoch.planner.exports.slurm import write_slurm
from greenepoch.planner.pipeline import plan
from greenepoch.planner.plan import Plan
from greenepoch.planner.replay.jobs import generate_jobs
from greenepoch.planner.request import load_request

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ("data", "forecasts", "solvers", "planner")

#: Backquoted names library messages may use that no option sets, and why.
NOT_OPTIONS = {
    # BacktestConfig.issue_every: the CLI always issues daily, so no option sets it
    "issue_every",
    # Threshold(quantile=): `replay --threshold qF` sets it, and the CLI refuses a bad
    # qF itself, in that option's terms, before the policy is built
    "quantile",
    # Provider.window(start, end): Python callers' times; the CLI parses its own times
    # (offset required) before any provider sees them
    "start", "end",
    # ElectricityMaps(granularity=, horizon_hours=): set in the config file's
    # [electricitymaps] table (docs/live.md), which has no command-line option
    "granularity", "horizon_hours",
    # forecasts.live.blend(seam_h=): the commands use the documented 6 h
    "seam_h",
    # the training-side gate's Python API and its control file (planner/run/gate.py):
    # set in the training's code, never on greenepoch's command line
    "report_every_s", "poll_max_s", "progress", "seq", "pause", "stop", "reason",
}


# -- as_flags --------------------------------------------------------------------------
@click.group()
def _tiny() -> None:
    """A CLI of two commands, to test the rewrite on its own."""


@_tiny.command()
@click.option("--test-from", "test_from")
@click.option("--data", "data_dir")
@click.option("--start", "start")
def one(**_: object) -> None:
    """First command."""


@_tiny.command()
@click.option("--from", "start")  # the same name, another flag: ambiguous
@click.option("-q", "--quiet", "quiet", is_flag=True)
def two(**_: object) -> None:
    """Second command."""


def test_option_flags_maps_each_name_to_its_first_long_flag() -> None:
    flags = option_flags(_tiny)
    assert flags == {"test_from": "--test-from", "data_dir": "--data", "quiet": "--quiet"}


def test_as_flags_shows_the_option_of_each_named_parameter() -> None:
    said = f"{param('test_from')} 2023-01-01 is before the data; point {param('data_dir')} at it"
    assert said == "`test_from` 2023-01-01 is before the data; point `data_dir` at it"
    assert as_flags(said, _tiny) == "--test-from 2023-01-01 is before the data; point --data at it"


def test_as_flags_unquotes_names_no_option_sets_and_leaves_the_rest() -> None:
    assert as_flags("`start` and `issue_every` are wrong", _tiny) == \
        "start and issue_every are wrong"  # start is ambiguous: left out of the map
    plain = "nothing quoted; --flags and 'quotes' stay as written"
    assert as_flags(plain, _tiny) == plain
    # only param's form (a lower-case identifier) is rewritten
    assert as_flags("`Test_From` `a b` `test-from`", _tiny) == "`Test_From` `a b` `test-from`"


def test_the_real_map_has_the_documented_flags() -> None:
    flags = option_flags(cli)
    assert {name: flags[name] for name in ("test_from", "data_dir", "model", "config_file",
                                           "out_dir", "json_path", "spec", "jobs",
                                           "squeue_file", "replan_every_h")} == {
        "test_from": "--test-from", "data_dir": "--data", "model": "--forecast",
        "config_file": "--config", "out_dir": "--out", "json_path": "--out",
        "spec": "--generate", "jobs": "--jobs", "squeue_file": "--squeue-json",
        "replan_every_h": "--replan-every"}
    assert "start" not in flags  # plan --start and replay --from: named in words instead


# -- every name a library message uses is an option's (or listed above) ---------------
def _library_files() -> list[Path]:
    return sorted(p for top in LIBRARY for p in (ROOT / top).rglob("*.py")
                  if "cli" not in p.relative_to(ROOT).parts[:2])


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def _message_names(path: Path, root: Path = ROOT) -> tuple[set[str], list[str]]:
    """Names in ``param("...")`` calls and in single-backquoted words of non-docstring
    string literals; and where ``param`` is called with something else than a literal."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    names, opaque = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "param":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
            else:
                opaque.append(f"{path.relative_to(root)}:{node.lineno}")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in skip):
            names |= set(re.findall(r"(?<![`\w])`([a-z_][a-z0-9_]*)`(?!`)", node.value))
    return names, opaque


def test_every_name_a_library_message_uses_is_set_by_an_option() -> None:
    flags = option_flags(cli)
    used: dict[str, list[str]] = {}
    opaque: list[str] = []
    for path in _library_files():
        names, calls = _message_names(path)
        opaque += calls
        for name in names:
            used.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not opaque, f"param() with a computed name cannot be checked: {opaque}"
    assert {"test_from", "data_dir", "spec", "out_dir"} <= set(used)  # the scan sees them
    unknown = {n: files for n, files in used.items() if n not in flags and n not in NOT_OPTIONS}
    assert not unknown, ("names no option sets (add the option, rename its click name to "
                         f"the parameter, or list the name in NOT_OPTIONS): {unknown}")
    assert not NOT_OPTIONS & set(flags), "a listed name is an option's now: unlist it"


def test_the_scan_reads_param_calls_and_literals(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text('"""Doc with `doc_name`."""\nfrom x import param\n'
                   'def f(n):\n    """`also_doc`"""\n'
                   '    raise E(f"{param(\'a_b\')} and `c_d` but ``e_f``")\n'
                   '    param(n)\n', encoding="utf-8")
    names, opaque = _message_names(src, tmp_path)
    assert names == {"a_b", "c_d"} and opaque == ["m.py:6"]


# -- real errors, read both ways --------------------------------------------------------
def _cli_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error: "), result.stderr
    assert "`" not in lines[0]
    return lines[0]


def test_backtest_test_from_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    line = _cli_line(CliRunner().invoke(cli, [
        "forecast", "backtest", "--train-until", "2023-01-10", "--test-from", "2023-01-01",
        "--test-until", "2023-01-05"]))
    assert "--test-from 2023-01-01 is before the end of training (--train-until 2023-01-10)" \
        in line
    day = pd.Timestamp
    with pytest.raises(ForecastError) as info:
        BacktestConfig(day("2023-01-11", tz="UTC"), day("2023-01-01", tz="UTC"),
                       day("2023-01-05", tz="UTC"))
    assert str(info.value).startswith(
        "`test_from` 2023-01-01 is before the end of training (`train_until` 2023-01-10)")


def test_replay_bad_generator_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    line = _cli_line(CliRunner().invoke(cli, [
        "replay", "--zones", "DE", "--from", "2023-03-01", "--until", "2023-03-08",
        "--generate", "n=2,durr=3", "--policies", "run-now"]))
    assert "--generate: unknown key 'durr'" in line
    t0 = pd.Timestamp("2023-03-01", tz="UTC")
    with pytest.raises(RequestError, match=r"^`spec`: unknown key 'durr'"):
        generate_jobs("n=2,durr=3", ["DE"], t0, t0 + pd.Timedelta("7D"))


def test_export_over_a_submitted_directory_without_force(tmp_path: Path) -> None:
    config = tmp_path / "clusters.toml"
    config.write_text(toml({"defaults": {"command": ["echo", "hi"]},
                            "zones": {"Z1": {"slurm": {"partition": "gpu"}}}}))
    plan_file = tmp_path / "p.json"
    plan_file.write_text(json.dumps(plan_doc({"a": [segment(
        "Z1", now_floor() + pd.Timedelta("2h"), 30, 1)]})))
    out = tmp_path / "export"
    out.mkdir()
    (out / MARKER).write_text("x")
    (out / "job_ids.tsv").write_text("job_index\tsegment\tscript\tslurm_job_id\tcluster\n")
    line = _cli_line(CliRunner().invoke(cli, ["export", "slurm", str(plan_file), "--config",
                                              str(config), "--out", str(out)]))
    assert f"--out {out}: holds job_ids.tsv of a submitted export" in line
    assert "or pass --force to replace" in line
    with pytest.raises(ExportError) as info:
        write_slurm(Plan.from_json(plan_file), load_config(config), out)
    said = str(info.value)
    assert said.startswith(f"`out_dir` {out}: holds job_ids.tsv") and "pass `force`" in said


def test_plan_on_a_data_folder_that_does_not_exist(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    request = ROOT / "examples" / "minimal.toml"
    missing = tmp_path / "no-such-folder"
    line = _cli_line(CliRunner().invoke(cli, ["plan", str(request), "--oracle", "--data",
                                              str(missing), "--out", str(tmp_path / "p.json")]))
    assert f"--data points at {missing}, which does not exist" in line
    with pytest.raises(DataError, match=f"^`data_dir` points at {re.escape(str(missing))}"):
        plan(load_request(request), data=str(missing), oracle=True)
    assert list(tmp_path.iterdir()) == []


def test_library_errors_are_greenepoch_errors() -> None:
    """What the funnel rewrites is what it catches."""
    for kind in (DataError, RequestError, ForecastError, ExportError):
        assert issubclass(kind, GreenEpochError)
