"""Parsing of user-given values: times and durations (UTC timestamps, '15min', '2h',
'60s') and strictly typed scalars (booleans, whole counts, finite numbers, text).

The scalar readers never coerce: ``"false"`` is not a boolean, ``12.9`` is not a
count, ``true`` is not a number.  Every error names the field, the value found, what
was expected and how to write it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from greenepoch.data.errors import RequestError


def utc(value: object, field: str) -> pd.Timestamp:
    """A tz-aware UTC timestamp from ISO 8601 text (offset required) or a datetime."""
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise RequestError(
            f"{field}: cannot read {value!r} as a time; use ISO 8601 like 2023-06-01T00:00:00Z"
        ) from exc
    if ts is pd.NaT:
        raise RequestError(f"{field}: empty time; use ISO 8601 like 2023-06-01T00:00:00Z")
    if ts.tzinfo is None:
        raise RequestError(
            f"{field}: {value!r} has no UTC offset; write it as e.g. 2023-06-01T00:00:00Z"
        )
    return ts.tz_convert("UTC")


#: longest duration a request, spec or config may give
MAX_DURATION = pd.Timedelta(days=36525)


def duration(value: object, field: str) -> pd.Timedelta:
    """A non-negative duration from text like '15min', '2h', '60s', '1 day' or seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RequestError(f"{field} = {shown(value)}: expected a duration, found {kind(value)}; "
                           "write text like '15min', '2h' or a number of seconds")
    try:
        if isinstance(value, int | float):
            td = pd.Timedelta(seconds=float(value))
        elif _bare_number(str(value)):  # pandas would read '96' as nanoseconds
            bare = str(value).strip()
            raise RequestError(f"{field}: {value!r} has no unit; write e.g. '{bare}h', "
                               f"'{bare}min' or '{bare}s'")
        else:
            td = pd.Timedelta(str(value))
    except (ValueError, TypeError, OverflowError) as exc:  # overflow: an int beyond a float
        raise RequestError(
            f"{field}: cannot read {shown(value)} as a duration; use e.g. '15min', '2h', '60s'"
        ) from exc
    if td is pd.NaT or td < pd.Timedelta(0):
        raise RequestError(f"{field}: duration {shown(value)} must be zero or positive")
    if td > MAX_DURATION:  # pandas keeps such a value but overflows on the next sum
        raise RequestError(f"{field}: duration {shown(value)} is longer than 100 years; "
                           "check the unit (a number means seconds)")
    return pd.Timedelta(td).as_unit("ns")


def _bare_number(text: str) -> bool:
    try:
        return float(text) != 0
    except ValueError:
        return False


def hours(td: pd.Timedelta) -> float:
    return td / pd.Timedelta("1h")


MAX_COUNT = 1_000_000
"""Largest whole count read from a file (GPUs, interruptions, starts): no cluster
has a million GPUs, and a bound keeps a 20-digit value from overflowing later."""


def kind(value: object) -> str:
    """What a parsed TOML/JSON value is, in words, for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a non-finite number" if not math.isfinite(value) else "a fractional number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if value is None:
        return "nothing"
    return f"a {type(value).__name__}"


def shown(value: object) -> str:
    """A value as written in TOML (``true``, not Python's ``True``), cut to 60 characters."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def boolean(value: object, field: str) -> bool:
    """A TOML/JSON boolean (``true``/``false`` unquoted); text like ``"false"`` is refused."""
    if not isinstance(value, bool):
        raise RequestError(f"{field} = {shown(value)}: expected a boolean, found {kind(value)}; "
                           "write true or false without quotes")
    return value


def count(value: object, field: str, *, low: int = 0, high: int = MAX_COUNT,
          example: str = "8") -> int:
    """A whole number in ``[low, high]``; a float is accepted only when integral (12.0)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{field} = {shown(value)}: expected a whole number, found "
                           f"{kind(value)}; write e.g. {example}")
    if not low <= value <= high:
        raise RequestError(f"{field} = {value}: must be a whole number from {low} to {high}")
    return value


def number(value: object, field: str, *, low: float | None = None,
           high: float | None = None, unit: str = "", example: str = "1.0") -> float:
    """A finite number (int or float, not a boolean) in ``[low, high]`` when given."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"{field} = {shown(value)}: expected a number{unit and ' of ' + unit}, "
                           f"found {kind(value)}; write e.g. {example}")
    try:
        out = float(value)
    except OverflowError:  # an int beyond a float
        out = math.inf
    if not math.isfinite(out):
        raise RequestError(f"{field} = {shown(value)}: expected a finite number"
                           f"{unit and ' of ' + unit}; write e.g. {example}")
    if (low is not None and out < low) or (high is not None and out > high):
        span = (f"from {low:g} to {high:g}" if low is not None and high is not None
                else f"{low:g} or more" if low is not None else f"{high:g} or less")
        raise RequestError(f"{field} = {shown(value)}: must be {span}{unit and ' ' + unit}")
    return out


def text(value: object, field: str, example: str = "'DE'") -> str:
    """A text value (a number or boolean is not silently turned into text)."""
    if not isinstance(value, str):
        raise RequestError(f"{field} = {shown(value)}: expected text, found {kind(value)}; "
                           f"write e.g. {example}")
    return value


def table(value: object, field: str) -> dict[str, Any]:
    """A TOML table (JSON object)."""
    if not isinstance(value, dict):
        raise RequestError(f"{field}: expected a table, found {kind(value)} ({shown(value)})")
    return value


def tables(value: object, field: str) -> list[dict[str, Any]]:
    """A list of tables (TOML ``[[field]]``)."""
    if not isinstance(value, list):
        raise RequestError(f"{field}: expected a list of tables ([[{field}]]), found "
                           f"{kind(value)} ({shown(value)})")
    for i, item in enumerate(value):
        table(item, f"{field}[{i}]")
    return value
