"""Backtests load their observations through an intensity source."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from greenepoch.data.intensity.readers import read_electricitymaps
from greenepoch.data.intensity.source import CachedSource, ClimatologySource, ExportFolderSource
from greenepoch.forecasts.base import ForecastError
from greenepoch.forecasts.data import load_values
from source_fixtures import write_exports


def test_load_values_reads_through_a_source(tmp_path: Path) -> None:
    folder = write_exports(tmp_path)
    read = read_electricitymaps(folder).values
    pd.testing.assert_frame_equal(load_values(str(folder), "direct", "all"), read)
    cached = CachedSource(ExportFolderSource(folder))
    pd.testing.assert_frame_equal(load_values(None, "direct", "GB", source=cached),
                                  read[["GB"]])
    assert cached.reads == 1
    with pytest.raises(ForecastError, match="need measured data"):
        load_values(None)


def test_load_values_refuses_an_unbounded_source() -> None:
    from greenepoch.data.errors import DataError

    with pytest.raises(DataError, match="give start and end"):
        load_values(None, "direct", "DE", source=ClimatologySource())
