"""Archived actuals written as Electricity Maps data-portal exports, so that every
command that reads ``--data`` (plan, replay, forecast, whatif, data check) works on
archived live data.

One ``{ZONE}_{YEAR}_hourly.csv`` per zone and UTC year, in the export layout of
``shared/data/README.md`` (the same header, UTC times as ``YYYY-MM-DD HH:MM:SS``,
CRLF line ends), read back by :func:`greenepoch.data.intensity.readers.read_electricitymaps`:

* values are hourly: finer archived periods (5, 15, 30 min) become hours by the
  energy-weighted rule of :mod:`greenepoch.data.intensity.resample`, and only hours
  wholly covered by archived periods are written (a gap stays a gap);
* ``Data Estimated`` is true where any period of the hour was flagged estimated;
* ``Data Source`` names the provider the hour came from; without ``provider`` each
  hour comes from the provider with the most archived hours of the zone in the
  window, then the next one for hours it lacks (and a provider's own hourly values
  before its finer ones);
* the exported signal (``direct`` or ``lca``) decides the rows; the other one's column
  is filled for the same hours where it is archived, empty elsewhere.  The layout has
  no column for ``marginal``: it is refused.

All files are written together (:func:`greenepoch.data.atomic.write_together`): on any
failure none is replaced, and a folder created for the export is removed again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from greenepoch.data.archive.store import Archive
from greenepoch.data.atomic import write_together
from greenepoch.data.errors import DataError, param
from greenepoch.data.intensity.readers import EM_ESTIMATED, EM_TIME, EM_ZONE
from greenepoch.data.intensity.resample import resample_values
from greenepoch.data.regions import load_catalog

HOUR = pd.Timedelta("1h")
DIRECT = "Carbon Intensity gCO₂eq/kWh (direct)"
LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"
COLUMNS = (EM_TIME, "Country", "Zone Name", EM_ZONE, DIRECT, LCA, "Low Carbon Percentage",
           "Renewable Percentage", "Data Source", EM_ESTIMATED, "Data Estimation Method")
EXPORT_SIGNALS = {"direct": DIRECT, "lca": LCA}


def export_electricitymaps(archive: Archive, zones: Iterable[str], start: pd.Timestamp,
                           end: pd.Timestamp, folder: str | Path, *,
                           provider: str | None = None, signal: str = "direct") -> list[Path]:
    """Write the archived ``signal`` of ``zones`` for the hours overlapping ``[start,
    end)`` into ``folder`` (see the module docstring); return the files written."""
    if signal not in EXPORT_SIGNALS:
        raise DataError(
            f"{param('signal')} {signal!r} cannot be exported: the Electricity Maps layout "
            "has columns for the direct and lca signals only (marginal, WattTime's MOER, "
            "has none); export direct or lca")
    first, stop = _window(start, end)
    files: dict[str | Path, str] = {}
    target = Path(folder)
    empty = []
    for zone in dict.fromkeys(zones):
        rows = _hours(archive, zone, signal, first, stop, provider)
        if rows.empty:
            empty.append(zone)
            continue
        other = "lca" if signal == "direct" else "direct"
        extra = _hours(archive, zone, other, first, stop, provider)
        for year, part in rows.groupby(pd.DatetimeIndex(rows.index).year):
            files[target / f"{zone}_{year}_hourly.csv"] = _csv(zone, signal, part, extra)
    if empty:
        who = f" from {provider}" if provider else ""
        raise DataError(
            f"archive {archive.shown} holds no whole hour of {signal} actuals{who} for "
            f"{', '.join(empty)} between {first.isoformat()} and {stop.isoformat()}; fill "
            "it first (greenepoch data pull) or pick another window")
    return _write(target, files)


def _window(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The whole hours overlapping ``[start, end)``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise DataError(f"the export window ({start.isoformat()} to {end.isoformat()}) needs "
                        "UTC times (with an offset)")
    first, stop = start.tz_convert("UTC").floor(HOUR), end.tz_convert("UTC").ceil(HOUR)
    if stop <= first:
        raise DataError(f"the export window ends ({end.isoformat()}) before it starts "
                        f"({start.isoformat()}): the end must be after the start")
    return first, stop


def _hours(archive: Archive, zone: str, signal: str, first: pd.Timestamp, stop: pd.Timestamp,
           provider: str | None) -> pd.DataFrame:
    """Hourly rows of one zone: index time, columns value, estimated, provider."""
    table = archive.actuals(zone, signal, first, stop, provider=provider)
    chosen: list[pd.DataFrame] = []
    taken = pd.DatetimeIndex([], tz="UTC")
    for part in _ranked(table):
        part = part[~part.index.isin(taken)]
        chosen.append(part)
        taken = taken.union(pd.DatetimeIndex(part.index))
    if not chosen:
        return pd.DataFrame({"value": pd.Series(dtype=float),
                             "estimated": pd.Series(dtype=bool),
                             "provider": pd.Series(dtype=object)},
                            index=pd.DatetimeIndex([], tz="UTC", name="time"))
    rows = pd.concat(chosen).sort_index()
    return rows[(rows.index >= first) & (rows.index < stop)]


def _ranked(table: pd.DataFrame) -> list[pd.DataFrame]:
    """The hourly rows of each (provider, step) in ``table``, the preferred first."""
    parts: list[tuple[str, pd.Timedelta, pd.DataFrame]] = []
    for _key, group in table.groupby(["provider", "step"], sort=True):
        name, step = str(group["provider"].iloc[0]), pd.Timedelta(group["step"].iloc[0])
        hourly = _hourly(group, step)
        hourly["provider"] = name
        parts.append((name, step, hourly))
    hours: dict[str, int] = {}
    for name, _step, hourly in parts:
        hours[name] = hours.get(name, 0) + len(hourly)
    parts.sort(key=lambda p: (-hours[p[0]], p[0], p[1] != HOUR, p[1]))
    return [p[2] for p in parts]


def _hourly(group: pd.DataFrame, step: pd.Timedelta) -> pd.DataFrame:
    """One (provider, step) series on whole hours: each run of consecutive periods is
    resampled by the energy-weighted rule (an hour is estimated if any period was)."""
    times = pd.DatetimeIndex(group.index).as_unit("ns")
    breaks = np.flatnonzero(np.diff(times.asi8) != step.as_unit("ns").value) + 1
    pieces = []
    for run in np.split(np.arange(len(times)), breaks):
        frame = pd.DataFrame({"value": group["value"].to_numpy()[run],
                              "estimated": group["estimated"].to_numpy()[run].astype(float)},
                             index=times[run])
        pieces.append(resample_values(frame, HOUR, step))
    hourly = pd.concat(pieces) if pieces else pd.DataFrame(columns=["value", "estimated"])
    hourly["estimated"] = hourly["estimated"].to_numpy(dtype=float) > 0
    hourly.index.name = "time"
    return hourly


def _csv(zone: str, signal: str, rows: pd.DataFrame, other: pd.DataFrame) -> str:
    region = load_catalog().get(zone)
    country = region.country if region else zone
    name = region.name if region else zone
    second = other["value"].reindex(rows.index)
    columns = {DIRECT: rows["value"], LCA: second} if signal == "direct" else {
        DIRECT: second, LCA: rows["value"]}
    frame = pd.DataFrame({
        EM_TIME: pd.DatetimeIndex(rows.index).strftime("%Y-%m-%d %H:%M:%S"),
        "Country": country, "Zone Name": name, EM_ZONE: zone,
        DIRECT: columns[DIRECT].map(_number).to_numpy(),
        LCA: columns[LCA].map(_number).to_numpy(),
        "Low Carbon Percentage": "", "Renewable Percentage": "",
        "Data Source": rows["provider"].to_numpy(),
        EM_ESTIMATED: np.where(rows["estimated"].to_numpy(dtype=bool), "true", "false"),
        "Data Estimation Method": "",
    }, columns=list(COLUMNS))
    text: str = frame.to_csv(index=False, lineterminator="\r\n")
    return text


def _number(value: float) -> str:
    """A value as its shortest exact text (what was archived reads back the same)."""
    return "" if pd.isna(value) else repr(float(value))


def _write(folder: Path, files: dict[str | Path, str]) -> list[Path]:
    """Write every file or none; a folder made here is removed again on failure."""
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: not a folder; give the folder to write the exports into")
    made = next((p for p in reversed([folder, *folder.absolute().parents])
                 if not p.exists()), None)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return write_together(files)
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise
