"""The typed plan (docs/plan-schema.md): what runs where and when, its emissions, and
how it compares to run-now.  The JSON is only its serialisation.

Invariants a :class:`Plan` keeps (checked once, by :meth:`Plan.from_dict`):

* every time is a tz-aware UTC ``pd.Timestamp``;
* job names are non-empty and unique; a job's segments are ordered by start, each ends
  after it starts, runs on 1 to 1,000,000 GPUs in one of the plan's ``zones`` (when the
  plan lists them) and, when the plan records the job's ``release`` and ``deadline``,
  inside that window;
* ``solver.status`` is a :class:`PlanStatus`.

Only what every reader needs is required (``schema_version``, the jobs' names and
segments); every other field is None when the document lacks it (older plans have
no ``release``, ``deadline`` or ``gpu_hours``) and type-checked when it has it.
Each part remembers its keys in document order and keeps keys this version does not
know (``extra``), so writing a plan it read gives the same JSON: the same export id
(:func:`planner.exports.common.plan_id`), and ``from_dict(p.to_dict()) == p``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pandas as pd
from greenepoch.data.atomic import write_atomic, write_together
from greenepoch.data.errors import GreenEpochError, param
from greenepoch.data.intensity.frame import SLOTS
from greenepoch.data.timeparse import boolean, count, number, table, tables, text, utc

SCHEMA_VERSION = "1.0"
SEGMENT_COLUMNS = ["job", "zone", "start", "end", "gpus", "energy_kwh", "emissions_kg"]
#: Most GPUs one segment may hold (a typo guard, as in the request).
MAX_SEGMENT_GPUS = 1_000_000


class PlanError(GreenEpochError):
    """A plan document or file is not a valid plan; the message names the field."""


class PlanStatus(enum.Enum):
    """``solver.status`` of a plan (a plan exists, so never infeasible)."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"  # time limit hit with an incumbent; see solver.gap
    NO_SOLUTION = "no_solution"  # time limit without an incumbent: the greedy plan


def iso(ts: pd.Timestamp) -> str:
    """A UTC time as the plan writes it: ``2023-06-01T07:00:00Z``."""
    ts = ts.tz_convert("UTC")
    if ts.microsecond or ts.nanosecond:
        return ts.isoformat().replace("+00:00", "Z")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(value: Any) -> Any:
    if isinstance(value, _Part):
        return value.to_dict()
    if isinstance(value, pd.Timestamp):
        return iso(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    return value


P = TypeVar("P", bound="_Part")


@dataclass(frozen=True, kw_only=True)
class _Part:
    """A JSON object of the plan: typed fields named as its keys, plus ``keys`` (the
    document's keys in order; empty: the fields that are set, in field order) and
    ``extra`` (values of keys this version does not know).  A field set later
    (``dataclasses.replace``) that the document lacked is written after its keys."""

    keys: tuple[str, ...] = field(default=(), repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    #: keys written even when None (for parts built in Python)
    ALWAYS: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def _names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name not in ("keys", "extra")]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object."""
        names = self._names()
        if self.keys:
            keys = self.keys + tuple(n for n in names if n not in self.keys
                                     and getattr(self, n) is not None)
        else:  # built in Python: the fields that are set, in field order
            keys = tuple(n for n in names if n in self.ALWAYS
                         or getattr(self, n) is not None) + tuple(self.extra)
        return {k: _json(getattr(self, k)) if k in names else self.extra[k] for k in keys}

    @classmethod
    def _read(cls: type[P], value: Any, where: str,
              readers: Mapping[str, Callable[[Any, str], Any]],
              required: tuple[str, ...] = ()) -> P:
        """Build from a JSON object: ``readers`` check and convert each known key
        (a null optional key is None); a missing required key is a PlanError."""
        raw = table(value, where or "plan")
        for key in required:
            if key not in raw:
                raise PlanError(f"{where or 'plan'}: missing '{key}'")
        values = {}
        for key, read in readers.items():
            if key in raw:
                at = f"{where}.{key}" if where else key
                values[key] = None if raw[key] is None and key not in required \
                    else read(raw[key], at)
        extra = {k: v for k, v in raw.items() if k not in readers}
        return cls(keys=tuple(raw), extra=extra, **values)


# Readers: (JSON value, field name) -> checked value; numbers stay as written
# (an int stays an int) so that a plan read and written again is the same JSON.

def _time(value: Any, where: str) -> pd.Timestamp:
    return utc(text(value, where, "'2023-06-01T07:00:00Z'"), where)


def _num(value: Any, where: str) -> float:
    number(value, where, example="1.5")
    return value


def _count(value: Any, where: str) -> int:
    return count(value, where, example="2")


def _gpu_hours(value: Any, where: str) -> float:
    number(value, where, low=0, unit="GPU-hours", example="100")
    return value


def _hours(value: Any, where: str) -> float:
    number(value, where, low=0, unit="hours", example="0.25")
    return value


def _seconds(value: Any, where: str) -> float:
    number(value, where, low=0, unit="seconds", example="3600")
    return value


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise PlanError(f"{where} = {value!r:.60}: expected a list of text")
    return tuple(text(v, f"{where}[{i}]") for i, v in enumerate(value))


def _pair(value: Any, where: str) -> tuple[float | None, float | None]:
    if not isinstance(value, list) or len(value) != 2:
        raise PlanError(f"{where} = {value!r:.60}: expected [at P10, at P90], e.g. [67.5, 46.7]")
    return tuple(None if v is None else _num(v, f"{where}[{i}]")  # type: ignore[return-value]
                 for i, v in enumerate(value))


def _status(value: Any, where: str) -> PlanStatus:
    known = [s.value for s in PlanStatus]
    if value not in known:
        raise PlanError(f"{where} = {value!r:.60}: expected one of {', '.join(known)}")
    return PlanStatus(value)


@dataclass(frozen=True, kw_only=True)
class PlanSegment(_Part):
    """A maximal run of one job in one zone at one size, ``start``..``end`` (UTC).
    ``gpu_hours``: what it runs, time lost included; ``save_hours``: the checkpoint
    save that ends it (0 for the job's last segment; None in older plans: no save)."""

    zone: str
    start: pd.Timestamp
    end: pd.Timestamp
    gpus: int
    energy_kwh: float | None = None
    emissions_kg: float | None = None  # on the intensities the plan was judged on
    gpu_hours: float | None = None
    save_hours: float | None = None

    ALWAYS = frozenset({"zone", "start", "end", "gpus", "energy_kwh", "emissions_kg"})

    @classmethod
    def from_dict(cls, value: Any, where: str) -> PlanSegment:
        seg = cls._read(value, where, {
            "zone": lambda v, at: text(v, at, "'DE'"), "start": _time, "end": _time,
            "gpus": lambda v, at: count(v, at, low=1, high=MAX_SEGMENT_GPUS, example="64"),
            "energy_kwh": _num, "emissions_kg": _num, "gpu_hours": _gpu_hours,
            "save_hours": _hours,
        }, required=("zone", "start", "end", "gpus"))
        if seg.end <= seg.start:
            raise PlanError(f"{where}.end: {iso(seg.end)} is not after start {iso(seg.start)}")
        return seg


@dataclass(frozen=True, kw_only=True)
class Fallback(_Part):
    """Why a forecast plan's job runs now at home instead of its optimised schedule."""

    to: str | None = None
    reason: str | None = None
    expected_kg: float | None = None
    p90_kg: float | None = None

    @classmethod
    def from_dict(cls, value: Any, where: str) -> Fallback:
        return cls._read(value, where, {"to": text, "reason": text, "expected_kg": _num,
                                        "p90_kg": _num})


@dataclass(frozen=True, kw_only=True)
class JobSummary(_Part):
    """A job's totals (kg CO2eq, kWh, USD); None where unknown or not recorded."""

    emissions_kg: float | None = None
    energy_kwh: float | None = None
    finish: pd.Timestamp | None = None
    interruptions: int | None = None
    migrations: int | None = None
    transfer_emissions_kg: float | None = None
    overhead_hours: float | None = None
    lost_gpu_hours: float | None = None
    cost_usd: float | None = None
    emissions_p10_kg: float | None = None
    emissions_p90_kg: float | None = None
    realised_emissions_kg: float | None = None
    fallback: Fallback | None = None

    @classmethod
    def from_dict(cls, value: Any, where: str) -> JobSummary:
        readers: dict[str, Callable[[Any, str], Any]] = {
            name: _num for name in cls._names()}
        readers.update(finish=_time, interruptions=_count, migrations=_count,
                       fallback=Fallback.from_dict)
        return cls._read(value, where, readers)


@dataclass(frozen=True, kw_only=True)
class Baseline(_Part):
    """A carbon-agnostic baseline of one job (run now at home, or in its best zone)."""

    zone: str | None = None
    emissions_kg: float | None = None
    finish: pd.Timestamp | None = None
    cost_usd: float | None = None
    emissions_p10_kg: float | None = None
    emissions_p90_kg: float | None = None
    realised_emissions_kg: float | None = None
    meets_request: bool | None = None
    violations: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, value: Any, where: str) -> Baseline:
        readers: dict[str, Callable[[Any, str], Any]] = {
            name: _num for name in cls._names()}
        readers.update(zone=text, finish=_time, meets_request=boolean, violations=_texts)
        return cls._read(value, where, readers)


def _baselines(value: Any, where: str) -> dict[str, Baseline]:
    return {name: Baseline.from_dict(b, f"{where}.{name}")
            for name, b in table(value, where).items()}


@dataclass(frozen=True, kw_only=True)
class PlanJob(_Part):
    """One job of the plan: its segments, summary, baselines and savings; ``release``,
    ``deadline`` (UTC) and ``gpu_hours`` (its work) as requested, None in plans written
    before they were recorded; and what its segments were planned with (None in older
    plans; :attr:`save_h`, :attr:`margin_h`, :attr:`step` read them with the request's
    defaults): ``checkpoint_save_hours``, ``deadline_margin_hours``, ``gpus_step``,
    ``max_migrations`` (None: no cap) and ``resize_overhead_hours`` (None: a size change
    is a restart)."""

    name: str
    segments: tuple[PlanSegment, ...]
    summary: JobSummary | None = None
    baselines: dict[str, Baseline] | None = None
    savings_pct: float | None = None
    savings_pct_p10_p90: tuple[float | None, float | None] | None = None
    robust: bool | None = None
    realised_savings_pct: float | None = None
    release: pd.Timestamp | None = None
    deadline: pd.Timestamp | None = None
    gpu_hours: float | None = None
    checkpoint_save_hours: float | None = None
    deadline_margin_hours: float | None = None
    gpus_step: int | None = None
    max_migrations: int | None = None
    resize_overhead_hours: float | None = None

    ALWAYS = frozenset({"name", "segments"})

    @property
    def save_h(self) -> float:
        """Hours each checkpoint save takes (0 when not recorded)."""
        return self.checkpoint_save_hours or 0.0

    @property
    def margin_h(self) -> float:
        """Hours before the deadline the plan ends by (0 when not recorded)."""
        return self.deadline_margin_hours or 0.0

    @property
    def step(self) -> int:
        """The GPU step of the job's sizes (1 when not recorded)."""
        return self.gpus_step or 1

    @classmethod
    def from_dict(cls, value: Any, where: str, zones: tuple[str, ...] | None) -> PlanJob:
        def segments(v: Any, at: str) -> tuple[PlanSegment, ...]:
            return tuple(PlanSegment.from_dict(s, f"{at}[{k}]")
                         for k, s in enumerate(tables(v, at)))

        job = cls._read(value, where, {
            "name": lambda v, at: text(v, at, "'pretrain'"), "segments": segments,
            "summary": JobSummary.from_dict, "baselines": _baselines,
            "savings_pct": _num, "savings_pct_p10_p90": _pair, "robust": boolean,
            "realised_savings_pct": _num, "release": _time, "deadline": _time,
            "gpu_hours": _gpu_hours, "checkpoint_save_hours": _hours,
            "deadline_margin_hours": _hours,
            "gpus_step": lambda v, at: count(v, at, low=1, example="8"),
            "max_migrations": _count, "resize_overhead_hours": _hours,
        }, required=("name", "segments"))
        if not job.name.strip():
            raise PlanError(f"{where}.name: empty; every job needs a name")
        if job.release is not None and job.deadline is not None \
                and job.deadline <= job.release:
            raise PlanError(f"{where}.deadline: {iso(job.deadline)} is not after release "
                            f"{iso(job.release)}")
        for k, seg in enumerate(job.segments):
            at = f"{where}.segments[{k}]"
            if zones and seg.zone not in zones:
                raise PlanError(f"{at}.zone = {seg.zone!r}: not one of the plan's zones "
                                f"({', '.join(zones)})")
            if k and seg.start < job.segments[k - 1].start:
                raise PlanError(f"{at}.start: {iso(seg.start)} is before the start of "
                                f"segment {k - 1}; segments are ordered by start")
            if job.release is not None and seg.start < job.release:
                raise PlanError(f"{at}.start: {iso(seg.start)} is before the job's release "
                                f"{iso(job.release)}")
            if job.deadline is not None and seg.end > job.deadline:
                raise PlanError(f"{at}.end: {iso(seg.end)} is after the job's deadline "
                                f"{iso(job.deadline)}")
        return job


def _ranges(value: Any, where: str) -> tuple[tuple[pd.Timestamp, pd.Timestamp], ...]:
    if not isinstance(value, list):
        raise PlanError(f"{where} = {value!r:.60}: expected a list of [start, end] times")
    out = []
    for i, pair in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise PlanError(f"{at} = {pair!r:.60}: expected [start, end], e.g. "
                            "['2026-12-03T07:00:00Z', '2026-12-04T07:00:00Z']")
        first, end = _time(pair[0], f"{at}[0]"), _time(pair[1], f"{at}[1]")
        if end <= first:
            raise PlanError(f"{at}: {iso(end)} is not after {iso(first)}")
        out.append((first, end))
    return tuple(out)


#: Where a live plan's hours came from (``intensity.live.zones``): the provider's live
#: forecast, the seam blending it into the own model, the own model, a provider
#: forecast from the archive (stale), the embedded synthetic default.
LIVE_ORIGINS = ("provider", "seam", "model", "stale", "synthetic")


@dataclass(frozen=True, kw_only=True)
class LiveHours(_Part):
    """How many hours of one zone came from one origin, and which (``[start, end)``)."""

    hours: float | None = None
    ranges: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] | None = None

    ALWAYS = frozenset({"hours", "ranges"})

    @classmethod
    def from_dict(cls, value: Any, where: str) -> LiveHours:
        return cls._read(value, where, {"hours": _hours, "ranges": _ranges})


@dataclass(frozen=True, kw_only=True)
class LiveRead(_Part):
    """One live read of a zone (``data.live.Provenance``): ``kind`` actual or forecast,
    ``origin`` live, archive (stale: ``stale_s`` seconds old) or default (synthetic),
    the ``provider``, its ``fetched`` and ``issued`` times and the hours it covers
    (``first`` .. ``last``)."""

    zone: str | None = None
    kind: str | None = None
    origin: str | None = None
    provider: str | None = None
    signal: str | None = None
    fetched: pd.Timestamp | None = None
    issued: pd.Timestamp | None = None
    stale_s: float | None = None
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None

    ALWAYS = frozenset({"zone", "kind", "origin", "provider", "signal", "fetched", "issued",
                        "stale_s", "first", "last"})

    @classmethod
    def from_dict(cls, value: Any, where: str) -> LiveRead:
        readers: dict[str, Callable[[Any, str], Any]] = {k: text for k in cls._names()}
        readers.update(fetched=_time, issued=_time, first=_time, last=_time,
                       stale_s=_seconds)
        return cls._read(value, where, readers)


def _live_zones(value: Any, where: str) -> dict[str, dict[str, LiveHours]]:
    out = {}
    for zone, origins in table(value, where).items():
        at = f"{where}.{zone}"
        out[zone] = {name: LiveHours.from_dict(v, f"{at}.{name}")
                     for name, v in table(origins, at).items()}
    return out


def _values(value: Any, where: str) -> dict[str, tuple[float | None, ...]]:
    out = {}
    for zone, row in table(value, where).items():
        at = f"{where}.{zone}"
        if not isinstance(row, list):
            raise PlanError(f"{at} = {row!r:.60}: expected a list of gCO2eq/kWh, one per slot")
        out[zone] = tuple(None if v is None else _num(v, f"{at}[{i}]")
                          for i, v in enumerate(row))
    return out


#: The stats of a live plan's forecast kept per slot (``intensity.live.series``).
SERIES_STATS = ("p50", "p10", "p90")


@dataclass(frozen=True, kw_only=True)
class LiveSeries(_Part):
    """The forecast a live plan was made on, per zone and slot (gCO2eq/kWh): ``p50`` (what
    the plan was judged on), ``p10`` and ``p90``, on slots of ``slot`` from ``first``; kept
    because nobody can issue a live forecast again later (reports draw it)."""

    first: pd.Timestamp | None = None
    slot: str | None = None
    p50: dict[str, tuple[float | None, ...]] | None = None
    p10: dict[str, tuple[float | None, ...]] | None = None
    p90: dict[str, tuple[float | None, ...]] | None = None

    ALWAYS = frozenset({"first", "slot", "p50", "p10", "p90"})

    @classmethod
    def from_dict(cls, value: Any, where: str) -> LiveSeries:
        def slot(v: Any, at: str) -> str:
            got = text(v, at, "'1h'")
            if got not in SLOTS:
                raise PlanError(f"{at} = {got!r}: expected one of {', '.join(SLOTS)}")
            return got

        series = cls._read(value, where, {"first": _time, "slot": slot, "p50": _values,
                                          "p10": _values, "p90": _values},
                           required=("first", "slot", "p50"))
        lengths = {(stat, zone): len(row) for stat in SERIES_STATS
                   for zone, row in (getattr(series, stat) or {}).items()}
        if len(set(lengths.values())) > 1:
            (s1, z1), (s2, z2) = (min(lengths, key=lambda k: lengths[k]),
                                  max(lengths, key=lambda k: lengths[k]))
            raise PlanError(f"{where}: {s1}.{z1} has {lengths[(s1, z1)]} slots, {s2}.{z2} "
                            f"{lengths[(s2, z2)]}; every zone and stat covers the same slots")
        return series

    def frame(self, stat: str = "p50") -> pd.DataFrame | None:
        """``stat`` as a time x zone frame (the ``time`` index UTC); None when absent."""
        rows = getattr(self, stat)
        if not rows or self.first is None or self.slot is None:
            return None
        length = len(next(iter(rows.values())))
        index = pd.date_range(self.first, periods=length, freq=SLOTS[self.slot], name="time")
        return pd.DataFrame({z: [float("nan") if v is None else float(v) for v in row]
                             for z, row in rows.items()}, index=index)


@dataclass(frozen=True, kw_only=True)
class LiveInfo(_Part):
    """Where a live plan's intensities came from (docs/live.md): every live read
    (``providers``), per zone the hours of each of :data:`LIVE_ORIGINS` (``zones``),
    what the own model was fitted on (``history``: archive, data or default), whether
    anything was ``stale`` or ``synthetic``, a sentence per such input (``warnings``),
    and the forecast planned on per slot (``series``; None in plans written before it
    was recorded)."""

    providers: tuple[LiveRead, ...] | None = None
    zones: dict[str, dict[str, LiveHours]] | None = None
    history: str | None = None
    stale: bool | None = None
    synthetic: bool | None = None
    warnings: tuple[str, ...] | None = None
    series: LiveSeries | None = None

    ALWAYS = frozenset({"providers", "zones", "history", "stale", "synthetic", "warnings"})

    @classmethod
    def from_dict(cls, value: Any, where: str) -> LiveInfo:
        def reads(v: Any, at: str) -> tuple[LiveRead, ...]:
            return tuple(LiveRead.from_dict(r, f"{at}[{i}]") for i, r in enumerate(tables(v, at)))

        return cls._read(value, where, {
            "providers": reads, "zones": _live_zones, "history": text, "stale": boolean,
            "synthetic": boolean, "warnings": _texts, "series": LiveSeries.from_dict})

    def line(self) -> str:
        """One line for the terminal: per zone, the forecast's provider and issue time
        and the hours of each origin."""
        issued = {r.zone: r for r in self.providers or () if r.kind == "forecast"}
        parts = []
        for zone, origins in (self.zones or {}).items():
            hours = ", ".join(f"{h.hours:g} h {name}" for name, h in origins.items()
                              if h.hours)
            read = issued.get(zone)
            by = "no provider forecast" if read is None else (
                f"{read.provider} forecast issued {iso(read.issued)}" if read.issued is not None
                else f"{read.provider} forecast")
            parts.append(f"{zone} {by}: {hours}")
        # history is None when no own model was used (a marginal plan: never blended)
        model = "" if self.history is None else f"; own model fitted on {self.history} history"
        return (f"live: {'; '.join(parts)}{model}"
                + (" (SYNTHETIC)" if self.synthetic else "") + (" (STALE)" if self.stale else ""))

    def warning_lines(self) -> list[str]:
        return [f"WARNING: {w}" for w in self.warnings or ()]


@dataclass(frozen=True, kw_only=True)
class IntensityInfo(_Part):
    """What the plan was judged on: ``source`` (real, synthetic), ``signal`` (direct,
    lca, marginal), ``mode`` (oracle, forecast), the forecast ``model`` (None for
    oracle) and, for live plans, where the intensities came from (``live``)."""

    source: str | None = None
    signal: str | None = None
    mode: str | None = None
    model: str | None = None
    live: LiveInfo | None = None

    ALWAYS = frozenset({"source", "signal", "mode", "model"})

    @classmethod
    def from_dict(cls, value: Any, where: str) -> IntensityInfo:
        readers: dict[str, Callable[[Any, str], Any]] = {
            k: text for k in ("source", "signal", "mode", "model")}
        readers["live"] = LiveInfo.from_dict
        return cls._read(value, where, readers)

    @property
    def forecast(self) -> bool:
        return self.mode == "forecast"

    @property
    def signal_text(self) -> str:
        """The signal as reports and summaries name it: a marginal signal says whose
        (WattTime's MOER, never to be read as an average intensity)."""
        return SIGNAL_TEXT.get(str(self.signal), str(self.signal))


@dataclass(frozen=True, kw_only=True)
class SolverReport(_Part):
    """How the plan was solved: backend ``name``, ``status``, ``method`` (milp or
    heuristic), objective/bound/gap, and seconds (solve, build, end to end)."""

    name: str | None = None
    status: PlanStatus | None = None
    method: str | None = None
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    seconds: float | None = None
    build_seconds: float | None = None
    total_seconds: float | None = None
    message: str | None = None

    ALWAYS = frozenset({"name", "status", "method", "objective", "bound", "gap", "seconds",
                        "build_seconds", "total_seconds", "message"})

    @classmethod
    def from_dict(cls, value: Any, where: str) -> SolverReport:
        readers: dict[str, Callable[[Any, str], Any]] = {
            name: _num for name in cls._names()}
        readers.update(name=text, status=_status, method=text, message=text)
        return cls._read(value, where, readers)


#: How a signal is named in reports and summaries (the JSON keeps the bare name).
SIGNAL_TEXT = {"marginal": "marginal (WattTime MOER)"}


#: What :meth:`Plan.require_full` checks: (plan field, its required parts).
FULL_PLAN = (("start", ()), ("zones", ()), ("intensity", ("source", "signal", "mode")),
             ("solver", ("name", "status")))


@dataclass(frozen=True, kw_only=True)
class Plan(_Part):
    """A plan document, typed.  Read with :meth:`from_json` / :meth:`from_dict`; write
    with :meth:`write` (JSON and segment CSV together), :meth:`to_json`, :meth:`to_csv`."""

    schema_version: str
    jobs: tuple[PlanJob, ...]
    created_by: str | None = None
    start: pd.Timestamp | None = None
    slot: str | None = None
    zones: tuple[str, ...] | None = None
    intensity: IntensityInfo | None = None
    solver: SolverReport | None = None

    ALWAYS = frozenset({"schema_version", "jobs"})

    # -- reading -----------------------------------------------------------------------

    @classmethod
    def from_dict(cls, doc: Any) -> Plan:
        """Check every field of a plan document once and build the plan; a wrong field
        is one :class:`PlanError` naming it."""
        version = doc.get("schema_version") if isinstance(doc, dict) else None
        if version != SCHEMA_VERSION:
            raise PlanError(
                f"plan schema_version {version!r} is not supported (this GreenEpoch reads "
                f"{SCHEMA_VERSION!r}); re-create the plan with 'greenepoch plan'")
        def jobs(value: Any, at: str) -> tuple[PlanJob, ...]:
            out = tuple(PlanJob.from_dict(j, f"{at}[{i}]", zones)
                        for i, j in enumerate(tables(value, at)))
            seen: dict[str, int] = {}
            for i, job in enumerate(out):
                if seen.setdefault(job.name, i) != i:
                    raise PlanError(f"{at}[{i}].name = {job.name!r}: also the name of "
                                    f"jobs[{seen[job.name]}]; job names must be unique "
                                    "(rename one and re-plan)")
            return out

        try:
            zones = _texts(doc["zones"], "zones") if doc.get("zones") is not None else None
            return cls._read(doc, "", {
                "schema_version": text, "jobs": jobs, "created_by": text, "start": _time,
                "slot": text, "zones": _texts, "intensity": IntensityInfo.from_dict,
                "solver": SolverReport.from_dict,
            }, required=("schema_version", "jobs"))
        except PlanError:
            raise
        except GreenEpochError as exc:  # the field readers' RequestError
            raise PlanError(str(exc)) from None

    @classmethod
    def from_json(cls, source: str | Path) -> Plan:
        """Read a plan from a file path or from JSON text (a str starting with ``{``);
        a file that is not a valid plan is one PlanError naming the file and field."""
        from greenepoch.data.inputs import TOO_DEEP, read_text

        is_text = isinstance(source, str) and source.lstrip().startswith("{")
        name = "plan JSON" if is_text else str(source)
        try:
            doc = json.loads(str(source) if is_text else read_text(source))
        except UnicodeDecodeError as exc:
            raise PlanError(f"{name}: not a plan JSON (not UTF-8 text: byte {exc.start}, "
                            f"{exc.reason}); give the plan JSON 'greenepoch plan' "
                            "wrote") from None
        except (OSError, ValueError, TOO_DEEP) as exc:  # bad JSON, a number beyond a float
            raise PlanError(f"{name}: cannot read plan JSON ({exc})") from exc
        version = doc.get("schema_version") if isinstance(doc, dict) else None
        try:
            return cls.from_dict(doc)
        except PlanError as exc:
            if version != SCHEMA_VERSION:
                raise PlanError(f"{name}: {exc}") from None
            raise PlanError(f"{name}: not a valid plan ({exc}); give the plan JSON "
                            "'greenepoch plan' wrote") from None

    def require_full(self) -> None:
        """Refuse a plan that lacks what a report of it reads (start, zones, intensity,
        solver, each job's summary and baselines): PlanError naming the first."""
        for name, parts in FULL_PLAN:
            value = getattr(self, name)
            if value is None:
                raise PlanError(f"missing '{name}'")
            for part in parts:
                if getattr(value, part) is None:
                    raise PlanError(f"{name}: missing '{part}'")
        for i, job in enumerate(self.jobs):
            for name in ("summary", "baselines"):
                if getattr(job, name) is None:
                    raise PlanError(f"jobs[{i}]: missing '{name}'")

    # -- views ---------------------------------------------------------------------------

    def job(self, name: str) -> PlanJob:
        """The job called ``name``."""
        for job in self.jobs:
            if job.name == name:
                return job
        raise PlanError(f"the plan has no job {name!r}; its jobs: "
                        f"{', '.join(j.name for j in self.jobs)}")

    def segments(self) -> pd.DataFrame:
        """One row per segment, all jobs (the CSV: times as ISO text)."""
        rows = [{"job": job.name, **seg.to_dict()} for job in self.jobs
                for seg in job.segments]
        return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)

    # -- writing -------------------------------------------------------------------------

    def to_json(self, path: str | Path | None = None) -> str:
        """The plan JSON; also written to ``path`` atomically when given."""
        out = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            write_atomic(path, out)
        return out

    def to_csv(self, path: str | Path | None = None) -> str:
        """The segment CSV; also written to ``path`` atomically when given."""
        out = str(self.segments().to_csv(index=False, lineterminator="\n"))
        if path is not None:
            write_atomic(path, out)
        return out

    @staticmethod
    def csv_path(json_path: str | Path) -> Path:
        """Where :meth:`write` puts the segment CSV of a plan written to ``json_path``
        (which is used exactly as given): beside it, its ``.json`` suffix replaced by
        ``.csv`` (``p.json`` -> ``p.csv``), or ``.csv`` appended to a name without one
        (``p`` -> ``p.csv``, ``run.v2`` -> ``run.v2.csv``: never another name's CSV).
        Refuses a ``.csv`` ``json_path`` (the plan would pass for its segment table) and
        one whose CSV is a folder, so callers can check before planning."""
        target = Path(json_path)
        name = target.name
        stem = name[: -len(".json")] if name.lower().endswith(".json") else name
        csv_file = target.with_name(f"{stem}.csv")
        # case-insensitive: on macOS and Windows p.CSV and p.csv are one file
        if target.suffix.lower() == ".csv":
            raise GreenEpochError(
                f"{param('json_path')} {json_path}: a .csv name is for the plan's segment "
                "CSV, which is written beside the plan JSON; give the plan a .json name, "
                f"e.g. {target.with_suffix('.json')}")
        if csv_file.is_dir():
            raise GreenEpochError(f"{param('json_path')} {json_path}: the plan's segment CSV "
                                  f"{csv_file} is a folder; pick another name")
        return csv_file

    def write(self, json_path: str | Path) -> tuple[Path, Path]:
        """Write the plan JSON to ``json_path`` and its segment CSV beside it
        (:meth:`csv_path`), replaced together or not at all.  Returns both paths."""
        csv_file = self.csv_path(json_path)
        write_together({json_path: self.to_json(), csv_file: self.to_csv()})
        return Path(json_path), csv_file
