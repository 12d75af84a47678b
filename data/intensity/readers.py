"""Readers: Electricity Maps data-portal exports and a generic long-format CSV.

One reader path for every command: :func:`read_electricitymaps` (and its alias
:func:`read_any`) reads a file or a folder and recognises each file's format by its
header, so what ``greenepoch data check`` accepts, ``plan``/``replay``/``forecast``
/``whatif --data`` read too.  The result is
:class:`~planner.intensity.frame.IntensityData` (UTC index, one column per zone, in
gCO2eq/kWh) after the checks in :mod:`planner.intensity.validate`.

Before any cell is parsed, each file is checked as text: its unit (from the signal
column's header), the field count of every row, a last row cut off inside its value,
and (for exports) that its ``Zone Id`` is the one its name says.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.frame import SIGNALS, IntensityData
from greenepoch.data.intensity.resample import resample
from greenepoch.data.intensity.validate import CleanSeries, RawRows, check_plausible, clean

EM_TIME = "Datetime (UTC)"
EM_ZONE = "Zone Id"
EM_ESTIMATED = "Data Estimated"
_EM_SIGNAL = {
    "direct": re.compile(r"^carbon intensity\s*(?P<unit>.*?)\s*\(direct\)$", re.IGNORECASE),
    "lca": re.compile(r"^carbon intensity\s*(?P<unit>.*?)\s*\(lca\)$", re.IGNORECASE),
}
LONG_COLUMNS = ("time", "zone", "value")

# gCO2eq/kWh per unit of the header; keys are the unit with 'CO2'/'CO2eq'/'CO2e',
# spaces and case removed (gCO₂eq/kWh -> g/kwh).
UNITS_G_PER_KWH = {
    "g/kwh": 1.0,
    "kg/kwh": 1000.0,
    "kg/mwh": 1.0,
    "t/mwh": 1000.0,
    "lb/mwh": 0.45359237,
    "lbs/mwh": 0.45359237,
}
_UNIT_NAMES = "gCO₂eq/kWh, kgCO₂eq/kWh, kgCO₂eq/MWh, tCO₂eq/MWh or lbsCO₂eq/MWh"

ALLOW_IMPLAUSIBLE_ENV = "GREENEPOCH_ALLOW_IMPLAUSIBLE"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")

Progress = Callable[[str], None]


def _check_signal(signal: str) -> str:
    key = signal.lower()
    if key not in SIGNALS:
        raise DataError(f"unknown signal {signal!r}: use one of {', '.join(SIGNALS)}")
    return key


def implausible_allowed(explicit: bool | None = None) -> bool:
    """Whether series that look like the wrong unit are accepted: ``explicit`` if
    given, else ``$GREENEPOCH_ALLOW_IMPLAUSIBLE`` (what ``--allow-implausible`` sets)."""
    if explicit is not None:
        return explicit
    text = os.environ.get(ALLOW_IMPLAUSIBLE_ENV, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DataError(
        f"${ALLOW_IMPLAUSIBLE_ENV} is {os.environ[ALLOW_IMPLAUSIBLE_ENV]!r}; "
        "expected 1 or 0 (true/false): fix or unset it"
    )


def _kind(path: Path) -> str:
    """What a non-regular path is, for messages."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "a broken link"
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def skipped_files(path: str | Path) -> list[str]:
    """'PATH: why' for each ``*.csv`` in the data folder ``path`` that is not a regular
    file (a FIFO, socket, device, folder or broken link) and so is not read."""
    folder = Path(path)
    if not folder.is_dir():
        return []
    if (folder / "electricitymaps").is_dir():
        folder = folder / "electricitymaps"
    return [f"{f}: {_kind(f)}, not a regular file"
            for f in sorted(folder.glob("*.csv")) if not f.is_file()]


def _csv_files(path: Path) -> tuple[list[Path], list[str]]:
    """The regular ``.csv`` files at ``path`` and, for the rest, 'NAME: why skipped'.

    Only regular files are opened: a FIFO named ``*.csv`` would block the read forever.
    """
    if path.is_file():
        return [path], []
    if path.is_dir():
        nested = path / "electricitymaps"
        folder = nested if nested.is_dir() else path
        files = [f for f in sorted(folder.glob("*.csv")) if f.is_file()]
        skipped = skipped_files(path)
        if not files:
            also = f" (skipped {'; '.join(skipped)})" if skipped else ""
            raise DataError(
                f"{path}: no .csv files found{also}. Point at a folder of Electricity Maps "
                "exports (ZONE_YEAR_hourly.csv) or at a folder holding 'electricitymaps/'"
            )
        return files, skipped
    if path.exists() or path.is_symlink():
        raise DataError(
            f"{path}: {_kind(path)}, not a regular file; GreenEpoch reads regular CSV files "
            "only. Point at the export file (or its folder) itself"
        )
    raise DataError(f"{path}: no such file or folder")


@dataclass(frozen=True)
class _Text:
    """One file's text, its header and where each data row starts (line numbers)."""

    text: str
    header: list[str]
    lines: np.ndarray  # 1-based line number of each data row
    fields: np.ndarray  # number of fields in each data row


def _read_raw(file: Path) -> _Text:
    try:
        raw = file.read_bytes()
    except IsADirectoryError as exc:  # pragma: no cover - filtered by _csv_files
        raise DataError(f"{file}: a folder, not a CSV file") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not a readable CSV file ({exc}). Export it again as CSV "
                        "(UTF-8)") from exc
    if not text.strip():
        raise DataError(f"{file}: the file is empty. Export it again")
    if '"' in text:  # quoted fields may hold commas or newlines: let csv count
        rows = csv.reader(io.StringIO(text, newline=""))
        header = next(rows)
        numbered = [(rows.line_num, len(row)) for row in rows if row]
        lines = np.asarray([n for n, _ in numbered], dtype=int)
        fields = np.asarray([f for _, f in numbered], dtype=int)
    else:
        header = text.split("\n", 1)[0].rstrip("\r").split(",")
        lines, fields = _count_fields(text.encode("utf-8"))
    return _Text(text, [h.strip() for h in header], lines, fields)


def _count_fields(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Line numbers and field counts of the non-blank lines after the header, for text
    without quotes (vectorised: 8,760 rows take well under a millisecond)."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    breaks = np.flatnonzero(buf == ord("\n"))
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(buf)]])
    commas = np.flatnonzero(buf == ord(","))
    count = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
    length = ends - starts
    cr = np.zeros(len(ends), dtype=bool)
    cr[length > 0] = buf[ends[length > 0] - 1] == ord("\r")
    blank = (length - cr) == 0
    numbers = np.arange(1, len(starts) + 1)
    keep = ~blank & (numbers > 1)
    return numbers[keep], count[keep] + 1


def _check_rows(file: Path, raw: _Text, value_column: str) -> None:
    """Refuse rows with another field count than the header, and a last row whose
    value ends the file without a newline (a cut-off export: '...,DE,34' for 349.08)."""
    if not len(raw.lines):
        raise DataError(
            f"{file}: row 2: no data rows below the header. "
            "Export it again with its data, or remove the file"
        )
    width = len(raw.header)
    wrong = np.flatnonzero(raw.fields != width)
    if len(wrong):
        i = int(wrong[0])
        found = int(raw.fields[i])
        what = "fewer" if found < width else "more"
        hint = ("the row looks cut off" if found < width
                else "a value holds an unquoted comma or the row has extra cells")
        raise DataError(
            f"{file}: row {raw.lines[i]}: {found} field(s), {what} than the header's {width}; "
            f"{hint}. Export the file again, or fix or remove the row"
        )
    if raw.header[-1] == value_column and not raw.text.endswith("\n"):
        last = raw.text.rsplit("\n", 1)[-1].rstrip("\r")
        value = last.rsplit(",", 1)[-1]
        raise DataError(
            f"{file}: row {raw.lines[-1]}: the file ends inside the value {value!r} with no "
            "newline after it, while the rows above end with one: the export looks cut off "
            "(the value may be truncated). Export it again, or end the file with a newline "
            "if the row is complete"
        )


def _frame(file: Path, raw: _Text, columns: Iterable[str]) -> pd.DataFrame:
    keep = set(columns)
    try:
        frame = pd.read_csv(io.StringIO(raw.text), dtype=str, keep_default_na=False,
                            na_values=[""], usecols=lambda c: c.strip() in keep)
    except pd.errors.ParserError as exc:
        raise DataError(f"{file}: not a readable CSV file ({exc}). Export it again as CSV"
                        ) from exc
    frame.columns = [c.strip() for c in frame.columns]
    if len(frame) != len(raw.lines):  # pragma: no cover - both count non-blank rows
        raise DataError(f"{file}: rows could not be counted consistently; export it again")
    frame["line"] = raw.lines
    frame["file"] = str(file)
    return frame


def unit_factor(file: Path | str, column: str) -> float:
    """gCO2eq/kWh per unit of the signal column ``column`` (its header names the unit)."""
    match = next((m for m in (p.match(column.strip()) for p in _EM_SIGNAL.values()) if m),
                 None)
    unit = match.group("unit").strip() if match else ""
    key = re.sub(r"co2(?:eq|e)?", "", unit.lower().replace("₂", "2").replace(" ", ""))
    if key in UNITS_G_PER_KWH:
        return UNITS_G_PER_KWH[key]
    named = f"unit {unit!r}" if unit else "no unit"
    raise DataError(
        f"{file}: row 1: column {column!r} has {named}; GreenEpoch converts {_UNIT_NAMES}. "
        "Write one of those units in the header (e.g. 'Carbon Intensity gCO₂eq/kWh (direct)'), "
        "converting the values if needed"
    )


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


@dataclass
class _Part:
    """The rows of one zone from one file, in a common layout."""

    zone: str
    frame: pd.DataFrame  # columns time, value, estimated (flags, bool), file, line
    factor: float  # gCO2eq/kWh per unit of 'value'
    times_are_utc: bool
    column: str  # the value column's header, for messages


def _is_long(header: list[str]) -> bool:
    lowered = [c.strip().lower() for c in header]
    return all(c in lowered for c in LONG_COLUMNS)


def _read_export(file: Path, raw: _Text, signal: str) -> list[_Part]:
    if signal not in _EM_SIGNAL:
        raise DataError(
            f"{file}: an Electricity Maps export holds the average signals (direct, lca), "
            f"not {signal!r}. Read {signal} values from a long-format CSV "
            "(time,zone,value) or pick the signal direct or lca"
        )
    signal_col = _em_columns(file, raw.header, signal)
    factor = unit_factor(file, signal_col)
    _check_rows(file, raw, signal_col)
    frame = _frame(file, raw, (EM_TIME, EM_ZONE, EM_ESTIMATED, signal_col))
    flags = _bool_flags(frame[EM_ESTIMATED], frame["file"].to_numpy(dtype=object),
                        frame["line"].to_numpy())
    frame = pd.DataFrame({"time": frame[EM_TIME], "value": frame[signal_col],
                          "estimated": flags, "file": frame["file"], "line": frame["line"],
                          "zone": frame[EM_ZONE]})
    parts = _split_zones(file, frame, EM_ZONE, factor, True, signal_col)
    _check_file_zone(file, parts)
    return parts


def _read_long(file: Path, raw: _Text) -> list[_Part]:
    value_col = next(c for c in raw.header if c.strip().lower() == "value")
    _check_rows(file, raw, value_col)
    frame = _frame(file, raw, raw.header)
    frame.columns = [c.lower() if c.lower() in (*LONG_COLUMNS, "estimated") else c
                     for c in frame.columns]
    flags = (
        _bool_flags(frame["estimated"], frame["file"].to_numpy(dtype=object),
                    frame["line"].to_numpy(), "estimated") if "estimated" in frame
        else np.zeros(len(frame), dtype=bool)
    )
    frame = pd.DataFrame({"time": frame["time"], "value": frame["value"], "estimated": flags,
                          "file": frame["file"], "line": frame["line"], "zone": frame["zone"]})
    return _split_zones(file, frame, "zone", 1.0, False, "value")


def _split_zones(file: Path, frame: pd.DataFrame, column: str, factor: float,
                 times_are_utc: bool, value_col: str) -> list[_Part]:
    parts = []
    for zone, part in frame.groupby("zone", sort=True, dropna=False):
        if pd.isna(zone) or not str(zone).strip():
            i = int(part["line"].iloc[0])
            raise DataError(f"{file}: row {i}: empty '{column}'. Fill in the zone id")
        parts.append(_Part(str(zone).strip(), part.drop(columns="zone"), factor,
                           times_are_utc, value_col))
    return parts


def _check_file_zone(file: Path, parts: list[_Part]) -> None:
    """An export holds one zone, the one its name says (``DE_2023_hourly.csv``: DE)."""
    if len(parts) > 1:
        first = sorted(parts, key=lambda p: int(p.frame["line"].iloc[0]))
        where = ", ".join(f"{p.zone} (first at row {int(p.frame['line'].iloc[0])})"
                          for p in first)
        raise DataError(
            f"{file}: mixes zones {where} in its '{EM_ZONE}' column; an Electricity Maps "
            "export holds one zone. Split it into one file per zone (ZONE_YEAR_hourly.csv), "
            "or use the long format (time,zone,value) for several zones in one file"
        )
    named = _file_zone(file)
    if named is not None and parts and parts[0].zone != named:
        held = parts[0].zone
        line = int(parts[0].frame["line"].iloc[0])
        raise DataError(
            f"{file}: row {line}: the file is named for zone {named} but holds zone {held} "
            f"('{EM_ZONE}' column). Rename it to {held}{file.name[len(named):]}, or replace "
            f"it with {named}'s export"
        )


def _read_file(file: Path, signal: str) -> list[_Part]:
    raw = _read_raw(file)
    if _is_long(raw.header):
        return _read_long(file, raw)
    return _read_export(file, raw, signal)


def read_electricitymaps(
    path: str | Path, signal: str = "direct", allow_gaps: bool = False,
    zones: Iterable[str] | None = None, allow_implausible: bool | None = None,
    progress: Progress | None = None,
) -> IntensityData:
    """Read one file or a folder of files into one frame: Electricity Maps exports
    and long-format CSVs (``time,zone,value``), each recognised by its header.

    Files may be at 5, 15, 30 or 60 minutes.  Zones of different steps in one folder
    are brought to the coarsest one by the energy-weighted rule of
    :mod:`~greenepoch.data.intensity.resample` (a slot averages the periods inside it),
    so that one frame holds them all.

    Parameters
    ----------
    path : file or folder
        An Electricity Maps data-portal CSV or long-format CSV, a folder of them,
        or a folder that holds an ``electricitymaps/`` folder of them.  Only regular
        files are read; others named ``*.csv`` are skipped and listed in ``skipped``.
    signal : {'direct', 'lca', 'marginal'}
        Which carbon-intensity column of an export to read (a long-format file has
        one, and is the only format that holds marginal values).
    allow_gaps : bool
        Interpolate gaps longer than 3 hours too (they are recorded in ``filled``)
        instead of refusing them.
    zones : optional
        Read only files whose name starts with one of these zone ids (faster) or
        does not name a zone, and return only these zones.
    allow_implausible : bool, optional
        Accept a series that looks like the wrong unit (all zeros, or every value
        under 5 gCO2eq/kWh in a zone that is not hydro/nuclear-only).  Default:
        ``$GREENEPOCH_ALLOW_IMPLAUSIBLE``.
    progress : callable, optional
        Called with each file's name once it is read.
    """
    signal = _check_signal(signal)
    allow = implausible_allowed(allow_implausible)
    every_file, skipped = _csv_files(Path(path))
    files = every_file
    if zones is not None:
        wanted = list(zones)
        files = [f for f in files if _file_zone(f) in set(wanted) or _file_zone(f) is None]
    per_zone: dict[str, list[_Part]] = {}
    for file in files:
        for part in _read_file(file, signal):
            per_zone.setdefault(part.zone, []).append(part)
        if progress is not None:
            progress(file.name)
    if zones is not None:
        absent = [z for z in wanted if z not in per_zone]
        if absent:
            named = {z for z in map(_file_zone, every_file) if z is not None}
            available = sorted(named | set(per_zone))
            raise DataError(
                f"{path}: no export files for zone(s) {', '.join(absent)}; "
                f"available: {', '.join(available) or 'none'}. Pick zones "
                "from that list (or add their exports to the folder)"
            )
        per_zone = {z: per_zone[z] for z in wanted}
    series = {}
    for zone, parts in per_zone.items():
        rows = _raw_rows(zone, parts)
        cleaned = clean(rows, allow_gaps)
        check_plausible(rows, cleaned, ", ".join(sorted({p.column for p in parts})), allow)
        series[zone] = cleaned
    return _assemble(series, signal, tuple(str(f) for f in files), "real", tuple(skipped))


def _raw_rows(zone: str, parts: list[_Part]) -> RawRows:
    parts = sorted(parts, key=lambda p: str(p.frame["time"].iloc[0]))
    joined = pd.concat([p.frame for p in parts], ignore_index=True)
    sizes = [len(p.frame) for p in parts]
    return RawRows(
        zone=zone,
        times=joined["time"].to_numpy(dtype=object),
        values=joined["value"].to_numpy(dtype=object),
        estimated=joined["estimated"].to_numpy(dtype=bool),
        files=joined["file"].to_numpy(dtype=object),
        lines=joined["line"].to_numpy(),
        times_are_utc=np.repeat([p.times_are_utc for p in parts], sizes),
        scale=np.repeat([p.factor for p in parts], sizes),
    )


def read_long_csv(path: str | Path, signal: str = "direct", allow_gaps: bool = False,
                  source: str = "real", allow_implausible: bool | None = None) -> IntensityData:
    """Read a long-format CSV with columns ``time, zone, value`` (optional ``estimated``).

    ``time`` must carry a UTC offset (``Z`` or ``+HH:MM``); ``value`` is gCO2eq/kWh.
    """
    signal = _check_signal(signal)
    file = Path(path)
    if not file.is_file():
        _csv_files(file)  # names what it is instead
        raise DataError(f"{file}: a folder; give the long-format CSV file itself")
    raw = _read_raw(file)
    if not _is_long(raw.header):
        lowered = [c.strip().lower() for c in raw.header]
        missing = [c for c in LONG_COLUMNS if c not in lowered]
        raise DataError(
            f"{file}: row 1: missing column(s) {', '.join(missing)}. "
            "Expected a header 'time,zone,value' (value in gCO2eq/kWh)"
        )
    data = read_electricitymaps(file, signal=signal, allow_gaps=allow_gaps,
                                allow_implausible=allow_implausible)
    if source == data.source:
        return data
    return IntensityData(data.values, data.estimated, data.filled, source, signal, data.files)


def named_zones(path: str | Path) -> list[str | None]:
    """The zone each export file under ``path`` is named after (``DE_2023_hourly.csv``:
    ``DE``), None for a file whose name does not say (only reading it would tell)."""
    return [_file_zone(f) for f in _csv_files(Path(path))[0]]


def zones_in(path: str | Path) -> dict[str, list[str]]:
    """Which zones the files under ``path`` hold, and in which files, without reading
    their values: an export by its name (else its first ``Zone Id``), a long-format
    file by its ``zone`` column."""
    found: dict[str, list[str]] = {}
    for file in _csv_files(Path(path))[0]:
        named = _file_zone(file)
        if named is not None:
            held = [named]
        else:
            raw = _read_raw(file)
            column = "zone" if _is_long(raw.header) else EM_ZONE
            if not any(c.strip().lower() == column.lower() for c in raw.header):
                continue
            frame = _frame(file, raw, [c for c in raw.header
                                       if c.strip().lower() == column.lower()])
            held = sorted({str(z).strip() for z in frame.iloc[:, 0].dropna()} - {""})
        for zone in held:
            found.setdefault(zone, []).append(str(file))
    return found


def _file_zone(file: Path) -> str | None:
    match = re.match(r"^(.+?)_\d{4}_", file.name)
    return match.group(1) if match else None


def _coarsest(series: dict[str, CleanSeries], signal: str) -> dict[str, CleanSeries]:
    """Every zone on the coarsest step among them (energy-weighted means)."""
    steps = {z: pd.Timedelta(s.values.index[1] - s.values.index[0])
             for z, s in series.items() if len(s.values) > 1}
    if len(set(steps.values())) < 2:
        return series
    goal = max(steps.values())
    out = dict(series)
    for zone, step in steps.items():
        if step == goal:
            continue
        s = series[zone]
        one = IntensityData(s.values.to_frame(zone), s.estimated.to_frame(zone),
                            s.filled.to_frame(zone), signal=signal)
        coarse = resample(one, goal)
        out[zone] = CleanSeries(coarse.values[zone], coarse.estimated[zone],
                                coarse.filled[zone])
    return out


def _assemble(series: dict, signal: str, files: tuple[str, ...], source: str,
              skipped: tuple[str, ...] = ()) -> IntensityData:
    if not series:
        raise DataError("no rows found in the input")
    series = _coarsest(series, signal)
    zones = sorted(series)
    values = pd.concat({z: series[z].values for z in zones}, axis=1, join="inner")
    if values.empty:
        raise DataError(f"zones {', '.join(zones)} share no common time range")
    values.index.name = "time"
    values.columns.name = None
    est = pd.concat({z: series[z].estimated for z in zones}, axis=1).reindex(values.index)
    filled = pd.concat({z: series[z].filled for z in zones}, axis=1).reindex(values.index)
    return IntensityData(values.astype(float), est.astype(bool), filled.astype(bool),
                         source, signal, files, skipped)


def read_any(path: str | Path, signal: str = "direct", allow_gaps: bool = False,
             allow_implausible: bool | None = None) -> IntensityData:
    """Read exports and long-format CSVs (file or folder), each by its header: the same
    reader every command uses (:func:`read_electricitymaps`)."""
    return read_electricitymaps(path, signal=signal, allow_gaps=allow_gaps,
                                allow_implausible=allow_implausible)
