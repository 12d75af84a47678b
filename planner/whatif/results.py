"""The append-only results file of a sweep (JSON Lines).

Line 1 is a header ``{"kind": "greenepoch-whatif", "version": 1, "base": ...,
"data": ..., "signal": ...}``; every further line is one scenario's row, written in
one ``write`` and flushed as soon as the scenario finishes, keyed by
``scenario_id``.  A line cut short by a crash is ignored on reading and cut off when
the file is opened to append, and a row whose id appears twice keeps its first copy.
The header is written atomically; ``<results>.lock`` beside the file keeps a second
sweep out while one runs, and goes when the run ends.  Rows are tidy: one scenario each, the
columns of :data:`METRICS` plus the axis labels.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.atomic import write_atomic
from greenepoch.data.errors import (
    DataError,
    GreenEpochError,
    InfeasibleError,
    NoSolutionError,
)
from greenepoch.data.timeparse import kind, shown

KIND = "greenepoch-whatif"
VERSION = 1
NESTED = ("segments", "deadlines")  # per-row structures kept out of the frame

# a row's ``status``: what happened to its scenario, in table order
STATUSES = {
    "ok": "planned",
    "infeasible": "proved infeasible: no plan exists",
    "no_solution": "no plan within the time limit (none proved impossible)",
    "data_missing": "data missing: the data does not cover the scenario",
    "error": "other error",  # and every row without a plan written before the split
}


#: what each row records of its plan (planner.whatif.evaluate.plan_row), null without one
METRICS = ("emissions_kg", "planned_emissions_kg", "run_now_kg", "saving_kg", "savings_pct",
           "delay_mean_h", "delay_p95_h", "interruptions", "migrations", "energy_kwh",
           "cost_usd")
#: row keys holding a number or null, and text or null: read as written, a quoted
#: number ("12.5") or a boolean is an error naming the row, never coerced
NUMBER_KEYS = ("index", "slack_h", "threshold", "overhead_min", *METRICS, "seconds")
TEXT_KEYS = ("scenario_id", "zones", "season", "start", "forecast", "status", "message",
             "solver", "slot")
FRAME_NUMBERS = tuple(k for k in NUMBER_KEYS
                      if k not in ("index", "interruptions", "migrations", "seconds"))


def status_of(exc: GreenEpochError) -> str:
    """The row status of a scenario whose plan raised ``exc`` (see :data:`STATUSES`)."""
    for error, status in ((InfeasibleError, "infeasible"), (NoSolutionError, "no_solution"),
                          (DataError, "data_missing")):
        if isinstance(exc, error):
            return status
    return "error"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def is_result_file(path: str | Path) -> bool:
    """True when the file starts with a what-if header line."""
    try:
        with open(path, encoding="utf-8") as fh:
            head = json.loads(fh.readline())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(head, dict) and head.get("kind") == KIND


class _Lock:
    """A held lock file; closing removes it, then releases the lock (the process dying
    releases it too, leaving the file for the next run to take over)."""

    def __init__(self, fd: int | None, path: Path | None = None) -> None:
        self.fd = fd
        self.path = path

    def close(self) -> None:
        if self.fd is None:
            return
        if self.path is not None:
            # unlinked while held: a run that opened this file meanwhile finds it gone
            # once it gets the lock, and starts again on a new file (lock_results)
            with contextlib.suppress(OSError):  # one left behind is taken over next run
                self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None


def lock_path(path: str | Path) -> Path:
    """The lock file of a results file: ``<results>.lock`` beside it, while a run holds it."""
    file = Path(path)
    return file.with_name(file.name + ".lock")


def _is_current(fd: int, target: Path) -> bool:
    """True when ``fd`` is still the file at ``target`` (not one a finished run removed)."""
    try:
        here = os.stat(target)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (here.st_dev, here.st_ino)


def lock_results(path: str | Path) -> _Lock:
    """Lock the results file ``path`` for this process, or refuse when another run holds it.

    An advisory ``flock`` on :func:`lock_path`: the kernel releases it when the holder
    exits, however it ends (SIGKILL included), so a stale lock cannot outlive its run.
    The holder's pid is written into the lock file for the refusal message.  Closing
    removes the file while still holding the lock; a run that opened it just before
    sees, once locked, that the path no longer names its file and locks the new one,
    so two runs never hold locks on two files of the same path.  Where ``fcntl`` does
    not exist (Windows) no lock is taken.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        return _Lock(None)
    target = lock_path(path)
    while True:
        try:
            fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise GreenEpochError(
                f"{target}: cannot open the lock file of the results file {path} ({exc}); "
                "write the results into a folder you can write to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise GreenEpochError(
                f"{path} is in use by another whatif run (pid {holder}); wait for it to "
                "finish (it keeps every row it plans) or give another results file"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if _is_current(fd, target):
            break
        os.close(fd)  # its holder removed it as it finished: lock the file there now
    lock = _Lock(fd, target)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except BaseException:
        lock.close()
        raise
    return lock


class ResultStore:
    """Rows already finished, and an appender for new ones.

    Opening takes an exclusive lock on ``<results>.lock`` beside the file (see
    :func:`lock_results`) for as long as the store is open: a second sweep on the same
    results file is refused instead of planning every scenario again.  The header is
    written atomically (:func:`greenepoch.data.atomic.write_atomic`); a last line cut short by
    a hard kill is cut off (or completed, when it is a whole row) before new rows are
    appended, so the file stays one valid JSON document per line.
    """

    def __init__(self, path: str | Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.header = {"kind": KIND, "version": VERSION, **header}
        self.rows: dict[str, dict[str, Any]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = lock_results(self.path)
        try:
            if self.path.exists() and self.path.stat().st_size > 0:
                self._check_and_repair()
            else:
                write_atomic(self.path, json.dumps(self.header) + "\n")
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        except BaseException:
            self._lock.close()
            raise

    def _check_and_repair(self) -> None:
        found, self.rows = read_results(self.path)
        if found.get("base") != self.header.get("base") or \
                found.get("data") != self.header.get("data") or \
                found.get("signal") != self.header.get("signal"):
            raise GreenEpochError(
                f"{self.path} holds the results of another sweep (base request, data or "
                "signal differ); give another results file or delete this one to start over"
            )
        with open(self.path, "rb+") as fh:
            content = fh.read()
            if content.endswith(b"\n"):
                return
            cut = content.rfind(b"\n") + 1  # the torn line starts here
            try:
                whole = isinstance(json.loads(content[cut:]), dict)
            except ValueError:
                whole = False
            if whole:  # killed between the row and its newline: keep the row
                fh.write(b"\n")
            else:
                fh.truncate(cut)
            fh.flush()
            os.fsync(fh.fileno())

    def append(self, row: dict[str, Any]) -> None:
        self.rows.setdefault(row["scenario_id"], row)
        line = json.dumps({k: _clean(v) for k, v in row.items()}, allow_nan=False)
        self._fh.write(line + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            self._lock.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_results(path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The header and the rows by scenario id (a torn last line is skipped)."""
    file = Path(path)
    try:
        # bytes a crash left half-written are not UTF-8: such a line fails to parse below
        lines = file.read_bytes().decode("utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise GreenEpochError(f"{file}: cannot read the results file ({exc})") from exc
    try:
        header = json.loads(lines[0]) if lines else {}
    except (ValueError, RecursionError):
        header = {}
    if not isinstance(header, dict) or header.get("kind") != KIND:
        raise GreenEpochError(
            f"{file}: not a what-if results file (its first line is no {KIND!r} header); "
            "a what-if sweep (greenepoch whatif) writes one"
        )
    if header.get("version") != VERSION:
        raise GreenEpochError(f"{file}: results version {header.get('version')!r} is not "
                              f"supported (this GreenEpoch reads {VERSION}); rerun the sweep")
    rows: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue  # cut short by an interruption
        if isinstance(row, dict) and "scenario_id" in row:
            check_row(row, f"{file}: line {number}")
            rows.setdefault(row["scenario_id"], row)
    return header, rows


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: what each typed key holds besides null: a test, and what the error says was expected
_TYPES = {**dict.fromkeys(NUMBER_KEYS, (_is_number, "a number")),
          **dict.fromkeys(TEXT_KEYS, (lambda v: isinstance(v, str), "text")),
          "segments": (lambda v: isinstance(v, list), "a list of segments"),
          "deadlines": (lambda v: isinstance(v, dict), "an object of job deadlines")}


def check_row(row: dict[str, Any], where: str) -> None:
    """Refuse a row value of the wrong type (``where``: the file and line), naming the
    row and the key: a sweep writes numbers and text, so anything else was edited."""
    sid = row.get("scenario_id")
    at = f"{where} (scenario {sid!r})" if isinstance(sid, str) else where
    for key, (fits, expected) in _TYPES.items():
        value = row.get(key)
        if value is not None and not fits(value):
            raise GreenEpochError(
                f"{at}: {key} = {shown(value)}: expected {expected} or null, found "
                f"{kind(value)}; rerun the sweep (greenepoch whatif) to rewrite the row")


def results_frame(rows: list[dict[str, Any]] | dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame indexed by ``scenario_id``, in scenario order, without the
    nested ``segments`` and ``deadlines`` columns."""
    records = list(rows.values()) if isinstance(rows, dict) else list(rows)
    frame = pd.DataFrame([{k: v for k, v in r.items() if k not in NESTED} for r in records])
    if frame.empty:
        return frame
    frame = frame.sort_values("index", kind="stable").set_index("scenario_id")
    for col in FRAME_NUMBERS:  # numbers or null (check_row): null is NaN
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame
