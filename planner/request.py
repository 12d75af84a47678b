"""Reading plan requests from TOML (format documented in docs/plan-request.md)."""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.errors import GreenEpochError, RequestError
from greenepoch.data.inputs import TOO_DEEP, read_text
from greenepoch.data.timeparse import (
    boolean,
    count,
    duration,
    kind,
    number,
    table,
    tables,
    text,
    utc,
)
from greenepoch.planner.model import DEFAULT_PUE, Job, PlanRequest, Policy, Zone

JOB_KEYS = {
    "name", "gpus", "gpus_min", "gpus_max", "gpu_hours", "duration", "gpu_power_kw",
    "release", "deadline", "zones", "home_zone", "checkpoint_overhead",
    "max_interruptions", "min_run", "checkpoint_gb", "egress_usd_per_gb",
    "transfer_time", "transfer_kwh_per_gb", "allow_split", "checkpoint_save",
    "deadline_margin", "max_migrations", "gpus_step", "resize_overhead",
}
ZONE_KEYS = {"id", "capacity_gpus", "pue", "capacity_schedule", "price_file", "gpus_per_node"}
STEP_KEYS = {"from", "gpus"}
POLICY_KEYS = {
    "objective", "price_weight", "carbon_threshold", "threshold_mode",
    "threshold_penalty", "slot", "solver", "time_limit", "mip_gap", "forecast",
    "deadline_margin",
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
    from greenepoch.data.regions import resolve_zone

    try:
        return resolve_zone(name)
    except GreenEpochError:
        return name  # a zone outside the catalog is allowed when the data has it


def _text_list(value: object, field: str) -> list[str]:
    if not isinstance(value, list):
        raise RequestError(f"{field} = {value!r}: expected a list of zone ids, found "
                           f"{kind(value)}; write e.g. zones = [\"DE\", \"GB\"]")
    return [text(v, f"{field}[{i}]", "'DE'") for i, v in enumerate(value)]


#: work bound: far beyond any real job, and below where slot arithmetic overflows
MAX_GPU_HOURS = 1e9

# Bounds on the numbers that become objective coefficients. Each is far beyond any
# real value, and keeps every coefficient (times GPUs, kW, PUE, intensity, prices)
# many orders below where the MILP breaks: HiGHS takes a cost of 1e20 as infinite,
# and 1e308 overflowed to inf/nan (solver.objective = nan).
#: soft-threshold penalty, kg counted per kg emitted above the threshold: at 1e6 a
#: kg above the threshold outweighs a tonne below it, which is already a hard rule
#: in all but name (threshold_mode = "hard" is that rule, exactly)
MAX_THRESHOLD_PENALTY = 1e6
#: kg CO2eq per USD: at 1e6 cost outweighs carbon by a million (a social cost of
#: carbon of 0.2 USD/kg is a weight of 5)
MAX_PRICE_WEIGHT = 1e6
#: checkpoint move: a petabyte checkpoint; cloud egress is cents per GB and network
#: energy a fraction of a kWh per GB, both bounded at a thousand
MIGRATION_BOUNDS = {"checkpoint_gb": (1e6, "GB"), "egress_usd_per_gb": (1e3, "USD per GB"),
                    "transfer_kwh_per_gb": (1e3, "kWh per GB")}


def _job(raw: dict[str, Any], index: int, start: pd.Timestamp) -> Job:
    where = f"jobs[{index}]" + (f" ('{raw['name']}')" if isinstance(raw.get("name"), str) else "")
    check_keys(raw, JOB_KEYS, where)
    for key in ("name", "deadline"):
        if key not in raw:
            raise RequestError(f"{where}: missing '{key}'")
    if "gpus" in raw and "gpus_max" in raw:
        raise RequestError(f"{where}: give either 'gpus' or 'gpus_max' (the same: the largest "
                           "size), not both")
    key = "gpus" if "gpus" in raw or "gpus_max" not in raw else "gpus_max"
    if key not in raw:
        raise RequestError(f"{where}: set 'gpus' (GPUs while running), e.g. gpus = 64")
    gpus = count(raw[key], f"{where}.{key}", low=1, example=f"{key} = 64")
    if "gpu_hours" in raw and "duration" in raw:
        raise RequestError(f"{where}: give either 'gpu_hours' or 'duration', not both")
    if "gpu_hours" in raw:
        gpu_hours = number(raw["gpu_hours"], f"{where}.gpu_hours", low=0, high=MAX_GPU_HOURS,
                           unit="GPU-hours", example="gpu_hours = 512")
    elif "duration" in raw:
        gpu_hours = gpus * duration(raw["duration"], f"{where}.duration") / pd.Timedelta("1h")
    else:
        raise RequestError(f"{where}: set 'gpu_hours' (work) or 'duration' (at full size)")
    if gpu_hours > MAX_GPU_HOURS:  # duration x gpus; beyond it time arithmetic overflows
        raise RequestError(f"{where}: {gpu_hours:.4g} GPU-hours of work is more than "
                           f"{MAX_GPU_HOURS:.0e}; check 'duration' and 'gpus'")
    if "zones" not in raw and "home_zone" not in raw:
        raise RequestError(f"{where}: set 'zones' (where it may run), e.g. zones = [\"DE\"]")
    home_raw = (text(raw["home_zone"], f"{where}.home_zone", "home_zone = 'DE'")
                if "home_zone" in raw else None)
    names = _text_list(raw["zones"], f"{where}.zones") if "zones" in raw else [home_raw]
    zones = tuple(_zone_id(str(z)) for z in names)
    home = _zone_id(home_raw if home_raw is not None else (zones[0] if zones else ""))
    fields: dict[str, Any] = {
        "name": text(raw["name"], f"{where}.name", "name = 'pretrain'"),
        "gpus": gpus,
        # 0 would mean "rigid" to Job: a written gpus_min must be a real size
        "gpus_min": (count(raw["gpus_min"], f"{where}.gpus_min", low=1,
                           example="gpus_min = 16") if "gpus_min" in raw else gpus),
        "gpu_hours": gpu_hours,
        "release": utc(raw["release"], f"{where}.release") if "release" in raw else start,
        "deadline": utc(raw["deadline"], f"{where}.deadline"),
        "zones": zones,
        "home_zone": home,
        "max_interruptions": (count(raw["max_interruptions"], f"{where}.max_interruptions",
                                    example="max_interruptions = 2")
                              if "max_interruptions" in raw else None),
        "allow_split": (boolean(raw["allow_split"], f"{where}.allow_split")
                        if "allow_split" in raw else False),
    }
    for key in ("checkpoint_overhead", "min_run", "transfer_time", "checkpoint_save",
                "deadline_margin", "resize_overhead"):
        if key in raw:
            fields[key] = duration(raw[key], f"{where}.{key}")
    for key, low, example in (("max_migrations", 0, "max_migrations = 2"),
                              ("gpus_step", 1, "gpus_step = 8")):
        if key in raw:
            fields[key] = count(raw[key], f"{where}.{key}", low=low, example=example)
    if "gpu_power_kw" in raw:  # Job bounds it, with a hint for watts typed as kW
        fields["gpu_power_kw"] = number(raw["gpu_power_kw"], f"{where}.gpu_power_kw",
                                        unit="kW per GPU",
                                        example=f"gpu_power_kw = {Job.gpu_power_kw}")
    for key, (high, unit) in MIGRATION_BOUNDS.items():
        if key in raw:
            fields[key] = number(raw[key], f"{where}.{key}", low=0, high=high, unit=unit,
                                 example=f"{key} = {getattr(Job, key)}")
    return Job(**fields)


def _zone(raw: dict[str, Any], index: int, base: Path) -> Zone:
    where = f"zones[{index}]" + (f" ('{raw['id']}')" if isinstance(raw.get("id"), str) else "")
    check_keys(raw, ZONE_KEYS, where)
    if "id" not in raw:
        raise RequestError(f"{where}: missing 'id' (a zone id like 'DE' or a cloud region)")
    zone_id = text(raw["id"], f"{where}.id", "id = 'DE'")
    if "capacity_gpus" not in raw and "capacity_schedule" not in raw:
        raise RequestError(f"{where}: set 'capacity_gpus' (GPUs available per slot)")
    steps = raw.get("capacity_schedule", [])
    if not isinstance(steps, list):
        raise RequestError(f"{where}.capacity_schedule = {steps!r}: expected a list of tables "
                           "like [{from = \"2023-06-01T12:00:00Z\", gpus = 64}], found "
                           f"{kind(steps)}")
    schedule = []
    for i, step in enumerate(steps):
        at = f"{where}.capacity_schedule[{i}]"
        if not isinstance(step, dict):
            raise RequestError(f"{at}: expected a table like {{from = \"2023-06-01T12:00:00Z\", "
                               f"gpus = 64}}, found {step!r}")
        check_keys(step, STEP_KEYS, at)
        missing = sorted(STEP_KEYS - set(step))
        if missing:
            raise RequestError(f"{at}: missing '{missing[0]}'")
        schedule.append((utc(step["from"], f"{at}.from"),
                         count(step["gpus"], f"{at}.gpus", example="gpus = 64")))
    prices = None
    if "price_file" in raw:
        name = text(raw["price_file"], f"{where}.price_file", "price_file = 'prices_DE.csv'")
        prices = _read_prices(base / name, where)
    return Zone(
        id=_zone_id(zone_id),
        capacity_gpus=(count(raw["capacity_gpus"], f"{where}.capacity_gpus",
                             example="capacity_gpus = 64") if "capacity_gpus" in raw else 0),
        pue=(number(raw["pue"], f"{where}.pue", example="pue = 1.2") if "pue" in raw
             else DEFAULT_PUE),
        capacity_schedule=tuple(schedule),
        price_usd_per_mwh=prices,
        gpus_per_node=(count(raw["gpus_per_node"], f"{where}.gpus_per_node", low=1,
                             example="gpus_per_node = 8") if "gpus_per_node" in raw else None),
    )


def _read_prices(path: Path, where: str) -> pd.Series:
    from greenepoch.data.prices import read_price_csv

    return read_price_csv(path, where)


def _policy(raw: dict[str, Any], threshold_elsewhere: bool = False) -> Policy:
    """The ``[policy]`` table; ``threshold_elsewhere``: a carbon threshold comes from
    outside the table (a what-if threshold axis), so threshold settings are not idle."""
    check_keys(raw, POLICY_KEYS, "[policy]")
    fields: dict[str, Any] = {}
    for key in ("objective", "threshold_mode", "slot", "solver", "forecast"):
        if key in raw:
            fields[key] = text(raw[key], f"[policy].{key}", f"{key} = '{getattr(Policy, key)}'")
    if "price_weight" in raw:
        fields["price_weight"] = number(raw["price_weight"], "[policy].price_weight",
                                        low=0, high=MAX_PRICE_WEIGHT,
                                        unit="kg CO2eq per USD",
                                        example="price_weight = 5.0")
    if "threshold_penalty" in raw:
        fields["threshold_penalty"] = number(raw["threshold_penalty"],
                                             "[policy].threshold_penalty", low=0,
                                             high=MAX_THRESHOLD_PENALTY,
                                             example="threshold_penalty = 1.0")
    if "mip_gap" in raw:
        fields["mip_gap"] = number(raw["mip_gap"], "[policy].mip_gap", low=0,
                                   example="mip_gap = 0.0001")
    if "carbon_threshold" in raw:
        fields["threshold"] = number(raw["carbon_threshold"], "[policy].carbon_threshold",
                                     low=0, unit="gCO2eq/kWh", example="carbon_threshold = 200")
    for key in ("time_limit", "deadline_margin"):
        if key in raw:
            fields[key] = duration(raw[key], f"[policy].{key}")
    policy = Policy(**fields)  # checks the choices (objective, mode, ...) first
    objective = policy.objective
    if objective == "carbon+cost" and "price_weight" not in fields:
        raise RequestError(
            "[policy]: objective 'carbon+cost' needs price_weight (kg CO2eq per USD)"
        )
    if "price_weight" in fields and objective != "carbon+cost":
        raise RequestError(
            f"[policy].price_weight = {raw['price_weight']!r} does nothing with objective "
            f"{objective!r}; set objective = \"carbon+cost\" or remove price_weight"
        )
    has_threshold = "threshold" in fields or threshold_elsewhere
    for key in ("threshold_mode", "threshold_penalty"):
        if key in raw and not has_threshold:
            raise RequestError(
                f"[policy].{key} = {raw[key]!r} does nothing without a carbon threshold; "
                f"set carbon_threshold (gCO2eq/kWh) or remove {key}"
            )
    mode = policy.threshold_mode
    if "threshold_penalty" in fields and mode != "soft":
        raise RequestError(
            f"[policy].threshold_penalty = {raw['threshold_penalty']!r} does nothing with "
            f"threshold_mode {mode!r}; set threshold_mode = \"soft\" or remove "
            "threshold_penalty"
        )
    return policy


def parse_request(doc: dict[str, Any], base: Path = Path("."),
                  start: pd.Timestamp | None = None, *,
                  threshold_elsewhere: bool = False) -> PlanRequest:
    """Build a :class:`PlanRequest` from a parsed TOML document.

    ``start`` (the CLI's ``--start``) moves the whole request in time: releases,
    deadlines and capacity steps keep their offsets from the document's ``start``.
    Without a document ``start``, it is simply the plan start.
    ``threshold_elsewhere``: a carbon threshold is given outside the document (a
    what-if threshold axis), so ``threshold_mode``/``threshold_penalty`` are not idle.
    """
    check_keys(doc, TOP_KEYS, "request")
    if "start" in doc:
        written = utc(doc["start"], "start")
    elif start is not None:
        written = start
    else:
        raise RequestError("request: missing 'start' (plan start time, e.g. "
                           "start = \"2023-06-01T00:00:00Z\"), or give a plan start")
    jobs = tuple(_job(raw, i, written)
                 for i, raw in enumerate(tables(doc.get("jobs", []), "jobs")))
    zones = tuple(_zone(raw, i, base)
                  for i, raw in enumerate(tables(doc.get("zones", []), "zones")))
    policy = _policy(table(doc.get("policy", {}), "[policy]"), threshold_elsewhere)
    request = PlanRequest(start=written, jobs=jobs, zones=zones, policy=policy)
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
        return tomllib.loads(read_text(file))
    except FileNotFoundError as exc:
        raise RequestError(f"{file}: no such {what} file") from exc
    except UnicodeDecodeError as exc:
        raise RequestError(f"{file}: not a UTF-8 text file (byte {exc.start}: "
                           f"{exc.reason}); save the {what} as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise RequestError(f"{file}: not valid TOML ({exc})") from exc
    except TOO_DEEP:
        raise RequestError(f"{file}: not a {what} (its TOML is nested too deeply to "
                           "read)") from None


def load_request(path: str | Path, start: pd.Timestamp | None = None) -> PlanRequest:
    """Read and validate a plan request TOML file."""
    file = Path(path)
    doc = read_toml(file, "request")
    try:
        return parse_request(doc, file.parent, start)
    except RequestError as exc:
        raise RequestError(f"{file}: {exc}") from exc
    except (TypeError, ValueError, OverflowError) as exc:  # a backstop: fields are typed above
        raise RequestError(f"{file}: a value has the wrong type ({exc})") from exc
