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


#: live settings a developer's shell may hold; no test may read them
_LIVE_VARIABLES = ("ELECTRICITYMAPS_TOKEN", "WATTTIME_USERNAME", "WATTTIME_PASSWORD",
                   "GREENEPOCH_CONFIG")
#: a closed local port: a provider built without its test server's URL fails at once
#: instead of reaching (or waiting for) the internet
_NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(scope="session", autouse=True)
def live_isolation(tmp_path_factory: pytest.TempPathFactory):
    """No test sees the user's credentials, config file or archive, or the real provider
    hosts: tests that need them set them (monkeypatch) to their own."""
    folder = tmp_path_factory.mktemp("greenepoch-live")
    (folder / "config.toml").write_text("# empty: the tests' own settings come from them\n")
    wanted = {var: None for var in _LIVE_VARIABLES} | {
        "GREENEPOCH_ARCHIVE": f"sqlite:///{folder / 'archive.sqlite'}",
        "GREENEPOCH_CONFIG": str(folder / "config.toml"),
        "GREENEPOCH_ELECTRICITYMAPS_URL": _NOWHERE,
        "GREENEPOCH_WATTTIME_URL": _NOWHERE,
        "GREENEPOCH_UKCI_URL": _NOWHERE,
    }
    old = {var: os.environ.get(var) for var in wanted}
    for var, value in wanted.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    yield folder
    for var, value in old.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
