"""Where intensities come from: real exports (``--data`` / ``GREENEPOCH_DATA``) or
the embedded synthetic default generated from the shipped climatology."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.data.intensity.readers import read_electricitymaps
from greenepoch.data.intensity.resample import resample

DATA_ENV = "GREENEPOCH_DATA"


def data_dir(explicit: str | Path | None = None) -> Path | None:
    """The real-data folder to use, or None for the embedded default.

    ``explicit`` wins over ``$GREENEPOCH_DATA``.  A folder holding an
    ``electricitymaps/`` folder (like the shared data folder) is accepted as is.
    """
    chosen = explicit if explicit not in (None, "") else os.environ.get(DATA_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.exists():
        # the CLI's --data falls back on the variable: name the variable when it was that
        from_env = explicit in (None, "") or str(explicit) == os.environ.get(DATA_ENV)
        origin = f"${DATA_ENV}" if from_env else "--data"
        raise DataError(
            f"{origin} points at {path}, which does not exist. Fix the path, or unset it "
            "to use the embedded synthetic default"
        )
    return path


def prices_dir(root: Path | None) -> Path | None:
    """The ``prices/`` folder beside ``electricitymaps/``, if there is one."""
    if root is None:
        return None
    candidate = root / "prices"
    return candidate if candidate.is_dir() else None


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
    """Intensities for ``zones`` over ``[start, end)``, real if a data folder is set,
    synthetic (labelled so) otherwise.  ``clip_start``: start where the real data
    starts if ``start`` is earlier (for history that is nice to have, not needed)."""
    for name, ts in (("start", start), ("end", end)):
        if ts.tzinfo is None:
            raise DataError(f"{name} {ts} has no time zone; give it in UTC, e.g. 2023-06-01T00:00Z")
    root = data_dir(data)
    if root is None:
        from greenepoch.data.intensity.climatology import embedded_climatology, synthesize

        return synthesize(embedded_climatology(signal), zones, start, end, slot=slot, seed=seed)
    loaded = read_electricitymaps(root, signal=signal, allow_gaps=allow_gaps, zones=zones)
    covered = loaded.values.index
    last = covered[-1] + loaded.step
    if clip_start and end > covered[0]:  # history before the data is nice to have
        start = max(start, covered[0])
    if start < covered[0] or end > last:
        raise DataError(
            f"the data in {root} covers {covered[0].isoformat()} .. {last.isoformat()}, "
            f"but {start.isoformat()} .. {end.isoformat()} was asked for. Pick dates inside it, "
            "add export files for the missing years, or plan on the embedded synthetic "
            "default (no --data, GREENEPOCH_DATA unset or empty)"
        )
    return resample(loaded.select(zones, start, end), slot)
