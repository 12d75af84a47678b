"""What-if plans on a CachedSource (no reader swapped at run time): each file is read
once across scenarios, the rows are those of the default path, and a scenario the data
does not cover is 'data_missing'."""

from __future__ import annotations

from pathlib import Path

import pytest
from greenepoch.data.intensity.source import CachedSource, ExportFolderSource
from greenepoch.data.prices import PriceFolder
from greenepoch.planner.whatif import evaluate
from greenepoch.planner.whatif.evaluate import shared_source
from greenepoch.planner.whatif.spec import parse_spec
from source_fixtures import write_exports

NOT_COMPARED = ("seconds",)  # wall time


def spec(months: list[str], thresholds: str = '["none"]') -> str:
    return f"""
start = "2023-03-01T00:00:00Z"

[whatif]
starts_per_season = 1

[[jobs]]
name = "ft"
gpus = 8
duration = "3h"
deadline = "2023-03-02T00:00:00Z"
zones = ["DE"]

[[zones]]
id = "DE"
capacity_gpus = 16

[policy]
time_limit = "5s"

[sweep]
zones = ["DE", ["DE", "GB"]]
months = {months}
slack = ["0h", "24h"]
threshold = {thresholds}
forecast = ["oracle"]
"""


class CountingExports(ExportFolderSource):
    """The real export source, recording every read that reaches the files."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[tuple[str, ...]] = []

    def _read(self, zones, start, end, signal, slot):  # type: ignore[no-untyped-def]
        got = super()._read(zones, start, end, signal, slot)
        self.reads.extend(got.files)
        return got


class CountingPrices(PriceFolder):
    """The real price folder, recording every market read."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.reads: list[str] = []

    def market(self, market: str):  # type: ignore[no-untyped-def]
        self.reads.append(market)
        return super().market(market)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_exports(tmp_path_factory.mktemp("whatif-sources"))


def test_each_file_is_read_once_across_scenarios(folder: Path) -> None:
    import tomllib

    scenarios = parse_spec(tomllib.loads(spec(["2023-03"]))).scenarios(str(folder))
    assert len(scenarios) == 4
    inner = CountingExports(folder)
    inner.prices = prices = CountingPrices(folder / "prices")
    source = CachedSource(inner)
    rows = [evaluate(s, str(folder), source=source) for s in scenarios]
    assert [r["status"] for r in rows] == ["ok"] * 4
    # two zone sets: DE alone, DE and GB; each export file read for each set at most once
    assert sorted(Path(f).name for f in inner.reads) == [
        "DE_2023_hourly.csv", "DE_2023_hourly.csv", "GB_2023_hourly.csv"]
    # prices are looked up for every plan (cost columns): once per market, GB's too
    # (it has no file)
    assert sorted(prices.reads) == ["DE-LU", "GB"]
    # the rows of the default path (this process's shared CachedSource of the folder)
    for scenario, row in zip(scenarios, rows, strict=True):
        again = evaluate(scenario, str(folder))
        assert {k: v for k, v in again.items() if k not in NOT_COMPARED} == \
            {k: v for k, v in row.items() if k not in NOT_COMPARED}
    assert shared_source(str(folder)) is shared_source(str(folder))
    assert shared_source(str(folder)).reads == 2


def test_statuses_tell_missing_data_from_infeasible(folder: Path) -> None:
    import tomllib

    text = spec(["2023-03", "2023-09"], thresholds='["none", 5]')
    rows = {(r["season"], r["threshold"], r["zones"], r["slack_h"]): r for r in (
        evaluate(s, str(folder)) for s in parse_spec(tomllib.loads(text)).scenarios(
            str(folder)))}
    assert rows[("2023-03", None, "DE", 0.0)]["status"] == "ok"
    # the folder holds ten days of March: September is data missing, not 'infeasible'
    late = rows[("2023-09", None, "DE", 0.0)]
    assert late["status"] == "data_missing" and "covers" in late["message"]
    # a hard threshold no hour meets is proved infeasible
    assert rows[("2023-03", 5.0, "DE", 0.0)]["status"] == "infeasible"
