"""Outcomes tell the truth end to end: data that does not cover the plan's window is a
data error (exit 2, a line about the data), not a request the planner proved
infeasible."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from greenepoch.data.errors import DataError, InfeasibleError
from greenepoch.data.timeparse import utc
from greenepoch.planner.cli.main import cli
from greenepoch.planner.pipeline import plan
from greenepoch.planner.request import load_request

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minimal.toml"  # DE and GB


@pytest.fixture
def only_2023(real_data: Path, tmp_path: Path) -> Path:
    """A data folder with DE and GB for 2023 only (links to the shared exports)."""
    folder = tmp_path / "electricitymaps"
    folder.mkdir()
    for zone in ("DE", "GB"):
        name = f"{zone}_2023_hourly.csv"
        (folder / name).symlink_to(real_data / "electricitymaps" / name)
    return tmp_path


@pytest.mark.realdata
def test_a_window_outside_the_data_is_a_data_error_not_infeasible(only_2023: Path):
    request = load_request(EXAMPLE, utc("2024-02-01T00:00:00Z", "start"))
    with pytest.raises(DataError) as caught:
        plan(request, data=only_2023, oracle=True)
    assert not isinstance(caught.value, InfeasibleError)
    assert "2024-02-01" in str(caught.value)


@pytest.mark.realdata
def test_cli_a_window_outside_the_data_exits_2_with_one_line_about_the_data(
        only_2023: Path, tmp_path: Path):
    out = tmp_path / "plan.json"
    res = CliRunner().invoke(cli, ["plan", str(EXAMPLE), "--data", str(only_2023), "--oracle",
                                   "--start", "2024-02-01T00:00:00Z", "--out", str(out)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error: ")
    assert "covers" in lines[0] and "infeasible" not in lines[0].lower()
    assert not out.exists()
