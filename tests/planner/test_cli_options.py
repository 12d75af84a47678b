"""Shared CLI options are defined once and mean the same in every command: above all
the forecast model, ``--forecast`` with one default (``--model`` still accepted)."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner
from greenepoch.forecasts.registry import DEFAULT_MODEL, canonical_name
from greenepoch.planner.cli.main import cli

# every command that plans on or evaluates a forecast
FORECASTING = {"plan", "demo", "replay", "forecast backtest", "forecast predict", "when",
               "forecast show"}


def commands(group: click.Command = cli, path: str = ""):
    """(path, command) for every command and group under ``cli``."""
    if path:
        yield path, group
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            yield from commands(sub, f"{path} {name}".strip())


def model_params():
    """(path, param) for every option named --forecast or --model."""
    return [(path, p) for path, cmd in commands() for p in cmd.params
            if isinstance(p, click.Option) and {"--forecast", "--model"} & set(p.opts)]


def test_every_forecasting_command_has_the_one_forecast_option():
    found = model_params()
    assert {path for path, _ in found} >= FORECASTING
    for path, param in found:
        assert param.opts == ["--forecast", "--model"], path  # --model: the old name
        assert param.name == "model", path
        assert param.default == "default", path
    assert canonical_name("default") == DEFAULT_MODEL == "blend"


@pytest.mark.parametrize("path", sorted(FORECASTING))
def test_help_shows_forecast_with_its_default_and_not_the_old_name(path):
    res = CliRunner().invoke(cli, [*path.split(), "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "--model" not in res.output
    entry = re.search(r"^  --forecast MODEL .*?(?=^  -)", res.output, re.M | re.S)
    assert entry is not None, res.output
    assert "[default: default]" in entry.group(0)


@pytest.mark.parametrize("name", ["--model", "--forecast"])
def test_both_names_reach_the_same_parameter(name, tmp_path):
    predict = cli.commands["forecast"].commands["predict"]
    ctx = predict.make_context("predict", ["--zone", "DE", "--issue", "2023-06-01T00:00:00Z",
                                           name, "mean7d"])
    assert ctx.params["model"] == "mean7d"


def test_an_unknown_model_is_one_error_line_by_either_name():
    for name in ("--model", "--forecast"):
        res = CliRunner().invoke(cli, ["forecast", "predict", "--zone", "DE", "--issue",
                                       "2023-06-01T00:00:00Z", name, "nope"])
        assert res.exit_code == 2
        assert "unknown forecast model 'nope'" in res.output


def test_demo_refuses_oracle_with_forecast():
    res = CliRunner().invoke(cli, ["demo", "--oracle", "--forecast", "seasonal"])
    assert res.exit_code == 2
    assert "--oracle and --forecast exclude each other" in res.output


@pytest.mark.parametrize("path", ["forecast backtest", "forecast predict"])
def test_forecast_commands_do_not_promise_the_synthetic_default(path):
    """Forecasts are fitted on measured data: their --data has no synthetic fallback."""
    res = CliRunner().invoke(cli, [*path.split(), "--help"], terminal_width=200)
    entry = re.search(r"^  --data PATH .*?(?=^  -)", res.output, re.M | re.S)
    assert entry is not None, res.output
    assert "synthetic" not in entry.group(0) and "needed" in entry.group(0)
