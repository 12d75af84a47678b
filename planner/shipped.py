"""Files shipped in the repository's data/ folder (installed as ``greenepoch_data``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_file(name: str) -> Path:
    """Path of a shipped data file, installed or in a source checkout."""
    try:
        candidate = Path(str(resources.files("greenepoch_data").joinpath(name)))
        if candidate.is_file():
            return candidate
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[1] / "data" / name
