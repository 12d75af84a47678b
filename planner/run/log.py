"""The run log: one JSON object per line, appended as the run goes.

Every line has ``time`` (ISO 8601 UTC; the simulated time under ``--simulate``),
``event``, ``intensity`` (gCO2eq/kWh, null when unknown) and ``reason``; the controller
adds ``provenance`` ({provider, kind: forecast|actual, stale, age_s}), ``state``
(running|paused), ``energy_kwh`` and ``emissions_kg`` (cumulative, at the intensities
actually seen), ``progress`` (0..1 or null), ``segment``, ``policy`` and ``wall`` (the
real time, ISO 8601 UTC).

Events: ``supervisor`` (the first line: what the run is: command, zone, interval,
deadline, GPUs, power, live or history, what the energy counts), ``start`` (the
training's first start), ``pause``, ``resume``, ``decision``
(one per interval), ``fallback`` (the live source served from a fallback: the next
provider, the archive or the default), ``restart`` (a crashed training started again;
or, with ``"supervisor": true``, a supervisor started again on the same run directory),
``exit`` (the supervisor stops without the training done: interrupted, or it gave up
after crashes) and ``done`` (the training finished).

Each line is flushed as it is written; lines that change the run's state (every event
but ``decision``) are also fsynced, so a supervisor killed with SIGKILL leaves every state
change on disk.  A supervisor started again appends to the same file: the log of one run
directory is one continuous story.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pandas as pd
from greenepoch.data.errors import DataError

EVENTS = ("supervisor", "start", "pause", "resume", "decision", "fallback", "restart", "exit",
          "done")


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def iso(t: pd.Timestamp) -> str:
    """``t`` as ISO 8601 UTC with a ``Z`` (seconds, or milliseconds when it has them)."""
    t = t.tz_convert("UTC")
    text = t.isoformat(timespec="milliseconds") if t.microsecond else \
        t.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def _number(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


class RunLog:
    """The JSON-lines log of one run at ``path`` (opened for appending, created with its
    folder).  ``policy`` is written on every line; ``wall`` is the real clock (tests)."""

    def __init__(self, path: str | Path, *, policy: str,
                 wall: Callable[[], pd.Timestamp] = _utc_now) -> None:
        self.path = Path(path)
        self.policy = policy
        self.wall = wall
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        if _cut_short(self.path):  # a line cut by a SIGKILL: the next starts on its own
            self._append("", sync=True)

    def write(self, event: str, time: pd.Timestamp, *, intensity: float | None = None,
              reason: str = "", **fields: Any) -> dict[str, Any]:
        """Append one line and return it.  ``fields``: the controller's other keys
        (``state``, ``provenance``, ``energy_kwh``, ``emissions_kg``, ``progress``,
        ``segment``, ...); floats are rounded, non-finite ones written as null."""
        if event not in EVENTS:
            raise ValueError(f"unknown run log event {event!r}")
        line: dict[str, Any] = {"time": iso(time), "event": event,
                                "intensity": _number(intensity, 1), "reason": reason}
        for key, value in fields.items():
            if key in ("energy_kwh", "emissions_kg", "progress"):
                value = _number(value, 6)
            line[key] = value
        line["policy"] = self.policy
        line["wall"] = iso(self.wall())
        self._append(json.dumps(line, allow_nan=False), sync=event != "decision")
        return line

    def _append(self, text: str, *, sync: bool) -> None:
        if self._file is None:
            raise ValueError(f"run log {self.path} is closed")
        self._file.write(text + "\n")
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cut_short(path: Path) -> bool:
    """Whether the file's last line lacks its newline."""
    with path.open("rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Every line of a run log.  A last line cut short (the supervisor killed while
    writing it) is dropped; any other line that is not a JSON object is an error."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    out: list[dict[str, Any]] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError:
            if number == len(lines) or _restarted_after(lines, number):
                continue  # cut short by a SIGKILL
            raise DataError(f"{path}:{number}: not a JSON line of a run log") from None
        if not isinstance(item, dict) or "event" not in item or "time" not in item:
            raise DataError(f"{path}:{number}: a run log line needs 'time' and 'event'")
        out.append(item)
    return out


def _restarted_after(lines: list[str], number: int) -> bool:
    """Whether the line after ``number`` (1-based) is a supervisor's restart."""
    try:
        after = json.loads(lines[number])
    except (IndexError, json.JSONDecodeError):
        return False
    return isinstance(after, dict) and after.get("event") == "restart"
