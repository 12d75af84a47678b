"""Fitted forecast models kept on disk, so re-planning does not refit them.

Fitting ``blend`` takes seconds to tens of seconds (about 11 s of CPU for 4 zones);
a plan only needs the model's parameters to be recent, not refitted at its exact
start.  A model loaded from here forecasts without importing scikit-learn
(:mod:`greenepoch.forecasts.trees`).  :func:`fitted_model` fits a model
on the model's ``history_needed`` before ``fit_until`` (the plan sets it to 00:00
UTC on the Monday of its start's week, :func:`fit_cutoff`) and keeps it under the
cache folder; a later plan whose history in that window is identical loads it
instead.  The key covers the model name, the fitted window (times, zones, values)
and the source of the ``greenepoch.forecasts`` package, so new data or changed model code
never reuse a stale fit.

Folder: ``$GREENEPOCH_CACHE`` if set (``off`` disables the cache), else the user cache
folder of :func:`platformdirs.user_cache_path`: ``$XDG_CACHE_HOME/greenepoch`` or
``~/.cache/greenepoch`` on Linux (a relative ``$XDG_CACHE_HOME`` is ignored, as the XDG
spec asks), ``~/Library/Caches/greenepoch`` on macOS, ``%LOCALAPPDATA%\\greenepoch\\Cache``
on Windows.  Files are pickles written atomically by :func:`greenepoch.data.atomic.write_atomic`
(mode 0644, as every output); after each write the least recently used are deleted
beyond ``MAX_FILES`` files or ``MAX_BYTES`` in all (the newest always stays); delete the
folder to clear it.  A file that cannot be read is
refitted and replaced.

Not ``joblib.Memory``: it keys a DataFrame argument by its pickle, which depends on the
frame's memory layout (two equal frames hashed apart: a spurious refit of seconds to
minutes), checks only the cached function's code (not the models'), logs a traceback for
an unreadable file, and writes around :mod:`greenepoch.data.atomic`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import platformdirs
from greenepoch.data.atomic import write_atomic
from greenepoch.data.errors import GreenEpochError
from greenepoch.forecasts.base import Forecaster
from greenepoch.forecasts.registry import get_model

Progress = Callable[[str], None]


def cache_dir() -> Path | None:
    """Where fitted models are kept, or None when ``GREENEPOCH_CACHE=off``."""
    chosen = os.environ.get("GREENEPOCH_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("off", "") else Path(chosen)
    # appauthor=False: no publisher folder on Windows (greenepoch\Cache)
    return platformdirs.user_cache_path("greenepoch", appauthor=False)


#: fitted models kept; the least recently used beyond this are deleted
MAX_FILES = 64
#: and their size in all: a fitted ``blend`` pickles to about 7 MB + 1 MB per zone
#: (8 MB for 1 zone, 15 MB for 8), so 64 files could take 1.5 GB
MAX_BYTES = 512 * 2**20

#: history the fit must keep when it stops at the week's start (or the model's own
#: ``history_needed`` if shorter); with less it uses everything before the start
MIN_FIT_HISTORY = pd.Timedelta("28D")


def week_start(t: pd.Timestamp) -> pd.Timestamp:
    """00:00 UTC on the Monday of ``t``'s week."""
    day = t.tz_convert("UTC").normalize()
    return day - pd.Timedelta(days=day.day_of_week)


def fit_cutoff(start: pd.Timestamp, history_start: pd.Timestamp,
               needed: pd.Timedelta = MIN_FIT_HISTORY) -> pd.Timestamp:
    """When a plan starting at ``start`` fits a model that wants ``needed`` of history:
    :func:`week_start`, or ``start`` itself when the data before the Monday is shorter
    than ``min(needed, MIN_FIT_HISTORY)``."""
    monday = week_start(start)
    return monday if monday - history_start >= min(needed, MIN_FIT_HISTORY) else start


_SOURCE_DIGEST: str | None = None


def _source_digest() -> str:
    """Digest of the ``greenepoch.forecasts`` package's source files (model code changes refit)."""
    global _SOURCE_DIGEST
    if _SOURCE_DIGEST is None:
        import greenepoch.forecasts

        h = hashlib.sha256()
        for path in sorted(Path(greenepoch.forecasts.__file__).parent.glob("*.py")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
        _SOURCE_DIGEST = h.hexdigest()
    return _SOURCE_DIGEST


def history_key(name: str, history: pd.DataFrame) -> str:
    """Cache key of fitting model ``name`` on ``history``."""
    h = hashlib.sha256()
    h.update(name.encode())
    h.update(_source_digest().encode())
    h.update("|".join(map(str, history.columns)).encode())
    h.update(pd.DatetimeIndex(history.index).asi8.tobytes())
    h.update(history.to_numpy(dtype="float64").tobytes())
    return h.hexdigest()[:24]


def fitted_model(name: str, history: pd.DataFrame, fit_until: pd.Timestamp, *,
                 progress: Progress | None = None) -> Forecaster:
    """Model ``name`` (registry name or ``default``) fitted on the rows of ``history``
    in ``[fit_until - history_needed, fit_until)``, from the cache when it holds that
    fit.  ``progress`` gets one-line notes."""
    say = progress or (lambda _msg: None)
    model = get_model(name)
    index = history.index
    train = history[(index >= fit_until - model.history_needed) & (index < fit_until)]
    folder = cache_dir()
    path = None
    if folder is not None:
        path = folder / "forecasts" / f"{model.name}-{history_key(model.name, train)}.pkl"
    if path is not None and path.exists():
        try:
            with path.open("rb") as fh:
                cached: Forecaster = pickle.load(fh)
            os.utime(path)  # recently used: pruned last
            say(f"forecast model '{model.name}' fitted before {fit_until:%Y-%m-%d}: from "
                f"{path.parent}")
            return cached
        except Exception as exc:  # any unreadable file is refitted
            say(f"forecast cache: cannot read {path} ({exc}); refitting")
    zones = ", ".join(map(str, train.columns))
    span = (f"{train.index[0]:%Y-%m-%d}..{fit_until:%Y-%m-%d}" if len(train)
            else "no history")
    say(f"fitting forecast model '{model.name}' on {zones} ({span}) ...")
    began = time.perf_counter()
    model.fit(train)
    note = f"fitted in {time.perf_counter() - began:.0f} s"
    if path is not None:
        try:
            _write(path, model)
            _prune(path.parent, MAX_FILES, MAX_BYTES, newest=path)
            note += f"; kept in {path.parent} for later plans"
        except (OSError, GreenEpochError) as exc:
            note += f"; not cached ({exc}; set GREENEPOCH_CACHE to a writable folder)"
    say(note)
    return model


def _write(path: Path, model: object) -> None:
    """The pickled model through :func:`greenepoch.data.atomic.write_atomic`, the one writer of
    every file the program writes (staged beside the target, fsynced, renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def _prune(folder: Path, keep: int, max_bytes: int, newest: Path) -> None:
    """Keep the most recently used model files in ``folder`` while there are at most
    ``keep`` of them and at most ``max_bytes`` in all; delete the rest.  ``newest``, the
    file just written, stays whatever its size (and first, should mtimes tie)."""
    found = []
    for file in folder.glob("*.pkl"):
        try:
            found.append((file.stat(), file))
        except FileNotFoundError:  # pruned by another plan meanwhile
            continue
    found.sort(key=lambda item: (item[1] == newest, item[0].st_mtime), reverse=True)
    total = 0
    for rank, (stat, file) in enumerate(found):
        total += stat.st_size
        if rank >= keep or (rank > 0 and total > max_bytes):
            file.unlink(missing_ok=True)
