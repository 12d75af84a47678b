"""Plain-text tables for the terminal."""

from __future__ import annotations

import pandas as pd


def render(frame: pd.DataFrame, floatfmt: str = "{:,.1f}") -> str:
    """Left-aligned text, right-aligned numbers, one header line and a rule."""
    cells: list[list[str]] = [[str(c) for c in frame.columns]]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    for row in frame.itertuples(index=False):
        cells.append([_fmt(v, floatfmt) for v in row])
    widths = [max(len(r[i]) for r in cells) for i in range(len(frame.columns))]
    lines = []
    for n, texts in enumerate(cells):
        parts = [
            c.rjust(w) if numeric[i] and n else c.ljust(w)
            for i, (c, w) in enumerate(zip(texts, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object, floatfmt: str) -> str:
    if isinstance(value, float):
        return floatfmt.format(value)
    return str(value)
