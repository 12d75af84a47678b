"""The ``import greenepoch`` API (root ``__init__.py``) and its page, docs/api.md."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import greenepoch
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "api.md"

#: what ``import greenepoch`` must not import: the heavy libraries and every subpackage
HEAVY = ("pandas", "numpy", "scipy", "sklearn", "pulp", "highspy", "matplotlib",
         "greenepoch.data", "greenepoch.forecasts", "greenepoch.solvers", "greenepoch.planner")


def run_page(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every ```python block of docs/api.md, in order, in one namespace, in ``folder``."""
    blocks = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(), re.S | re.M)
    assert len(blocks) >= 4, "docs/api.md lost its example blocks"
    monkeypatch.chdir(folder)
    namespace: dict[str, Any] = {"__name__": "api_md"}
    for k, block in enumerate(blocks):
        exec(compile(block, f"{PAGE}:block{k + 1}", "exec"), namespace)
    return namespace


def check_session(ns: dict[str, Any], folder: Path, source: str) -> None:
    plan, again = ns["plan"], ns["again"]
    assert isinstance(plan, greenepoch.Plan) and isinstance(again, greenepoch.Plan)
    assert again.to_json() == plan.to_json()  # read back as written
    assert again.intensity.source == source and again.intensity.model == "seasonal"
    assert again.solver.status is greenepoch.PlanStatus.OPTIMAL
    request = ns["request"]
    assert [(j.name, j.deadline, j.gpu_hours) for j in again.jobs] == \
        [(j.name, j.deadline, j.gpu_hours) for j in request.jobs]
    assert (folder / "demo_plan.json").is_file() and (folder / "demo_plan.csv").is_file()
    assert ns["small"].intensity.mode == "oracle"
    assert ns["draw"].reads == 1 and ns["one"].segments().equals(ns["two"].segments())
    metrics = ns["metrics"]
    assert set(metrics["zone"]) == {"DE", "GB"}
    assert set(metrics["model"]) == {"seasonal", "persistence", "yesterday", "last_week",
                                     "mean7d"}
    assert len(ns["result"].issues) == 7


def test_the_page_runs_on_the_embedded_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    ns = run_page(tmp_path, monkeypatch)
    check_session(ns, tmp_path, "synthetic")
    out = capsys.readouterr().out
    assert "refused: request text: jobs[0] ('finetune').gpus" in out
    assert "total:" in out and "wape" in out


@pytest.mark.realdata
def test_the_page_runs_on_real_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    real_data: Path) -> None:
    monkeypatch.setenv("GREENEPOCH_DATA", str(real_data))
    ns = run_page(tmp_path, monkeypatch)
    check_session(ns, tmp_path, "real")


def test_import_greenepoch_imports_nothing_heavy(tmp_path: Path) -> None:
    """A training script may import it at the top: no pandas, no subpackage, until used."""
    code = "import json, sys, greenepoch; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    loaded = json.loads(out)
    eager = [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert eager == [], f"'import greenepoch' imported {eager}"


def test_every_name_in_all_resolves() -> None:
    for name in greenepoch.__all__:
        value = getattr(greenepoch, name)
        assert value is not None, name
    assert set(greenepoch.__all__) <= set(dir(greenepoch))
    from greenepoch.data.errors import GreenEpochError
    from greenepoch.planner.model import PlanRequest
    from greenepoch.planner.plan import Plan

    assert greenepoch.Plan is Plan and greenepoch.PlanRequest is PlanRequest
    assert greenepoch.GreenEpochError is GreenEpochError
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        greenepoch.nope  # noqa: B018


def test_nothing_inside_the_package_imports_the_root() -> None:
    """The API sits above the CLI: a module that imported its functions would sit on
    every floor.  ``__version__`` alone is allowed (a constant; the CLI's --version)."""
    offenders = []
    for folder in ("data", "forecasts", "solvers", "planner"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 \
                        and node.module == "greenepoch" \
                        and any(a.name != "__version__" for a in node.names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.Import) and any(a.name == "greenepoch"
                                                        for a in node.names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


REQUEST = """
start = "2023-06-01T00:00:00Z"

[[jobs]]
name = "train"
gpus = 8
gpu_hours = 96
deadline = "2023-06-04T00:00:00Z"
zones = ["DE", "NO"]

[[zones]]
id = "DE"
capacity_gpus = 16

[[zones]]
id = "NO"
capacity_gpus = 16
"""


def test_load_request_reads_a_path_or_the_text_alike(tmp_path: Path) -> None:
    (tmp_path / "req.toml").write_text(REQUEST)
    from_text = greenepoch.load_request(REQUEST)
    assert greenepoch.load_request(tmp_path / "req.toml") == from_text
    assert greenepoch.load_request(str(tmp_path / "req.toml")) == from_text
    moved = greenepoch.load_request(REQUEST, start="2023-07-01T00:00:00Z")
    assert moved.jobs[0].deadline == pd.Timestamp("2023-07-04T00:00:00Z")
    with pytest.raises(greenepoch.GreenEpochError, match="request text: not valid TOML"):
        greenepoch.load_request(REQUEST + "\n[[jobs]\n")
    with pytest.raises(greenepoch.GreenEpochError, match="no such request file"):
        greenepoch.load_request(tmp_path / "missing.toml")


def test_read_plan_takes_a_path_or_the_json_text(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    plan = greenepoch.plan(greenepoch.load_request(REQUEST), oracle=True)
    json_file, _ = greenepoch.write_plan(plan, tmp_path / "p.json")
    assert greenepoch.read_plan(json_file).to_json() == plan.to_json()
    assert greenepoch.read_plan(plan.to_json()).to_json() == plan.to_json()
    broken = plan.to_json().replace('"gpus": 8', '"gpus": "eight"', 1)
    with pytest.raises(greenepoch.GreenEpochError, match=r"jobs\[0\]\.segments\[0\]\.gpus"):
        greenepoch.read_plan(broken)


def test_backtest_refuses_an_unknown_model_before_reading_data() -> None:
    with pytest.raises(greenepoch.GreenEpochError, match="available"):
        greenepoch.backtest("nope", source="/nonexistent/folder", train_until="2023-01-31",
                            test_from="2023-02-01", test_until="2023-02-07")


def test_plan_accepts_a_request_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    (tmp_path / "req.toml").write_text(REQUEST)
    by_path = greenepoch.plan(tmp_path / "req.toml", oracle=True)
    by_request = greenepoch.plan(greenepoch.load_request(REQUEST), oracle=True)
    assert by_path.segments().equals(by_request.segments())


def test_a_source_object_is_what_none_or_a_folder_stands_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    request = greenepoch.load_request(REQUEST)
    default = greenepoch.plan(request, oracle=True)
    drawn = greenepoch.plan(request, greenepoch.sources.ClimatologySource(seed=0), oracle=True)
    other = greenepoch.plan(request, greenepoch.sources.ClimatologySource(seed=1), oracle=True)
    assert drawn.jobs == default.jobs  # (the solver report holds timings)
    assert other.jobs != default.jobs  # another draw of the synthetic traces


@pytest.mark.realdata
def test_backtest_on_a_folder_or_its_source_alike(real_data: Path) -> None:
    dates = dict(train_until="2023-01-31", test_from="2023-02-01", test_until="2023-02-03",
                 refit=None, baselines=())
    by_folder = greenepoch.backtest("seasonal", source=real_data, zones="DE", **dates)
    by_source = greenepoch.backtest(
        "seasonal", source=greenepoch.sources.ExportFolderSource(real_data), zones="DE",
        **dates)
    pd.testing.assert_frame_equal(by_folder.metrics(), by_source.metrics())
    assert (by_folder.metrics()["n"] > 0).all()
