"""The append-only results file of a sweep (JSON Lines).

Line 1 is a header ``{"kind": "greenepoch-whatif", "version": 1, "base": ...,
"data": ..., "signal": ...}``; every further line is one scenario's row, written in
one ``write`` and flushed as soon as the scenario finishes, keyed by
``scenario_id``.  A line cut short by a crash is ignored on reading, and a row whose
id appears twice keeps its first copy.  Rows are tidy: one scenario each, the
columns of :data:`planner.whatif.evaluate.METRICS` plus the axis labels.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import GreenEpochError

KIND = "greenepoch-whatif"
VERSION = 1


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def is_result_file(path: str | Path) -> bool:
    """True when the file starts with a what-if header line."""
    try:
        with open(path, encoding="utf-8") as fh:
            head = json.loads(fh.readline())
    except (OSError, ValueError):
        return False
    return isinstance(head, dict) and head.get("kind") == KIND


class ResultStore:
    """Rows already finished, and an appender for new ones."""

    def __init__(self, path: str | Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.header = {"kind": KIND, "version": VERSION, **header}
        self.rows: dict[str, dict[str, Any]] = {}
        if self.path.exists() and self.path.stat().st_size > 0:
            found, self.rows = read_results(self.path)
            if found.get("base") != self.header.get("base") or \
                    found.get("data") != self.header.get("data") or \
                    found.get("signal") != self.header.get("signal"):
                raise GreenEpochError(
                    f"{self.path} holds the results of another sweep (base request, data or "
                    "signal differ); pass another --out or delete the file to start over"
                )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.header) + "\n", encoding="utf-8")
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":  # a torn last line: start the next row on its own
                self._fh.write("\n")

    def append(self, row: dict[str, Any]) -> None:
        self.rows.setdefault(row["scenario_id"], row)
        line = json.dumps({k: _clean(v) for k, v in row.items()}, allow_nan=False)
        self._fh.write(line + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_results(path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The header and the rows by scenario id (a torn last line is skipped)."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GreenEpochError(f"{file}: cannot read the results file ({exc})") from exc
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    if header.get("kind") != KIND:
        raise GreenEpochError(
            f"{file}: not a what-if results file (its first line is no {KIND!r} header); "
            "write results with 'greenepoch whatif SPEC --out FILE'"
        )
    if header.get("version") != VERSION:
        raise GreenEpochError(f"{file}: results version {header.get('version')!r} is not "
                              f"supported (this GreenEpoch reads {VERSION}); rerun the sweep")
    rows: dict[str, dict[str, Any]] = {}
    for line in lines[1:]:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # cut short by an interruption
        if isinstance(row, dict) and "scenario_id" in row:
            rows.setdefault(row["scenario_id"], row)
    return header, rows


def results_frame(rows: list[dict[str, Any]] | dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame indexed by ``scenario_id``, in scenario order, without the
    nested ``segments`` column."""
    records = list(rows.values()) if isinstance(rows, dict) else list(rows)
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "segments"} for r in records])
    if frame.empty:
        return frame
    frame = frame.sort_values("index", kind="stable").set_index("scenario_id")
    for col in ("emissions_kg", "planned_emissions_kg", "run_now_kg", "saving_kg",
                "savings_pct", "delay_mean_h", "delay_p95_h", "energy_kwh", "cost_usd",
                "slack_h", "threshold", "overhead_min"):
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame
