"""Readers: Electricity Maps data-portal exports and a generic long-format CSV.

Both return :class:`~planner.intensity.frame.IntensityData` (UTC index, one
column per zone) after the checks in :mod:`planner.intensity.validate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from planner.errors import DataError
from planner.intensity.frame import SIGNALS, IntensityData
from planner.intensity.validate import RawRows, clean

EM_TIME = "Datetime (UTC)"
EM_ZONE = "Zone Id"
EM_ESTIMATED = "Data Estimated"
_EM_SIGNAL = {
    "direct": re.compile(r"^carbon intensity .*\(direct\)$", re.IGNORECASE),
    "lca": re.compile(r"^carbon intensity .*\(lca\)$", re.IGNORECASE),
}
LONG_COLUMNS = ("time", "zone", "value")


def _check_signal(signal: str) -> str:
    key = signal.lower()
    if key not in SIGNALS:
        raise DataError(f"unknown signal {signal!r}: use 'direct' or 'lca'")
    return key


def _csv_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        nested = path / "electricitymaps"
        folder = nested if nested.is_dir() else path
        files = sorted(folder.glob("*.csv"))
        if not files:
            raise DataError(
                f"{path}: no .csv files found. Point at a folder of Electricity Maps "
                "exports (ZONE_YEAR_hourly.csv) or at a folder holding 'electricitymaps/'"
            )
        return files
    raise DataError(f"{path}: no such file or folder")


def _read_text(file: Path, usecols: Callable[[str], bool] | None = None) -> pd.DataFrame:
    try:
        return pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""],
                           usecols=usecols)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: not a readable CSV file ({exc}). Export it again as CSV") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{file}: the file is empty. Export it again") from exc


def _em_columns(file: Path, header: list[str], signal: str) -> str:
    signal_col = next((c for c in header if _EM_SIGNAL[signal].match(c.strip())), None)
    missing = [c for c in (EM_TIME, EM_ZONE, EM_ESTIMATED) if c not in header]
    if signal_col is None:
        missing.append(f"Carbon Intensity gCO₂eq/kWh ({'direct' if signal == 'direct' else 'LCA'})")
    if missing:
        raise DataError(
            f"{file}: row 1: missing column(s) {', '.join(repr(m) for m in missing)}. "
            "Expected an Electricity Maps data-portal export (hourly CSV) with its original header"
        )
    assert signal_col is not None
    return signal_col


def _bool_flags(text: pd.Series, files: np.ndarray, lines: np.ndarray,
                column: str = EM_ESTIMATED) -> np.ndarray:
    """Parse true/false flags; ``files`` and ``lines`` say where each cell came from."""
    lowered = text.fillna("false").astype(str).str.strip().str.lower()
    known = lowered.isin(["true", "false", "1", "0", ""])
    if not known.all():
        i = int(np.flatnonzero(~known.to_numpy())[0])
        raise DataError(
            f"{files[i]}: row {lines[i]}: '{column}' is {text.iloc[i]!r}; "
            "expected true or false: fix the cell"
        )
    return lowered.isin(["true", "1"]).to_numpy()


def read_electricitymaps(
    path: str | Path, signal: str = "direct", allow_gaps: bool = False,
    zones: Iterable[str] | None = None,
) -> IntensityData:
    """Read one export file or a folder of zone-year export files into one frame.

    Parameters
    ----------
    path : file or folder
        An Electricity Maps data-portal CSV, a folder of them, or a folder that
        holds an ``electricitymaps/`` folder of them.
    signal : {'direct', 'lca'}
        Which carbon-intensity column to read.
    allow_gaps : bool
        Interpolate gaps longer than 3 hours too (they are recorded in ``filled``)
        instead of refusing them.
    zones : optional
        Read only files whose name starts with one of these zone ids (faster);
        the zone of each row is always taken from its ``Zone Id`` column.
    """
    signal = _check_signal(signal)
    files = every_file = _csv_files(Path(path))
    if zones is not None:
        wanted = set(zones)
        files = [f for f in files if _file_zone(f) in wanted or _file_zone(f) is None]
    per_zone: dict[str, list[tuple[Path, pd.DataFrame]]] = {}
    for file in files:
        header = _header(file)
        signal_col = _em_columns(file, header, signal)
        keep = {EM_TIME, EM_ZONE, EM_ESTIMATED, signal_col}
        frame = _read_text(file, usecols=keep.__contains__)
        _require_rows(file, frame)
        frame = frame.rename(columns={signal_col: "value"})
        frame["line"] = np.arange(2, len(frame) + 2)
        frame["file"] = str(file)
        for zone, part in frame.groupby(EM_ZONE, sort=False, dropna=False):
            if pd.isna(zone) or not str(zone).strip():
                i = int(part["line"].iloc[0])
                raise DataError(f"{file}: row {i}: empty '{EM_ZONE}'. Fill in the zone id")
            per_zone.setdefault(str(zone).strip(), []).append((file, part))
    if zones is not None:
        absent = [z for z in zones if z not in per_zone]
        if absent:
            named = {z for z in map(_file_zone, every_file) if z is not None}
            available = sorted(named | set(per_zone))
            raise DataError(
                f"{path}: no export files for zone(s) {', '.join(absent)}; "
                f"available: {', '.join(available) or 'none'}. Pick zones "
                "from that list (or add their exports to the folder)"
            )
    series = {}
    for zone, parts in per_zone.items():
        parts.sort(key=lambda fp: str(fp[1][EM_TIME].iloc[0]))
        joined = pd.concat([p for _, p in parts], ignore_index=True)
        rows = RawRows(
            zone=zone,
            times=joined[EM_TIME].to_numpy(dtype=object),
            values=joined["value"].to_numpy(dtype=object),
            estimated=_bool_flags(joined[EM_ESTIMATED], joined["file"].to_numpy(dtype=object),
                                  joined["line"].to_numpy()),
            files=joined["file"].to_numpy(dtype=object),
            lines=joined["line"].to_numpy(),
            times_are_utc=True,
        )
        series[zone] = clean(rows, allow_gaps)
    return _assemble(series, signal, tuple(str(f) for f in files), "real")


def read_long_csv(path: str | Path, signal: str = "direct", allow_gaps: bool = False,
                  source: str = "real") -> IntensityData:
    """Read a long-format CSV with columns ``time, zone, value`` (optional ``estimated``).

    ``time`` must carry a UTC offset (``Z`` or ``+HH:MM``); ``value`` is gCO2eq/kWh.
    """
    signal = _check_signal(signal)
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file")
    frame = _read_text(file)
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{file}: row 1: missing column(s) {', '.join(missing)}. "
            "Expected a header 'time,zone,value' (value in gCO2eq/kWh)"
        )
    _require_rows(file, frame)
    frame["line"] = np.arange(2, len(frame) + 2)
    series = {}
    for zone, part in frame.groupby("zone", sort=True, dropna=False):
        if pd.isna(zone) or not str(zone).strip():
            i = int(part["line"].iloc[0])
            raise DataError(f"{file}: row {i}: empty 'zone'. Fill in the zone id")
        flags = (
            _bool_flags(part["estimated"], np.full(len(part), str(file), dtype=object),
                        part["line"].to_numpy(), "estimated") if "estimated" in part
            else np.zeros(len(part), dtype=bool)
        )
        rows = RawRows(
            zone=str(zone).strip(),
            times=part["time"].to_numpy(dtype=object),
            values=part["value"].to_numpy(dtype=object),
            estimated=flags,
            files=np.full(len(part), str(file), dtype=object),
            lines=part["line"].to_numpy(),
            times_are_utc=False,
        )
        series[rows.zone] = clean(rows, allow_gaps)
    return _assemble(series, signal, (str(file),), source)


def _header(file: Path) -> list[str]:
    try:
        return list(pd.read_csv(file, nrows=0).columns)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{file}: the file is empty. Export it again") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: not a readable CSV file ({exc}). Export it again as CSV") from exc


def _require_rows(file: Path, frame: pd.DataFrame) -> None:
    if frame.empty:
        raise DataError(
            f"{file}: row 2: no data rows below the header. "
            "Export it again with its data, or remove the file"
        )


def named_zones(path: str | Path) -> list[str | None]:
    """The zone each export file under ``path`` is named after (``DE_2023_hourly.csv``:
    ``DE``), None for a file whose name does not say (only reading it would tell)."""
    return [_file_zone(f) for f in _csv_files(Path(path))]


def _file_zone(file: Path) -> str | None:
    match = re.match(r"^(.+?)_\d{4}_", file.name)
    return match.group(1) if match else None


def _assemble(series: dict, signal: str, files: tuple[str, ...], source: str) -> IntensityData:
    if not series:
        raise DataError("no rows found in the input")
    steps = {pd.Timedelta(s.values.index[1] - s.values.index[0]) for s in series.values()
             if len(s.values) > 1}
    if len(steps) > 1:
        raise DataError(
            "zones have different time steps (" + ", ".join(str(s) for s in steps) + "); "
            "resample them to one slot length first"
        )
    zones = sorted(series)
    values = pd.concat({z: series[z].values for z in zones}, axis=1, join="inner")
    if values.empty:
        raise DataError(f"zones {', '.join(zones)} share no common time range")
    values.index.name = "time"
    values.columns.name = None
    est = pd.concat({z: series[z].estimated for z in zones}, axis=1).reindex(values.index)
    filled = pd.concat({z: series[z].filled for z in zones}, axis=1).reindex(values.index)
    return IntensityData(values.astype(float), est.astype(bool), filled.astype(bool),
                         source, signal, files)


def read_any(path: str | Path, signal: str = "direct", allow_gaps: bool = False) -> IntensityData:
    """Read an Electricity Maps export (file or folder) or a long-format CSV, by its header."""
    target = Path(path)
    if target.is_file():
        header = [c.strip().lower() for c in _header(target)]
        if all(c in header for c in LONG_COLUMNS):
            return read_long_csv(target, signal=signal, allow_gaps=allow_gaps)
    return read_electricitymaps(target, signal=signal, allow_gaps=allow_gaps)
