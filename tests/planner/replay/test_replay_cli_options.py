"""Policy settings reach the replay through the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from greenepoch.planner.cli.main import cli

BASE = ["replay", "--zones", "DE", "--from", "2023-03-01", "--until", "2023-03-08",
        "--generate", "n=12,dur=2-12,slack=24h,seed=3", "--policies", "threshold", "--json"]


def _threshold_row(args: list[str]) -> dict:
    result = CliRunner().invoke(cli, BASE + args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["summary"]
    return next(r for r in rows if r["policy"] == "threshold")


def test_threshold_setting_changes_the_threshold_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    never = _threshold_row(["--threshold", "2000"])  # never above: behaves like run-now
    strict = _threshold_row(["--threshold", "q0.2"])
    assert never["delay_mean_h"] == 0
    assert strict["delay_mean_h"] > 0
    assert strict["emissions_kg"] < never["emissions_kg"]


def test_bad_threshold_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    result = CliRunner().invoke(cli, [*BASE, "--threshold", "abc"])
    assert result.exit_code == 2
    assert "quantile like q0.3" in result.output
