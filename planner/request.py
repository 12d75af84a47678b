"""Reading plan requests from TOML (format documented in docs/plan-request.md)."""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import GreenEpochError, RequestError
from planner.model import Job, PlanRequest, Policy, Zone
from planner.timeparse import duration, utc

JOB_KEYS = {
    "name", "gpus", "gpus_min", "gpus_max", "gpu_hours", "duration", "gpu_power_kw",
    "release", "deadline", "zones", "home_zone", "checkpoint_overhead",
    "max_interruptions", "min_run", "checkpoint_gb", "egress_usd_per_gb",
    "transfer_time", "transfer_kwh_per_gb", "allow_split",
}
ZONE_KEYS = {"id", "capacity_gpus", "pue", "capacity_schedule", "price_file"}
STEP_KEYS = {"from", "gpus"}
POLICY_KEYS = {
    "objective", "price_weight", "carbon_threshold", "threshold_mode",
    "threshold_penalty", "slot", "solver", "time_limit", "mip_gap", "forecast",
}
TOP_KEYS = {"start", "jobs", "zones", "policy"}


def check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    """Refuse keys outside ``allowed``, suggesting the nearest one."""
    for key in table:
        if key not in allowed:
            near = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise RequestError(
                f"{where}: unknown key '{key}'{hint} (allowed: {', '.join(sorted(allowed))})"
            )


def _zone_id(name: str) -> str:
    from planner.regions import resolve_zone

    try:
        return resolve_zone(name)
    except GreenEpochError:
        return name  # a zone outside the catalog is allowed when the data has it


def _job(raw: dict[str, Any], index: int, start: pd.Timestamp) -> Job:
    where = f"jobs[{index}]" + (f" ('{raw['name']}')" if "name" in raw else "")
    check_keys(raw, JOB_KEYS, where)
    for key in ("name", "deadline"):
        if key not in raw:
            raise RequestError(f"{where}: missing '{key}'")
    key = "gpus" if "gpus" in raw or "gpus_max" not in raw else "gpus_max"
    if key not in raw:
        raise RequestError(f"{where}: set 'gpus' (GPUs while running), e.g. gpus = 64")
    gpus = raw[key]
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus <= 0:
        raise RequestError(f"{where}: {key} = {gpus!r} must be a whole number of GPUs above 0, "
                           "e.g. gpus = 64")
    if "gpu_hours" in raw and "duration" in raw:
        raise RequestError(f"{where}: give either 'gpu_hours' or 'duration', not both")
    if "gpu_hours" in raw:
        gpu_hours = float(raw["gpu_hours"])
    elif "duration" in raw:
        gpu_hours = gpus * duration(raw["duration"], f"{where}.duration") / pd.Timedelta("1h")
    else:
        raise RequestError(f"{where}: set 'gpu_hours' (work) or 'duration' (at full size)")
    if "zones" not in raw and "home_zone" not in raw:
        raise RequestError(f"{where}: set 'zones' (where it may run), e.g. zones = [\"DE\"]")
    names = raw.get("zones", [raw.get("home_zone")])
    if not isinstance(names, list):
        raise RequestError(
            f"{where}: zones = {names!r} must be a list of zone ids, e.g. zones = [\"DE\", \"GB\"]"
        )
    zones = tuple(_zone_id(str(z)) for z in names)
    home = _zone_id(str(raw.get("home_zone", zones[0] if zones else "")))
    interruptions = raw.get("max_interruptions")
    fields: dict[str, Any] = {
        "name": str(raw["name"]),
        "gpus": gpus,
        "gpus_min": int(raw.get("gpus_min", gpus)),
        "gpu_hours": gpu_hours,
        "release": utc(raw["release"], f"{where}.release") if "release" in raw else start,
        "deadline": utc(raw["deadline"], f"{where}.deadline"),
        "zones": zones,
        "home_zone": home,
        "max_interruptions": None if interruptions is None else int(interruptions),
        "allow_split": bool(raw.get("allow_split", False)),
    }
    for key in ("checkpoint_overhead", "min_run", "transfer_time"):
        if key in raw:
            fields[key] = duration(raw[key], f"{where}.{key}")
    for key in ("gpu_power_kw", "checkpoint_gb", "egress_usd_per_gb", "transfer_kwh_per_gb"):
        if key in raw:
            fields[key] = float(raw[key])
    return Job(**fields)


def _zone(raw: dict[str, Any], index: int, base: Path) -> Zone:
    where = f"zones[{index}]" + (f" ('{raw['id']}')" if "id" in raw else "")
    check_keys(raw, ZONE_KEYS, where)
    if "id" not in raw:
        raise RequestError(f"{where}: missing 'id' (a zone id like 'DE' or a cloud region)")
    if "capacity_gpus" not in raw and "capacity_schedule" not in raw:
        raise RequestError(f"{where}: set 'capacity_gpus' (GPUs available per slot)")
    steps = raw.get("capacity_schedule", [])
    for i, step in enumerate(steps):
        at = f"{where}.capacity_schedule[{i}]"
        if not isinstance(step, dict):
            raise RequestError(f"{at}: expected a table like {{from = \"2023-06-01T12:00:00Z\", "
                               f"gpus = 64}}, found {step!r}")
        check_keys(step, STEP_KEYS, at)
        missing = sorted(STEP_KEYS - set(step))
        if missing:
            raise RequestError(f"{at}: missing '{missing[0]}'")
    schedule = tuple(
        (utc(step["from"], f"{where}.capacity_schedule[{i}].from"), int(step["gpus"]))
        for i, step in enumerate(steps)
    )
    prices = _read_prices(base / raw["price_file"], where) if "price_file" in raw else None
    return Zone(
        id=_zone_id(str(raw["id"])),
        capacity_gpus=int(raw.get("capacity_gpus", 0)),
        pue=float(raw.get("pue", Zone.__dataclass_fields__["pue"].default)),
        capacity_schedule=schedule,
        price_usd_per_mwh=prices,
    )


def _read_prices(path: Path, where: str) -> pd.Series:
    from planner.prices import read_price_csv

    return read_price_csv(path, where)


def _policy(raw: dict[str, Any]) -> Policy:
    check_keys(raw, POLICY_KEYS, "[policy]")
    fields: dict[str, Any] = {}
    for key in ("objective", "threshold_mode", "slot", "solver", "forecast"):
        if key in raw:
            fields[key] = str(raw[key])
    for key in ("price_weight", "threshold_penalty", "mip_gap"):
        if key in raw:
            fields[key] = float(raw[key])
    if "carbon_threshold" in raw:
        fields["threshold"] = float(raw["carbon_threshold"])
    if "time_limit" in raw:
        fields["time_limit"] = duration(raw["time_limit"], "[policy].time_limit")
    if fields.get("objective") == "carbon+cost" and "price_weight" not in fields:
        raise RequestError(
            "[policy]: objective 'carbon+cost' needs price_weight (kg CO2eq per USD)"
        )
    return Policy(**fields)


def parse_request(doc: dict[str, Any], base: Path = Path("."),
                  start: pd.Timestamp | None = None) -> PlanRequest:
    """Build a :class:`PlanRequest` from a parsed TOML document.

    ``start`` (the CLI's ``--start``) moves the whole request in time: releases,
    deadlines and capacity steps keep their offsets from the document's ``start``.
    Without a document ``start``, it is simply the plan start.
    """
    check_keys(doc, TOP_KEYS, "request")
    if "start" in doc:
        written = utc(doc["start"], "start")
    elif start is not None:
        written = start
    else:
        raise RequestError("request: missing 'start' (plan start time, e.g. "
                           "start = \"2023-06-01T00:00:00Z\"), or pass --start")
    jobs = tuple(_job(raw, i, written) for i, raw in enumerate(doc.get("jobs", [])))
    zones = tuple(_zone(raw, i, base) for i, raw in enumerate(doc.get("zones", [])))
    request = PlanRequest(start=written, jobs=jobs, zones=zones,
                          policy=_policy(doc.get("policy", {})))
    return request if start is None else shift(request, start - written)


def shift(request: PlanRequest, delta: pd.Timedelta) -> PlanRequest:
    """The same request ``delta`` later (start, releases, deadlines, capacity steps)."""
    if delta == pd.Timedelta(0):
        return request
    jobs = tuple(replace(j, release=j.release + delta, deadline=j.deadline + delta)
                 for j in request.jobs)
    zones = tuple(replace(z, capacity_schedule=tuple((t + delta, g)
                                                     for t, g in z.capacity_schedule))
                  for z in request.zones)
    return replace(request, start=request.start + delta, jobs=jobs, zones=zones)


def read_toml(file: Path, what: str) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a RequestError saying which."""
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RequestError(f"{file}: no such {what} file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RequestError(f"{file}: not valid TOML ({exc})") from exc


def load_request(path: str | Path, start: pd.Timestamp | None = None) -> PlanRequest:
    """Read and validate a plan request TOML file."""
    file = Path(path)
    doc = read_toml(file, "request")
    try:
        return parse_request(doc, file.parent, start)
    except RequestError as exc:
        raise RequestError(f"{file}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise RequestError(f"{file}: a value has the wrong type ({exc})") from exc
