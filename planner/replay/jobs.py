"""Jobs of a replay: read from a CSV or drawn from a generator spec.

A replay job stays in its home zone (temporal shifting only).  Units: hours of
running at full size for ``duration_h`` (the job's GPU-hours are ``gpus x
duration_h``), kW per GPU for ``gpu_power_kw``, hours for the checkpoint
overhead paid at every start (the first one included, as in the planner) and for
the checkpoint save that ends every run but the last (work lost at each pause).

CSV columns (one row per job, header required)

============================  ========  =============================================
column                        required  meaning
============================  ========  =============================================
``name``                      yes       unique job name
``zone``                      yes       home zone id (``DE``) or cloud region (``eu-central-1``)
``submit``                    yes       submission time, ISO 8601 with offset (UTC)
``gpus``                      yes       GPUs held while running (integer >= 1)
``duration_h``                yes       running time at full size, hours (> 0)
``deadline``                  one of    latest completion, ISO 8601 with offset
``slack_h``                   one of    deadline = submit + duration_h + slack_h
``interruptible``             no        true/false (default true)
``checkpoint_overhead_h``     no        hours lost at every start (default 0, < 1 slot)
``checkpoint_save_h``         no        hours lost at every pause, the save ending the run
                                        (default 0; with the overhead, < 1 slot)
``gpu_power_kw``              no        kW per GPU (default 1.0)
============================  ========  =============================================

Generator spec: comma-separated ``key=value`` pairs, e.g.
``n=200,dur=2-48,submit=weekdays09-17,slack=24h,gpus=8-64,seed=1``:

* ``n`` number of jobs (required);
* ``dur`` running hours, ``A-B`` (uniform, whole hours) or one number (default 1-24);
* ``submit`` ``weekdays09-17`` (Mon-Fri, local hours 09:00 to 16:xx),
  ``daily09-17`` (every day) or ``any`` (default ``weekdays09-17``); local time is
  the home zone's time zone in the region catalog; jobs are submitted on the hour;
* ``slack`` slack beyond the duration, a duration (``24h``, ``7d``) or an hour range
  ``A-B`` (whole hours); deadline = submit + duration + overhead + slack, rounded up
  to the hour (default ``24h``);
* ``gpus`` ``A-B`` uniform integers or one number (default 8-64);
* ``interruptible`` share of interruptible jobs in [0, 1], or true/false (default 1);
* ``overhead`` checkpoint overhead per start, a duration (default ``0h``);
* ``power`` kW per GPU (default 1.0);
* ``zones`` ``DE;GB`` home zones (or cloud regions) to draw from (default: all
  replayed zones);
* ``seed`` random seed (default 0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from greenepoch.data.errors import RequestError, param
from greenepoch.data.timeparse import duration, hours, utc
from greenepoch.planner.model import DEFAULT_GPU_POWER_KW, MAX_GPU_POWER_KW


@dataclass(frozen=True)
class ReplayJob:
    """One job of a replay; validated once, errors name the field and the fix."""

    name: str
    zone: str
    submit: pd.Timestamp
    gpus: int
    duration_h: float
    deadline: pd.Timestamp
    interruptible: bool = True
    checkpoint_overhead_h: float = 0.0
    gpu_power_kw: float = DEFAULT_GPU_POWER_KW
    checkpoint_save_h: float = 0.0

    def __post_init__(self) -> None:
        where = f"job '{self.name}'"
        if not str(self.name).strip():
            raise RequestError("a job has an empty name: give every job a name")
        if self.submit.tzinfo is None or self.deadline.tzinfo is None:
            raise RequestError(f"{where}: submit and deadline need a UTC offset")
        if self.gpus < 1:
            raise RequestError(f"{where}: gpus = {self.gpus}; a job needs at least 1 GPU")
        if not self.duration_h > 0:
            raise RequestError(f"{where}: duration_h = {self.duration_h} must be positive")
        if self.checkpoint_overhead_h < 0 or self.checkpoint_save_h < 0:
            raise RequestError(f"{where}: checkpoint_overhead_h and checkpoint_save_h must "
                               "be 0 or more")
        if not self.gpu_power_kw > 0:
            raise RequestError(f"{where}: gpu_power_kw = {self.gpu_power_kw} must be positive")
        if self.gpu_power_kw > MAX_GPU_POWER_KW:
            raise RequestError(
                f"{where}: gpu_power_kw = {self.gpu_power_kw} kW per GPU is above the plausible "
                f"{MAX_GPU_POWER_KW:g} kW; the value is in kW per GPU, host share included (a "
                "GPU's watts, e.g. 700 W, are 0.7 kW)")
        if not all(math.isfinite(v) for v in (self.duration_h, self.checkpoint_overhead_h,
                                              self.checkpoint_save_h)):
            raise RequestError(f"{where}: duration_h, checkpoint_overhead_h and "
                               "checkpoint_save_h must be finite")
        need = pd.Timedelta(hours=self.duration_h + self.checkpoint_overhead_h)
        if self.deadline < self.submit + need:
            raise RequestError(
                f"{where}: deadline {self.deadline.isoformat()} leaves less than the "
                f"{self.duration_h + self.checkpoint_overhead_h:g} h the job needs after "
                f"submit {self.submit.isoformat()}; move the deadline later"
            )


CSV_REQUIRED = ("name", "zone", "submit", "gpus", "duration_h")


def zone_id(name: str) -> str:
    """Zone id of a zone id or cloud region name (``eu-central-1`` -> ``DE``); a name
    outside the region catalog is kept as given (the data may still hold it)."""
    from greenepoch.data.errors import GreenEpochError
    from greenepoch.data.regions import resolve_zone

    try:
        return resolve_zone(name)
    except GreenEpochError:
        return name


def _truthy(value: object, where: str) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y"):
        return True
    if text in ("false", "0", "no", "n"):
        return False
    raise RequestError(f"{where}: interruptible = {value!r}; write true or false")


def _cell_number(cell: str, where: str) -> float:
    """A finite number from a CSV cell (``inf``, ``nan`` and text refused)."""
    try:
        value = float(cell)
    except ValueError:
        raise RequestError(f"{where} = {cell!r}: expected a number") from None
    if not math.isfinite(value):
        raise RequestError(f"{where} = {cell!r}: expected a finite number")
    return value


def _cell_count(cell: str, where: str) -> int:
    """A whole number from a CSV cell (``8``, or ``8.0``; ``8.5`` refused), bounded."""
    from greenepoch.data.timeparse import MAX_COUNT

    text = cell.strip()
    try:
        value = int(text) if text.lstrip("+-").isdigit() else _cell_number(text, where)
    except RequestError:
        raise RequestError(f"{where} = {cell!r}: expected a whole number") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise RequestError(f"{where} = {cell!r}: expected a whole number")
        value = int(value)
    if not 1 <= value <= MAX_COUNT:
        raise RequestError(f"{where} = {cell!r}: must be a whole number from 1 to {MAX_COUNT}")
    return value


def read_jobs_csv(path: str | Path) -> tuple[ReplayJob, ...]:
    """Read jobs from a CSV with the columns in the module doc."""
    file = Path(path)
    if not file.is_file():
        raise RequestError(f"jobs file {file} not found; give a CSV of jobs or generate "
                           f"them ({param('spec')})")
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"{file}: not a UTF-8 text file (byte {exc.start}: {exc.reason}); "
                           "save the jobs CSV as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise RequestError(f"{file}: empty; give a CSV with the header "
                           f"{','.join(CSV_REQUIRED)},deadline and one row per job") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise RequestError(f"{file}: not a readable CSV ({str(exc).strip()})") from None
    missing = [c for c in CSV_REQUIRED if c not in frame.columns]
    if missing or not ({"deadline", "slack_h"} & set(frame.columns)):
        need = [*list(CSV_REQUIRED), "deadline or slack_h"]
        raise RequestError(
            f"{file}: expected columns {', '.join(need)}; found {', '.join(frame.columns)}"
        )
    if frame.empty:
        raise RequestError(f"{file}: no jobs; add at least one row")
    jobs = []
    for i, row in enumerate(frame.to_dict("records"), start=2):
        where = f"{file}: row {i}"
        try:
            submit = utc(row["submit"], "submit")
            dur = _cell_number(row["duration_h"], "duration_h")
            gpus = _cell_count(row["gpus"], "gpus")
            if str(row.get("deadline", "")).strip():
                deadline = utc(row["deadline"], "deadline")
            else:
                slack = _cell_number(row["slack_h"], "slack_h")
                deadline = submit + pd.Timedelta(hours=dur + slack)
            jobs.append(ReplayJob(
                name=row["name"].strip(), zone=zone_id(row["zone"].strip()), submit=submit,
                gpus=gpus, duration_h=dur, deadline=deadline,
                interruptible=_truthy(row.get("interruptible") or "true", where),
                checkpoint_overhead_h=_cell_number(row.get("checkpoint_overhead_h") or "0",
                                                   "checkpoint_overhead_h"),
                gpu_power_kw=_cell_number(row.get("gpu_power_kw") or str(DEFAULT_GPU_POWER_KW),
                                          "gpu_power_kw"),
                checkpoint_save_h=_cell_number(row.get("checkpoint_save_h") or "0",
                                               "checkpoint_save_h"),
            ))
        except ValueError as exc:
            raise RequestError(f"{where}: {exc}; fix the cell") from None
        except RequestError as exc:
            raise RequestError(f"{where}: {exc}") from None
    names = [j.name for j in jobs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RequestError(f"{file}: job name(s) {dup} appear twice; names must be unique")
    return tuple(jobs)


_SUBMIT = re.compile(r"^(weekdays|daily)(\d{1,2})-(\d{1,2})$")
GENERATOR_KEYS = ("n", "dur", "submit", "slack", "gpus", "interruptible", "overhead",
                  "power", "zones", "seed")


def _range(text: str, key: str, cast: type = float) -> tuple[float, float]:
    try:
        if "-" in text:
            lo, hi = (cast(p) for p in text.split("-", 1))
        else:
            lo = hi = cast(text)
    except ValueError:
        raise RequestError(f"{param('spec')}: {key}={text!r}; write a number or a range like "
                           "2-48") \
            from None
    if lo > hi or lo < 0:
        raise RequestError(f"{param('spec')}: {key}={text!r}; the range must be A-B with "
                           "0 <= A <= B")
    return lo, hi


def parse_spec(spec: str) -> dict[str, str]:
    """Split ``k=v,k=v`` and check the keys."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if "=" not in part:
            raise RequestError(f"{param('spec')}: {part!r} is not key=value; "
                               "e.g. n=200,dur=2-48")
        key, value = (s.strip() for s in part.split("=", 1))
        if key not in GENERATOR_KEYS:
            raise RequestError(
                f"{param('spec')}: unknown key {key!r}; use {', '.join(GENERATOR_KEYS)}"
            )
        out[key] = value
    if "n" not in out:
        raise RequestError(f"{param('spec')}: the spec needs n=<number of jobs>, "
                           "e.g. n=200,dur=2-48")
    return out


def _submit_hours(slots: pd.DatetimeIndex, rule: str, tz: str) -> np.ndarray:
    """Mask of the hours in ``slots`` at which a job may be submitted."""
    if rule == "any":
        return np.ones(len(slots), dtype=bool)
    m = _SUBMIT.match(rule)
    if not m:
        raise RequestError(
            f"{param('spec')}: submit={rule!r}; use weekdaysHH-HH, dailyHH-HH (local time) "
            "or any"
        )
    kind, lo, hi = m.group(1), int(m.group(2)), int(m.group(3))
    if not 0 <= lo < hi <= 24:
        raise RequestError(f"{param('spec')}: submit={rule!r}; hours must satisfy "
                           "0 <= A < B <= 24")
    local = slots.tz_convert(tz)
    ok = (local.hour >= lo) & (local.hour < hi)
    if kind == "weekdays":
        ok &= local.day_of_week < 5
    return np.asarray(ok)


def generate_jobs(spec: str, zones: Sequence[str], start: pd.Timestamp, end: pd.Timestamp,
                  timezones: dict[str, str] | None = None) -> tuple[ReplayJob, ...]:
    """Draw jobs from a generator spec (grammar in the module doc) inside ``[start, end)``.

    Every job's deadline is at or before ``end``.  ``timezones`` maps zone id to IANA
    time zone (default: the region catalog's, UTC for unknown zones).
    """
    keys = parse_spec(spec)
    try:
        n = int(keys["n"])
        seed = int(keys.get("seed", "0"))
        power = float(keys.get("power", str(DEFAULT_GPU_POWER_KW)))
    except ValueError as exc:
        raise RequestError(f"{param('spec')}: {exc}; n and seed are integers, power a "
                           "number") \
            from None
    if n < 1:
        raise RequestError(f"{param('spec')}: n must be at least 1")
    dur_lo, dur_hi = _range(keys.get("dur", "1-24"), "dur")
    gpu_lo, gpu_hi = _range(keys.get("gpus", "8-64"), "gpus", int)
    slack_text = keys.get("slack", "24h")
    if re.fullmatch(r"[\d.]+-[\d.]+", slack_text):
        slack_lo, slack_hi = _range(slack_text, "slack")
    else:
        slack_lo = slack_hi = hours(duration(slack_text, f"{param('spec')}: slack"))
    inter_text = keys.get("interruptible", "1").lower()
    share = {"true": 1.0, "false": 0.0}.get(inter_text)
    if share is None:
        try:
            share = float(inter_text)
        except ValueError:
            share = -1.0
    if not 0.0 <= share <= 1.0:
        raise RequestError(f"{param('spec')}: interruptible={inter_text!r}; give a share in "
                           "[0, 1]")
    overhead = hours(duration(keys.get("overhead", "0h"), f"{param('spec')}: overhead"))
    pool = [zone_id(z.strip()) for z in keys["zones"].split(";")] if "zones" in keys \
        else list(zones)
    unknown = [z for z in pool if z not in zones]
    if unknown or not pool:
        raise RequestError(
            f"{param('spec')}: zones {unknown or pool} are not replayed; pick among "
            f"{', '.join(zones)}"
        )
    if timezones is None:
        from greenepoch.data.regions import load_catalog

        catalog = load_catalog()
        timezones = {z: catalog[z].timezone if z in catalog else "UTC" for z in pool}
    rng = np.random.default_rng(seed)
    slots = pd.date_range(start.ceil("1h"), end, freq="1h", inclusive="left", name="time")
    allowed = {z: _submit_hours(slots, keys.get("submit", "weekdays09-17"),
                                timezones.get(z, "UTC")) for z in pool}
    span_h = ((end - slots) / pd.Timedelta("1h")).to_numpy()
    jobs = []
    for i in range(n):
        zone = pool[int(rng.integers(len(pool)))]
        dur = float(rng.integers(int(np.ceil(dur_lo)), int(np.floor(dur_hi)) + 1)) \
            if dur_hi >= 1 else dur_hi
        dur = max(dur, 1.0)
        slack = float(rng.uniform(slack_lo, slack_hi))
        slack = round(slack) if slack_hi >= 1 else slack
        fits = allowed[zone] & (span_h >= math.ceil(dur + overhead + slack - 1e-9))
        if not fits.any():
            raise RequestError(
                f"{param('spec')}: no submission hour in {start.date()}..{end.date()} leaves room "
                f"for {dur:g} h + {slack:g} h slack in zone {zone}; replay a longer period"
            )
        submit = slots[int(rng.choice(np.flatnonzero(fits)))]
        jobs.append(ReplayJob(
            name=f"job{i:05d}", zone=zone, submit=submit,
            gpus=int(rng.integers(int(gpu_lo), int(gpu_hi) + 1)), duration_h=dur,
            deadline=submit + pd.Timedelta(hours=math.ceil(dur + overhead + slack - 1e-9)),
            interruptible=bool(rng.random() < share), checkpoint_overhead_h=overhead,
            gpu_power_kw=power,
        ))
    jobs.sort(key=lambda j: (j.submit, j.name))
    return tuple(jobs)
