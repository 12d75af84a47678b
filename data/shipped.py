"""Files shipped with GreenEpoch: package data of ``greenepoch.data``, beside this module."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def shipped_file(name: str) -> Path:
    """Path of a shipped data file (the same place in a wheel and in a source checkout)."""
    return HERE / name
