"""One rule for the cells of the what-if and report tables, in the terminal and in
the HTML report (docs/whatif.md, "Reading the tables"):

* ``threshold``: ``none`` where there is no carbon threshold;
* any other missing value (NaN, None, NA): ``-``;
* counts (``counts``: by default a row's ``index``, ``interruptions`` and
  ``migrations``; a view's ``rank``, ``scenarios``, ``no_plan``, ``left_out``) as
  whole numbers;
* every other number, means included, with 1 decimal in the terminal and 2 in HTML.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

MISSING = "-"
NO_THRESHOLD = "none"
ROW_COUNTS = ("index", "interruptions", "migrations")
TERMINAL_DECIMALS = 1
HTML_DECIMALS = 2


def cell(value: Any, column: str, *, counts: Iterable[str] = ROW_COUNTS,
         decimals: int = TERMINAL_DECIMALS) -> str:
    """The text of one cell of ``column``."""
    if _missing(value):
        return NO_THRESHOLD if column == "threshold" else MISSING
    if not _is_number(value):
        return str(value)
    if column in counts:
        return f"{round(float(value)):,d}"
    if isinstance(value, float | np.floating):
        text = f"{value:,.{decimals}f}"
        return text[1:] if text.startswith("-") and not text.strip("-0.,") else text
    return str(value)


def _missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and not isinstance(value, str)
                             and bool(pd.isna(value)))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def numeric_columns(frame: pd.DataFrame) -> list[bool]:
    """Which columns hold numbers (right-aligned): a numeric dtype, or every value a
    number or missing (a count column of an all-error sweep holds only nulls)."""
    return [pd.api.types.is_numeric_dtype(frame[c])
            or all(_is_number(v) or _missing(v) for v in frame[c])
            for c in frame.columns]


def text_table(frame: pd.DataFrame, counts: Iterable[str] = ROW_COUNTS) -> str:
    """``frame`` as a terminal table (:func:`planner.cli.table.render`) with the
    cells of :func:`cell`, numbers still right-aligned."""
    from greenepoch.planner.report.table import render

    counts = tuple(counts)
    columns = {}
    for col, numeric in zip(frame.columns, numeric_columns(frame), strict=True):
        texts = [cell(v, str(col), counts=counts) for v in frame[col]]
        if numeric:  # render left-aligns text: pad to the column's width instead
            width = max([len(str(col)), *map(len, texts)])
            texts = [t.rjust(width) for t in texts]
        columns[col] = texts
    return render(pd.DataFrame(columns, columns=frame.columns, dtype=object))
