"""Shared fixtures: the real-data folder and a skip marker for tests that need it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data_dir() -> Path | None:
    """The folder of real exports named by $GREENEPOCH_DATA, if it holds any."""
    value = os.environ.get("GREENEPOCH_DATA")
    if not value:
        return None
    root = Path(value)
    if not list((root / "electricitymaps").glob("*_hourly.csv")):
        return None
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if shared_data_dir() is not None:
        return
    if os.environ.get("GREENEPOCH_REQUIRE_DATA"):
        raise pytest.UsageError(
            "GREENEPOCH_REQUIRE_DATA is set but GREENEPOCH_DATA holds no "
            "electricitymaps/*_hourly.csv: real-data tests would skip"
        )
    skip = pytest.mark.skip(
        reason="real data absent: set GREENEPOCH_DATA to a folder holding electricitymaps/"
    )
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = shared_data_dir()
    if root is None:
        pytest.skip("real data absent: set GREENEPOCH_DATA to a folder holding electricitymaps/")
    return root


@pytest.fixture(scope="session", autouse=True)
def forecast_cache(tmp_path_factory: pytest.TempPathFactory):
    """Fitted forecast models go to a per-run folder, never the user's cache."""
    old = os.environ.get("GREENEPOCH_CACHE")
    folder = tmp_path_factory.mktemp("greenepoch-cache")
    os.environ["GREENEPOCH_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("GREENEPOCH_CACHE", None)
    else:
        os.environ["GREENEPOCH_CACHE"] = old
