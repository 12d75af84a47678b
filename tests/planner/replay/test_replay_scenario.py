"""Replay's scenario assembly and JSON document, outside the CLI: on any source, the
CLI's document, prices from the source, and the history rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.source import (
    DATA_ENV,
    CachedSource,
    ClimatologySource,
    ExportFolderSource,
)
from greenepoch.planner.cli.main import cli
from greenepoch.planner.replay.metrics import job_metrics, summary
from greenepoch.planner.replay.runner import run_policies
from greenepoch.planner.replay.scenario import build_scenario, replay_document, sweep_values
from source_fixtures import START, write_exports

GENERATE = "n=6,dur=2-6,slack=12h,gpus=8-16,seed=3"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_exports(tmp_path_factory.mktemp("replay-sources"))


def test_scenario_on_a_source_matches_the_folder_path(folder: Path) -> None:
    t0, t1 = START + pd.Timedelta("7D"), START + pd.Timedelta("9D")
    by_path = build_scenario(["DE", "GB"], t0, t1, generate=GENERATE, data=folder)
    on_source = build_scenario(["DE", "GB"], t0, t1, generate=GENERATE,
                               data=CachedSource(ExportFolderSource(folder)))
    pd.testing.assert_frame_equal(by_path.scenario.actual, on_source.scenario.actual)
    assert by_path.scenario.jobs == on_source.scenario.jobs
    assert by_path.origin == on_source.origin == "real"
    # history clipped to the data start; DE's prices from its market file, GB has none
    assert by_path.scenario.actual.index[0] == START
    prices = by_path.scenario.prices
    assert prices is not None and prices["DE"].notna().all() and prices["GB"].isna().all()


def test_history_rule_and_synthetic_default(folder: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="a week of history"):
        build_scenario(["DE"], START + pd.Timedelta("3D"), START + pd.Timedelta("5D"),
                       generate=GENERATE, data=folder)
    monkeypatch.delenv(DATA_ENV, raising=False)
    t0, t1 = START, START + pd.Timedelta("2D")
    default = build_scenario(["DE"], t0, t1, generate=GENERATE)
    explicit = build_scenario(["DE"], t0, t1, generate=GENERATE, data=ClimatologySource())
    assert default.origin == "synthetic" and default.scenario.prices is None
    pd.testing.assert_frame_equal(default.scenario.actual, explicit.scenario.actual)
    assert default.scenario.actual.index[0] == t0 - pd.Timedelta("90D")


def test_document_is_the_cli_json(folder: Path) -> None:
    t0, t1 = START + pd.Timedelta("7D"), START + pd.Timedelta("9D")
    assembled = build_scenario(["DE", "GB"], t0, t1, generate=GENERATE, data=folder,
                               forecast="seasonal")
    results = run_policies(assembled.scenario, ["run-now", "oracle"])
    doc = replay_document(assembled, results, signal="direct", summary=summary(results),
                          per_job=job_metrics(results))
    out = CliRunner().invoke(cli, [
        "replay", "--data", str(folder), "--zones", "DE,GB", "--from", t0.isoformat(),
        "--until", t1.isoformat(), "--generate", GENERATE, "--policies", "oracle",
        "--forecast", "seasonal", "--json"])
    assert out.exit_code == 0, out.output
    printed = json.loads(out.output[out.output.index("{"):])
    assert list(printed) == list(doc) == ["period", "zones", "signal", "source", "slot",
                                          "forecast", "n_jobs", "summary", "info", "jobs"]
    assert doc["slot"] == "1h"
    for d in (printed, doc):
        for row in d["summary"]:
            row.pop("seconds")
    assert json.loads(json.dumps(doc)) == printed


def test_sweep_values_need_real_data(folder: Path) -> None:
    values = sweep_values(folder, None)
    assert list(values.columns) == ["DE", "GB"] and len(values) == 240
    assert np.allclose(sweep_values(folder, ["GB"])["GB"], values["GB"])
    with pytest.raises(DataError, match="needs real data"):
        sweep_values(ClimatologySource(), ["DE"])


def test_forecast_option_is_the_shared_one(folder: Path) -> None:
    """--forecast (default 'default' = blend, recorded by its name) and the hidden
    --model alias, as in every other command."""
    t0, t1 = START + pd.Timedelta("7D"), START + pd.Timedelta("9D")
    base = ["replay", "--data", str(folder), "--zones", "DE", "--from", t0.isoformat(),
            "--until", t1.isoformat(), "--generate", GENERATE, "--policies", "oracle",
            "--json"]
    docs = {}
    for extra in ([], ["--model", "seasonal"]):
        out = CliRunner().invoke(cli, [*base, *extra])
        assert out.exit_code == 0, out.output
        docs[tuple(extra)] = json.loads(out.output[out.output.index("{"):])
    assert docs[()]["forecast"] == "blend"
    assert docs[("--model", "seasonal")]["forecast"] == "seasonal"
