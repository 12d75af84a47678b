"""Parsing of user-given times and durations (UTC timestamps, '15min', '2h', '60s')."""

from __future__ import annotations

import pandas as pd

from planner.errors import RequestError


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


def duration(value: object, field: str) -> pd.Timedelta:
    """A non-negative duration from text like '15min', '2h', '60s', '1 day' or seconds."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            td = pd.Timedelta(seconds=float(value))
        elif _bare_number(str(value)):  # pandas would read '96' as nanoseconds
            bare = str(value).strip()
            raise RequestError(f"{field}: {value!r} has no unit; write e.g. '{bare}h', "
                               f"'{bare}min' or '{bare}s'")
        else:
            td = pd.Timedelta(str(value))
    except (ValueError, TypeError) as exc:
        raise RequestError(
            f"{field}: cannot read {value!r} as a duration; use e.g. '15min', '2h', '60s'"
        ) from exc
    if td is pd.NaT or td < pd.Timedelta(0):
        raise RequestError(f"{field}: duration {value!r} must be zero or positive")
    return td


def _bare_number(text: str) -> bool:
    try:
        return float(text) != 0
    except ValueError:
        return False


def hours(td: pd.Timedelta) -> float:
    return td / pd.Timedelta("1h")
