"""Helpers shared by the export tests: plan documents built by hand, hostile strings,
and the CLI with the export groups registered."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

#: User-controlled text that must stay literal data in every output.
HOSTILE = ("x; rm -rf / $(touch {canary}) `touch {canary}` \"dq\" 'sq' \\ \n"
           "*a &a {} [] : #c %j ${HOME} !x | > <")


def hostile(canary: Path) -> str:
    return HOSTILE.replace("{canary}", str(canary))


def iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def segment(zone: str, start: pd.Timestamp, minutes: float, gpus: int) -> dict[str, Any]:
    return {"zone": zone, "start": iso(start), "end": iso(start + pd.Timedelta(minutes=minutes)),
            "gpus": gpus, "energy_kwh": 1.5, "emissions_kg": 0.25}


def plan_doc(jobs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A minimal plan document (schema 1.0) with the given job -> segments (what the
    exports read: no summary, no release or deadline, as in hand-made plans)."""
    zones = sorted({seg["zone"] for segs in jobs.values() for seg in segs})
    return {"schema_version": "1.0", "created_by": "tests", "zones": zones,
            "jobs": [{"name": name, "segments": segs} for name, segs in jobs.items()]}


def toml(doc: dict[str, Any], prefix: str = "") -> str:
    """A TOML writer for test configs (strings, lists, bools, numbers, nested tables)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v) if isinstance(v, str) else str(v)

    lines = [f"{json.dumps(k)} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            name = f"{prefix}.{json.dumps(k)}" if prefix else json.dumps(k)
            lines += [f"[{name}]", toml(v, name)]
    return "\n".join(lines) + "\n"


def now_floor() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("s")


def run_cli(args: list[str], env: dict[str, str] | None = None) -> Result:
    """``greenepoch ARGS`` in process (the export groups registered if main does not yet)."""
    from greenepoch.planner.cli.export_cmd import export
    from greenepoch.planner.cli.main import cli
    from greenepoch.planner.cli.slurm_cmd import slurm

    for group in (export, slurm):
        if group.name not in cli.commands:
            cli.add_command(group)
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def required() -> bool:
    return bool(os.environ.get("GREENEPOCH_REQUIRE_SERVICES") == "1"
                or os.environ.get("GREENEPOCH_REQUIRE_DATA"))


def need(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless CI requires it, then fail."""
    if condition:
        return
    if required():
        pytest.fail(f"required in CI but absent: {reason}", pytrace=False)
    pytest.skip(reason)
