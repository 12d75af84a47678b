"""Functions over :mod:`greenepoch.data.intensity.source` kept for callers written
before the source interface: the ``--data`` rule (:func:`data_dir`, :func:`prices_dir`,
re-exported from there) and a one-call load.  New code imports
:mod:`greenepoch.data.intensity.source`; this module goes once no caller is left."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.data.intensity.source import DATA_ENV, data_dir, prices_dir, source_for

__all__ = ["DATA_ENV", "data_dir", "load_intensity", "prices_dir"]


def load_intensity(
    zones: list[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    data: str | Path | None = None,
    signal: str = "direct",
    slot: str = "1h",
    seed: int = 0,
    allow_gaps: bool = False,
    clip_start: bool = False,
) -> IntensityData:
    """``source_for(data, seed=seed, allow_gaps=allow_gaps).load(...)``: real if a data
    folder is set, synthetic (labelled so) otherwise."""
    source = source_for(data, seed=seed, allow_gaps=allow_gaps)
    return source.load(zones, start, end, signal=signal, slot=slot, clip_start=clip_start)
