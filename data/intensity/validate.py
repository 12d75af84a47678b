"""Validation of raw per-zone rows into a clean, regular series.

Every error names the file, the row (its line number in the file, header = 1)
and the fix.  Rows of one zone may come from several files; each row keeps its
origin so that an error can point at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError, param
from greenepoch.data.intensity.frame import MAX_INTENSITY, STEPS

MAX_FILLED_GAP = pd.Timedelta("3h")
PLAUSIBLE_MAX_BELOW = 5.0  # gCO2eq/kWh: a whole series under this is suspect, see below
# Grids that are (nearly) all hydro and/or nuclear, where a whole series under
# PLAUSIBLE_MAX_BELOW can be real: Iceland, Norway and its bidding zones, northern
# Sweden, Quebec, Manitoba, British Columbia, Paraguay.
HYDRO_NUCLEAR_ZONES = frozenset({
    "IS", "NO", "NO-NO1", "NO-NO2", "NO-NO3", "NO-NO4", "NO-NO5", "SE", "SE-SE1", "SE-SE2",
    "CA-QC", "CA-MB", "CA-BC", "PY",
})
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


@dataclass(frozen=True)
class RawRows:
    """Rows of one zone as read from files, before any checks.

    ``times`` and ``values`` are the cell texts; ``files`` and ``lines`` say where
    each row came from.  ``times_are_utc`` is True when the column header already
    declares UTC (Electricity Maps' ``Datetime (UTC)``), so naive text is accepted;
    per row when the rows come from files of both formats.  ``scale`` is gCO2eq/kWh
    per unit of each row's value (from its column's header; None: already g/kWh).
    """

    zone: str
    times: np.ndarray
    values: np.ndarray
    estimated: np.ndarray
    files: np.ndarray
    lines: np.ndarray
    times_are_utc: bool | np.ndarray
    scale: np.ndarray | None = None


@dataclass(frozen=True)
class CleanSeries:
    values: pd.Series
    estimated: pd.Series
    filled: pd.Series


def _where(rows: RawRows, i: int) -> str:
    return f"{rows.files[i]}: row {rows.lines[i]}"


def parse_times(rows: RawRows) -> pd.DatetimeIndex:
    """Parse timestamps to UTC; reject unparseable text and (where required) naive times."""
    text = pd.Series(rows.times, dtype="object").fillna("").astype(str).str.strip()
    declared = np.broadcast_to(np.asarray(rows.times_are_utc, dtype=bool), (len(text),))
    if not declared.all():
        naive = ~text.str.contains(_OFFSET) & (text != "") & ~declared
        if naive.any():
            i = int(np.flatnonzero(naive.to_numpy())[0])
            raise DataError(
                f"{_where(rows, i)}: timestamp '{text.iloc[i]}' has no UTC offset. "
                "Write times with an offset, e.g. 2023-01-01T00:00:00Z or +01:00"
            )
    try:
        parsed = pd.to_datetime(text, format="%Y-%m-%d %H:%M:%S", utc=True)
    except (ValueError, TypeError):
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{_where(rows, i)}: cannot parse timestamp '{text.iloc[i]}'. "
            "Use ISO 8601, e.g. 2023-01-01T00:00:00Z"
        )
    return pd.DatetimeIndex(parsed, name="time")


def parse_values(rows: RawRows) -> np.ndarray:
    """Parse numbers; empty cells become NaN (gaps), anything else non-numeric is an error."""
    text = pd.Series(rows.values, dtype="object")
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    empty = text.isna().to_numpy() | (text.astype(str).str.strip() == "").to_numpy()
    bad = np.isnan(numbers) & ~empty
    bad |= np.isinf(numbers)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{_where(rows, i)}: intensity '{rows.values[i]}' is not a number. "
            "Fix or remove the row (an empty cell counts as a gap)"
        )
    if rows.scale is not None:
        numbers = numbers * rows.scale
    negative = numbers < 0
    if negative.any():
        i = int(np.flatnonzero(negative)[0])
        raise DataError(
            f"{_where(rows, i)}: intensity {numbers[i]:g} gCO2eq/kWh is negative. "
            "Carbon intensity cannot be below 0: fix the value"
        )
    absurd = numbers > MAX_INTENSITY
    if absurd.any():
        i = int(np.flatnonzero(absurd)[0])
        read = ("" if rows.scale is None or rows.scale[i] == 1
                else f" ({rows.values[i]} in the column's unit x {rows.scale[i]:g})")
        raise DataError(
            f"{_where(rows, i)}: intensity {numbers[i]:g} gCO2eq/kWh{read} is above "
            f"{MAX_INTENSITY:,.0f}, which no grid reaches. Check the unit (g/kWh expected) "
            "or fix the value"
        )
    return numbers


def check_order(rows: RawRows, times: pd.DatetimeIndex) -> pd.Timedelta:
    """Reject duplicates and backwards steps; return the regular step (one of
    :data:`~greenepoch.data.intensity.frame.STEPS`: 5, 15, 30 or 60 minutes)."""
    dup = np.flatnonzero(times.duplicated())
    if len(dup):
        i = int(dup[0])
        first = int(np.flatnonzero(times == times[i])[0])
        raise DataError(
            f"{_where(rows, i)}: duplicate timestamp {times[i].isoformat()} "
            f"(first seen at {_where(rows, first)}). Remove one of the two rows"
        )
    ns = times.as_unit("ns").asi8
    back = np.flatnonzero(np.diff(ns) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise DataError(
            f"{_where(rows, i)}: timestamp {times[i].isoformat()} comes before the previous "
            f"row's {times[i - 1].isoformat()}. Sort the file by time"
        )
    if len(times) < 2:
        raise DataError(
            f"{_where(rows, 0)}: zone {rows.zone} has {len(times)} row(s); "
            "at least 2 are needed to tell the time step: add rows"
        )
    step = _step(ns)
    if step not in STEPS.values():
        i = int(np.flatnonzero(np.diff(ns) == step.value)[0]) + 1
        raise DataError(
            f"{_where(rows, i)}: zone {rows.zone} has a time step of {step}; "
            "GreenEpoch reads data at 5, 15, 30 or 60 minutes: resample it to one of "
            "those first"
        )
    off_grid = np.flatnonzero((ns - ns[0]) % step.value != 0)
    if len(off_grid):
        i = int(off_grid[0])
        raise DataError(
            f"{_where(rows, i)}: timestamp {times[i].isoformat()} is off the {step} grid "
            f"that starts at {times[0].isoformat()}. Align it to the slot start"
        )
    return step


def _step(ns: np.ndarray) -> pd.Timedelta:
    """The most common difference between consecutive times (ns integers)."""
    diffs = pd.TimedeltaIndex(np.diff(ns))
    return pd.Timedelta(diffs.value_counts().index[0])


def fill_gaps(
    rows: RawRows, series: pd.Series, estimated: pd.Series, allow_gaps: bool,
    step: pd.Timedelta | None = None,
) -> CleanSeries:
    """Reindex to a regular grid, interpolate short gaps, refuse long ones.

    ``step`` is the slot length from :func:`check_order`; when omitted it is the
    most common difference between consecutive times (never just the first one,
    which is longer when a gap follows the first row).
    """
    if step is None:
        step = (_step(pd.DatetimeIndex(series.index).as_unit("ns").asi8) if len(series) > 1
                else STEPS["1h"])
    full = pd.date_range(series.index[0], series.index[-1], freq=step, name="time")
    values = series.reindex(full)
    flags = estimated.reindex(full, fill_value=False).astype(bool)
    missing = values.isna().to_numpy()
    if missing.all():
        raise DataError(
            f"{_where(rows, 0)}: zone {rows.zone} has no intensity values, only empty cells. "
            "Fill in the intensity column or remove the zone's rows"
        )
    if missing.any():
        for start, stop in _runs(missing):
            length = (stop - start) * step
            if length > MAX_FILLED_GAP and not allow_gaps:
                before = series.index.searchsorted(full[start]) - 1
                at = _where(rows, max(int(before), 0))
                raise DataError(
                    f"{at}: zone {rows.zone} has a gap of {_hours(length)} from "
                    f"{full[start].isoformat()} to {full[stop - 1].isoformat()} "
                    f"(at most {_hours(MAX_FILLED_GAP)} are filled). Supply the missing rows, "
                    f"or allow gaps explicitly ({param('allow_gaps')}) to interpolate across it"
                )
        values = values.interpolate(method="time", limit_direction="both")
    return CleanSeries(values, flags, pd.Series(missing, index=full, name=rows.zone))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges of consecutive True values."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _hours(delta: pd.Timedelta) -> str:
    return f"{delta / pd.Timedelta('1h'):g} h"


def check_plausible(rows: RawRows, series: CleanSeries, column: str, allow: bool) -> None:
    """Refuse a series that looks like the wrong unit, unless ``allow``.

    Suspect: every value 0, or every value under ``PLAUSIBLE_MAX_BELOW`` gCO2eq/kWh in
    a zone outside ``HYDRO_NUCLEAR_ZONES`` (kgCO2eq/kWh read as g/kWh gives 0.05-1).
    """
    if allow:
        return
    values = series.values.to_numpy(dtype=float)
    files = ", ".join(dict.fromkeys(str(f) for f in pd.unique(rows.files)))
    unsure = f"if the values are right, pass {param('allow_implausible')} (or set " \
             "GREENEPOCH_ALLOW_IMPLAUSIBLE=1)"
    if (values == 0).all():
        raise DataError(
            f"{files}: zone {rows.zone}: every value in {column!r} is 0, which no grid "
            "sustains: the column looks empty or in the wrong unit. Export it again; "
            f"{unsure}"
        )
    top = float(values.max())
    if top < PLAUSIBLE_MAX_BELOW and rows.zone not in HYDRO_NUCLEAR_ZONES:
        raise DataError(
            f"{files}: zone {rows.zone}: every value in {column!r} is under "
            f"{PLAUSIBLE_MAX_BELOW:g} gCO2eq/kWh (max {top:g}), implausible for a grid that "
            "is not hydro/nuclear-only: it looks like kgCO2eq/kWh under a g/kWh header. "
            f"Fix the unit in the header (e.g. 'Carbon Intensity kgCO₂eq/kWh (direct)'); "
            f"{unsure}"
        )


def clean(rows: RawRows, allow_gaps: bool = False) -> CleanSeries:
    """All checks, in the order a user would fix them."""
    times = parse_times(rows)
    numbers = parse_values(rows)
    step = check_order(rows, times)
    series = pd.Series(numbers, index=times, name=rows.zone)
    estimated = pd.Series(rows.estimated.astype(bool), index=times, name=rows.zone)
    return fill_gaps(rows, series, estimated, allow_gaps, step=step)
