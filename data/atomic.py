"""Atomic file output: a reader sees the old file or the new one, never a half-written one.

Every file GreenEpoch writes (plans, segment CSVs, reports, exports, results headers)
goes through here.  Content is written to a temporary file in the target's folder
(same file system, so the final :func:`os.replace` is atomic) and renamed into place;
on any failure the temporary file is removed and the old target is left untouched.
An ``OSError`` from writing names the target (``filename``), whatever it named before.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from greenepoch.data.errors import GreenEpochError


def _check_target(target: Path) -> None:
    if target.is_dir():
        raise GreenEpochError(f"{target}: is a directory; give a file name")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise GreenEpochError(f"{target}: parent directory {parent} does not exist")


def _naming(target: Path, exc: OSError) -> OSError:
    """``exc`` naming ``target``: a failed write names no file (``File too large``, ``No
    space left on device``) or the temporary one, and the user needs the output's name."""
    return OSError(exc.errno, exc.strerror or str(exc), str(target))  # errno: its subclass


def _stage(target: Path, content: str | bytes) -> Path:
    """Write ``content`` to a temporary file beside ``target`` and return its path."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:40]}.tmp-",
                                   dir=target.absolute().parent)
    except OSError as exc:
        raise _naming(target, exc) from exc
    try:
        if isinstance(content, bytes):
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(target, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_atomic(path: str | Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8, or bytes) to ``path`` atomically."""
    return write_together({path: content})[0]


def write_together(files: Mapping[str | Path, str | bytes]) -> list[Path]:
    """Replace several files together: all are staged first, then renamed in order.

    A failure while staging (disk full, permissions, an exception in the caller's
    content) leaves every target as it was.  The renames come only after every file
    is fully on disk; each rename is atomic.  Two targets that are the same path are
    refused (a plan's CSV over its own JSON).
    """
    targets = [Path(p) for p in files]
    seen: dict[Path, Path] = {}
    for t in targets:
        key = t.resolve()
        if key in seen:
            raise GreenEpochError(f"{t}: given twice as an output file (the plan JSON and "
                                  "its CSV would overwrite each other); pick another name")
        seen[key] = t
        _check_target(t)
    staged: list[Path] = []
    try:
        for t, content in zip(targets, files.values(), strict=True):
            staged.append(_stage(t, content))
    except BaseException:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    for i, (tmp, t) in enumerate(zip(staged, targets, strict=True)):
        try:
            os.replace(tmp, t)
        except OSError as exc:
            for left in staged[i:]:
                left.unlink(missing_ok=True)
            raise _naming(t, exc) from exc
    return targets
