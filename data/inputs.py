"""Reading a user's input file: never hang on a FIFO without a writer, never recurse.

A named pipe opened the ordinary way blocks until someone writes to it, so a stray
FIFO named like a request made ``greenepoch`` hang forever.  It is opened without
blocking, then read normally: a pipe with a writer (``<(cat plan.json)``) is read
whole, one without a writer reads as empty and is refused like any empty file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

#: what a deeply nested TOML or JSON document raises in the standard parsers
TOO_DEEP = RecursionError


def read_bytes(path: str | Path) -> bytes:
    """The bytes of ``path``; OSError (with the file name) when it cannot be read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except IsADirectoryError as exc:
        raise IsADirectoryError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(fd)


def read_text(path: str | Path) -> str:
    """The UTF-8 text of ``path`` (UnicodeDecodeError and OSError as ``Path.read_text``)."""
    return read_bytes(path).decode("utf-8")
