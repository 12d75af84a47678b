"""What-if sweep specifications (TOML, documented in docs/whatif.md) and their scenarios.

A spec is a base plan request (docs/plan-request.md, inline or by file) and the axes
to vary.  Expanding it gives the cross product of the axes as :class:`Scenario`
objects, each holding a ready :class:`~planner.model.PlanRequest` and a stable id.

Invariants of :class:`Scenario`:

* ``id`` is a 12-hex-digit digest of the base request, the data source, the signal
  and the axis values: the same spec on the same data gives the same ids, so an
  append-only results file can be resumed;
* ``index`` is the scenario's position in the expansion (the table's order);
* times are tz-aware UTC; ``slack_h`` and ``overhead_min`` are hours and minutes.
"""

from __future__ import annotations

import calendar
import difflib
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.errors import CatalogError, RequestError
from greenepoch.data.timeparse import count, duration, number, table, text, utc
from greenepoch.planner.model import PlanRequest, Zone
from greenepoch.planner.request import TOP_KEYS, parse_request, read_toml
from greenepoch.planner.request import check_keys as _check_keys

WHATIF_KEYS = {"request", "signal", "starts_per_season", "seed"}
SWEEP_KEYS = {"zones", "months", "quarters", "starts", "slack", "threshold",
              "checkpoint_overhead", "forecast"}
ORACLE = "oracle"
NO_THRESHOLD = "none"


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Scenario:
    """One point of a sweep: the axis values and the plan request they produce."""

    id: str
    index: int
    zones: str  # the zone set, "DE" or "DE+GB" (home zone first)
    season: str  # "2023-03" (month) or "2023Q1" (quarter)
    start: pd.Timestamp
    slack_h: float | None  # None: the base request's deadlines
    threshold: float | None  # gCO2eq/kWh; None: no threshold
    overhead_min: float | None  # None: the base request's checkpoint overheads
    forecast: str  # "oracle" or a forecast model name
    request: PlanRequest

    def labels(self) -> dict[str, Any]:
        """The axis values as a row's leading columns."""
        return {
            "scenario_id": self.id, "index": self.index, "zones": self.zones,
            "season": self.season, "start": self.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "slack_h": self.slack_h, "threshold": self.threshold,
            "overhead_min": self.overhead_min, "forecast": self.forecast,
        }


@dataclass(frozen=True)
class Spec:
    """A parsed sweep spec: the base request and the values of every axis."""

    base: PlanRequest
    fingerprint: str  # digest of the base request document
    zone_sets: tuple[tuple[str, ...], ...] | None
    seasons: tuple[str, ...] | None
    starts: tuple[pd.Timestamp, ...] | None
    slacks: tuple[pd.Timedelta, ...] | None
    thresholds: tuple[float | None, ...] | None
    overheads: tuple[pd.Timedelta, ...] | None
    forecasts: tuple[str, ...]  # the axis, or the base's [policy] forecast alone
    starts_per_season: int = 1
    signal: str = "direct"
    seed: int = 0

    def scenarios(self, data: str | None = None) -> list[Scenario]:
        """Every scenario of the sweep, in table order (``data``: the resolved data
        folder, part of the ids)."""
        return expand(self, data)

    def check_zones(self, data: str | None = None) -> None:
        """Refuse a zone no scenario could be planned in (see :func:`check_zones`)."""
        check_zones(self, data)


def _list(raw: dict[str, Any], key: str) -> list[Any] | None:
    if key not in raw:
        return None
    value = raw[key]
    if not isinstance(value, list) or not value:
        raise RequestError(f"[sweep].{key} = {value!r}: give a non-empty list, e.g. "
                           f"{key} = {_EXAMPLES[key]}")
    return value


_EXAMPLES = {
    "zones": '["DE", "GB", ["DE", "GB"]]', "months": '["2023-01", "2023-07"]',
    "quarters": '["2023Q1", "2023Q3"]', "starts": '["2023-03-01T00:00:00Z"]',
    "slack": '["0h", "24h", "72h"]', "threshold": '["none", 150, 250]',
    "checkpoint_overhead": '["0min", "15min", "1h"]', "forecast": '["oracle", "seasonal"]',
}


def _zone_set(value: Any, where: str) -> tuple[str, ...]:
    from greenepoch.planner.request import _zone_id

    if isinstance(value, list):
        names = [text(n, f"{where}[{i}]", "'DE'") for i, n in enumerate(value)]
    else:
        names = text(value, where, "'DE' or ['DE', 'GB']").split("+")
    ids = tuple(_zone_id(str(n).strip()) for n in names if str(n).strip())
    if not ids or len(set(ids)) != len(ids):
        raise RequestError(f"{where}: {value!r} is not a zone set; give 'DE' or ['DE', 'GB']")
    return ids


def _season(value: Any, where: str) -> str:
    name = text(value, where, "'2023-03' or '2023Q1'").strip().upper()
    try:
        season_range(name)
    except (ValueError, IndexError, OverflowError):
        raise RequestError(
            f"{where}: {value!r} is not a month 'YYYY-MM' or a quarter 'YYYYQn'"
        ) from None
    return name


def season_range(season: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[first, end)`` of a month ``2023-03`` or a quarter ``2023Q1`` (UTC)."""
    if "Q" in season:
        year, q = season.split("Q")
        quarter = int(q)
        if not 1 <= quarter <= 4:
            raise ValueError(season)
        first = pd.Timestamp(year=int(year), month=3 * quarter - 2, day=1, tz="UTC")
        return first, first + pd.DateOffset(months=3)
    year, month = season.split("-")
    first = pd.Timestamp(year=int(year), month=int(month), day=1, tz="UTC")
    return first, first + pd.Timedelta(days=calendar.monthrange(int(year), int(month))[1])


def season_starts(season: str, n: int) -> list[pd.Timestamp]:
    """``n`` start times spread evenly over a season, on whole days."""
    first, end = season_range(season)
    days = (end - first).days
    return [first + pd.Timedelta(days=(i * days) // n) for i in range(n)]


def _threshold(value: Any, where: str) -> float | None:
    if isinstance(value, str):
        if value.strip().lower() == NO_THRESHOLD:
            return None
        raise RequestError(f"{where} = {value!r}: expected a number of gCO2eq/kWh or "
                           "'none'; write numbers without quotes, e.g. 150")
    return number(value, where, low=0, unit="gCO2eq/kWh", example="150 or 'none'")


def parse_spec(doc: dict[str, Any], base_dir: Path = Path(".")) -> Spec:
    """Build a :class:`Spec` from a parsed TOML document."""
    _check_keys(doc, TOP_KEYS | {"whatif", "sweep"}, "spec")
    head = table(doc.get("whatif", {}), "[whatif]")
    sweep = table(doc.get("sweep", {}), "[sweep]")
    _check_keys(head, WHATIF_KEYS, "[whatif]")
    _check_keys(sweep, SWEEP_KEYS, "[sweep]")
    inline = {k: v for k, v in doc.items() if k in TOP_KEYS}
    if "request" in head:
        if inline:
            raise RequestError(
                f"spec: [whatif].request names a file and the spec also has {sorted(inline)}; "
                "keep the base request in one place"
            )
        path = base_dir / text(head["request"], "[whatif].request", "'plan.toml'")
        if not path.is_file():
            raise RequestError(f"[whatif].request: no such request file {path}")
        request_doc = read_toml(path, "request")
        request_base = path.parent
    else:
        if not inline:
            raise RequestError("spec: no base request; set [whatif].request = \"plan.toml\" "
                               "or give start, [[jobs]] and [[zones]] inline")
        request_doc, request_base = inline, base_dir
    # a threshold axis gives the threshold the base's threshold_mode/penalty act on
    has_axis = isinstance(sweep.get("threshold"), list) and bool(sweep["threshold"])
    try:
        base = parse_request(request_doc, request_base, threshold_elsewhere=has_axis)
    except RequestError as exc:
        if "request" in head:
            raise RequestError(f"{path}: {exc}") from None
        raise

    zone_sets = _list(sweep, "zones")
    months, quarters, starts = (_list(sweep, k) for k in ("months", "quarters", "starts"))
    if sum(v is not None for v in (months, quarters, starts)) > 1:
        raise RequestError("[sweep]: give one of months, quarters or starts, not several")
    seasons = months or quarters
    slacks = _list(sweep, "slack")
    thresholds = _list(sweep, "threshold")
    overheads = _list(sweep, "checkpoint_overhead")
    forecasts = _list(sweep, "forecast")
    per_season = count(head.get("starts_per_season", 1), "[whatif].starts_per_season",
                       low=1, high=366, example="starts_per_season = 4")
    seed = count(head.get("seed", 0), "[whatif].seed", high=2**32 - 1, example="seed = 0")
    signal = text(head.get("signal", "direct"), "[whatif].signal", "'direct'")
    if signal not in ("direct", "lca"):
        raise RequestError(f"[whatif].signal = {signal!r}; use 'direct' or 'lca'")
    # no forecast axis: every scenario plans like the base request would
    from greenepoch.forecasts.registry import available, canonical_name

    # 'default' (Policy's default) is labelled as the model it stands for
    models = forecasts if forecasts is not None else [canonical_name(base.policy.forecast)]
    where = "[sweep].forecast" if forecasts is not None else "[policy].forecast"

    known = available()
    for i, name in enumerate(models):
        text(name, f"{where}[{i}]" if forecasts is not None else where, "'seasonal'")
        if name not in (ORACLE, "default", *known):
            raise RequestError(f"{where}: unknown model {name!r}; use 'oracle' "
                               f"or one of {', '.join(known)}")
    return Spec(
        base=base,
        fingerprint=_digest(request_doc),
        zone_sets=None if zone_sets is None else tuple(
            _zone_set(v, f"[sweep].zones[{i}]") for i, v in enumerate(zone_sets)),
        seasons=None if seasons is None else tuple(
            _season(v, f"[sweep].{'months' if months else 'quarters'}[{i}]")
            for i, v in enumerate(seasons)),
        starts=None if starts is None else tuple(
            utc(v, f"[sweep].starts[{i}]") for i, v in enumerate(starts)),
        slacks=None if slacks is None else tuple(
            duration(v, f"[sweep].slack[{i}]") for i, v in enumerate(slacks)),
        thresholds=None if thresholds is None else tuple(
            _threshold(v, f"[sweep].threshold[{i}]") for i, v in enumerate(thresholds)),
        overheads=None if overheads is None else tuple(
            duration(v, f"[sweep].checkpoint_overhead[{i}]") for i, v in enumerate(overheads)),
        forecasts=tuple(str(f) for f in models),
        starts_per_season=per_season,
        signal=signal,
        seed=seed,
    )


def data_zones(data: str | None, signal: str = "direct") -> frozenset[str] | None:
    """The zones with intensities: those the export files in ``data`` are named after
    (``DE_2023_hourly.csv``), or the synthetic default's (``data`` None).  None when
    a file name does not say its zone (only reading it would tell)."""
    if data is None:
        from greenepoch.data.intensity.climatology import embedded_climatology

        return frozenset(embedded_climatology(signal).zones)
    from greenepoch.data.intensity.readers import named_zones

    named = named_zones(data)
    return None if None in named else frozenset(z for z in named if z is not None)


def check_zones(spec: Spec, data: str | None = None) -> None:
    """Refuse, before anything is planned, a zone of the sweep (the ``zones`` axis, or
    the base's job zones without one) that has no intensities in ``data`` (the
    resolved data folder; None: the synthetic default).

    Names were resolved like the base request's (zone ids, cloud regions); a name
    outside the region catalog is fine when the data has it.
    """
    from greenepoch.data.regions import load_catalog, resolve_zone

    have = data_zones(data, spec.signal)
    if have is None:
        return
    # suggestions: the zones with data and their cloud regions
    names = sorted(have) + [r for z in load_catalog().values() if z.id in have
                            for r in z.cloud_regions()]
    if spec.zone_sets is not None:
        places = [(f"[sweep].zones[{i}]", zones) for i, zones in enumerate(spec.zone_sets)]
    else:
        places = [(f"jobs[{i}] ('{job.name}').zones", job.zones)
                  for i, job in enumerate(spec.base.jobs)]
    where_data = f"{data} has" if data else "the synthetic default (no data folder) has"
    fix = ("add its exports to the folder" if data else
           "plan on real exports that have it (a data folder, or $GREENEPOCH_DATA)")
    for where, zones in places:
        for zone in zones:
            if zone in have:
                continue
            near = difflib.get_close_matches(zone, names, n=1)
            use = f"did you mean {near[0]}? Otherwise use" if near else "use"
            try:
                resolve_zone(zone)
            except CatalogError:
                raise RequestError(
                    f"{where}: unknown zone '{zone}': not in the region catalog, and "
                    f"{where_data} no intensities for it; {use} one of "
                    f"{', '.join(sorted(have))}"
                ) from None
            raise RequestError(
                f"{where}: {where_data} no intensities for zone '{zone}'; {use} one of "
                f"{', '.join(sorted(have))}, or {fix}"
            )


def load_spec(path: str | Path) -> Spec:
    """Read and validate a what-if spec TOML file."""
    file = Path(path)
    doc = read_toml(file, "spec")
    try:
        return parse_spec(doc, file.parent)
    except RequestError as exc:  # name the spec (a base request file's errors name it too)
        raise RequestError(f"{file}: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:  # a backstop: fields are typed
        raise RequestError(f"{file}: a value has the wrong type ({exc})") from exc


def _ceil(td: pd.Timedelta, step: pd.Timedelta) -> pd.Timedelta:
    return step * math.ceil(td / step - 1e-9)


def scenario_request(base: PlanRequest, *, zones: tuple[str, ...] | None,
                     start: pd.Timestamp, slack: pd.Timedelta | None,
                     threshold: float | None, overhead: pd.Timedelta | None,
                     vary_threshold: bool) -> PlanRequest:
    """The base request moved to ``start`` with the axis values applied.

    Every job keeps its release and deadline offsets from the base start.  With a
    zone set, every job may run in exactly those zones (home: the first); zones the
    base does not list get the base's first zone's capacity and PUE.  With a slack,
    deadline = release + (run time at full size + one checkpoint overhead, rounded up
    to a slot) + slack.
    """
    step = base.policy.slot_length
    shift = start - base.start
    jobs = []
    for job in base.jobs:
        new = replace(job, release=job.release + shift, deadline=job.deadline + shift)
        if overhead is not None:
            new = replace(new, checkpoint_overhead=overhead)
        if zones is not None:
            new = replace(new, zones=zones, home_zone=zones[0])
        if slack is not None:
            run = pd.Timedelta(hours=new.run_hours_at_full_size) + new.checkpoint_overhead
            new = replace(new, deadline=new.release + _ceil(run, step) + slack)
        jobs.append(new)
    known = {z.id: z for z in base.zones}
    template = base.zones[0]
    needed = list(dict.fromkeys(z for job in jobs for z in job.zones))
    zone_list = tuple(known.get(z) or Zone(id=z, capacity_gpus=template.capacity_gpus,
                                           pue=template.pue,
                                           capacity_schedule=template.capacity_schedule)
                      for z in needed)
    policy = replace(base.policy, threshold=threshold) if vary_threshold else base.policy
    return PlanRequest(start=start, jobs=tuple(jobs), zones=zone_list, policy=policy)


def expand(spec: Spec, data: str | None = None) -> list[Scenario]:
    """The cross product of the spec's axes, in a fixed order (zones, season, start,
    slack, threshold, overhead, forecast)."""
    base = spec.base
    zone_sets: tuple[tuple[str, ...] | None, ...] = spec.zone_sets or (None,)
    if spec.seasons is not None:
        times = [(s, t) for s in spec.seasons for t in season_starts(s, spec.starts_per_season)]
    elif spec.starts is not None:
        times = [(t.strftime("%Y-%m"), t) for t in spec.starts]
    else:
        times = [(base.start.strftime("%Y-%m"), base.start)]
    slacks: tuple[pd.Timedelta | None, ...] = spec.slacks or (None,)
    thresholds: tuple[float | None, ...] = spec.thresholds or (base.policy.threshold,)
    overheads: tuple[pd.Timedelta | None, ...] = spec.overheads or (None,)
    common = {"base": spec.fingerprint, "data": data, "signal": spec.signal, "seed": spec.seed}
    out = []
    combos = itertools.product(zone_sets, times, slacks, thresholds, overheads, spec.forecasts)
    for index, (zones, (season, start), slack, threshold, overhead, forecast) in enumerate(
            combos):
        request = scenario_request(base, zones=zones, start=start, slack=slack,
                                   threshold=threshold, overhead=overhead,
                                   vary_threshold=spec.thresholds is not None)
        label = "+".join(zones) if zones else "+".join(request.jobs[0].zones)
        slack_h = None if slack is None else slack / pd.Timedelta("1h")
        overhead_min = None if overhead is None else overhead / pd.Timedelta("1min")
        axes = {"zones": label, "season": season, "start": start.isoformat(),
                "slack_h": slack_h, "threshold": threshold, "overhead_min": overhead_min,
                "forecast": forecast}
        out.append(Scenario(
            id=_digest({**common, **axes}), index=index, zones=label, season=season,
            start=start, slack_h=slack_h, threshold=threshold,
            overhead_min=overhead_min, forecast=forecast, request=request,
        ))
    return out
