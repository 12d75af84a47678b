"""The pipeline plans on a source handed to it: the same plan as the --data path, its
prices from the source, and a horizon the data does not cover is a data error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from greenepoch.data.errors import DataError, RequestError
from greenepoch.data.intensity.source import (
    DATA_ENV,
    CachedSource,
    ClimatologySource,
    ExportFolderSource,
)
from greenepoch.planner.model import Job, PlanRequest, Policy, Zone
from greenepoch.planner.pipeline import build_problem, load_intensities, plan
from source_fixtures import START, write_exports


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_exports(tmp_path_factory.mktemp("pipeline-sources"))


def request(objective: str = "carbon", days: float = 2,
            zones: tuple[str, ...] = ("DE", "GB")) -> PlanRequest:
    start = START + pd.Timedelta("1D")
    job = Job(name="ft", gpus=8, gpu_hours=48.0, release=start,
              deadline=start + pd.Timedelta(days=days), zones=zones, home_zone="DE")
    return PlanRequest(start=start, jobs=(job,),
                       zones=(Zone(id="DE", capacity_gpus=8), Zone(id="GB", capacity_gpus=8)),
                       policy=Policy(objective=objective, price_weight=0.5 if objective
                                     == "carbon+cost" else 0.0, time_limit=pd.Timedelta("10s")))


def schedule(doc: dict[str, Any]) -> list[Any]:
    """What a plan decides and what it reports, without run times."""
    return [(j["name"], j["segments"], j["summary"]) for j in doc["jobs"]]


def test_explicit_source_gives_the_plan_of_the_data_folder(folder: Path) -> None:
    by_path = plan(request(), data=folder, oracle=True).to_dict()
    for source in (ExportFolderSource(folder), CachedSource(ExportFolderSource(folder))):
        doc = plan(request(), data=source, oracle=True).to_dict()
        assert schedule(doc) == schedule(by_path)
        assert doc["intensity"] == by_path["intensity"]
    assert by_path["intensity"]["source"] == "real"


def test_default_is_the_climatology(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    default = plan(request(), oracle=True, seed=2).to_dict()
    explicit = plan(request(), data=ClimatologySource(seed=2), oracle=True).to_dict()
    assert schedule(default) == schedule(explicit)
    assert default["intensity"]["source"] == "synthetic"


def test_prices_come_from_the_source(folder: Path) -> None:
    priced = request("carbon+cost", zones=("DE",))  # the folder has DE's market only
    doc = plan(priced, data=CachedSource(ExportFolderSource(folder)), oracle=True).to_dict()
    assert doc["jobs"][0]["summary"]["cost_usd"] > 0
    # the same request on a source without prices cannot weigh cost
    with pytest.raises(RequestError, match="needs electricity prices"):
        plan(priced, data=ClimatologySource(), oracle=True)


def test_horizon_outside_the_data_is_a_data_error(folder: Path) -> None:
    late = request(days=30)  # the folder holds 10 days
    with pytest.raises(DataError, match="covers"):
        plan(late, data=ExportFolderSource(folder), oracle=True)
    judged = load_intensities(request(), data=folder, oracle=True).judged
    short = judged.select(end=judged.values.index[10])
    with pytest.raises(DataError, match="do not cover the plan horizon"):
        build_problem(request(), short)
