"""The planning pipeline: request + intensities -> numeric problem -> schedule -> Plan."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError, InfeasibleError, RequestError, param
from greenepoch.data.intensity.frame import SLOTS, IntensityData
from greenepoch.data.intensity.source import ClimatologySource, IntensitySource, source_for
from greenepoch.data.timeparse import hours
from greenepoch.planner.model import PlanRequest
from greenepoch.solvers.problem import JobSpec, PlanningProblem

if TYPE_CHECKING:
    from greenepoch.data.archive.store import Archive
    from greenepoch.data.live.source import Provenance
    from greenepoch.data.providers.config import LiveConfig
    from greenepoch.data.providers.records import Fetched
    from greenepoch.forecasts.live import LiveForecast


@dataclass(frozen=True)
class Intensities:
    """What the plan is judged on, and what really happened (when known)."""

    judged: IntensityData
    actual: IntensityData | None
    mode: str  # oracle | forecast
    model: str | None
    #: forecast mode: the forecast's 'p10' and 'p90' (time x zone, gCO2eq/kWh)
    quantiles: dict[str, pd.DataFrame] | None = None
    #: live plans: the blended provider/model forecast (which hours came from where)
    live: LiveForecast | None = None
    #: live plans: where each zone's values came from (provider, archive, default)
    provenance: tuple[Provenance, ...] = ()
    #: live plans: what the own model was fitted on: archive | data | default (synthetic)
    history: str | None = None


def slot_grid(request: PlanRequest) -> pd.DatetimeIndex:
    step = request.policy.slot_length
    first = request.start.floor(step)
    last = request.end.ceil(step)
    return pd.date_range(first, last - step, freq=step, name="time")


def load_intensities(
    request: PlanRequest,
    *,
    data: str | Path | IntensitySource | None = None,
    oracle: bool = False,
    model: str | None = None,
    signal: str = "direct",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    fit_until: pd.Timestamp | None = None,
) -> Intensities:
    """Intensities for the request's zones over its horizon, from ``data``: an
    :class:`~greenepoch.data.intensity.source.IntensitySource`, or a data folder / None
    (:func:`~greenepoch.data.intensity.source.source_for`, ``seed`` for the synthetic
    default).

    ``oracle``: the plan sees what really happened.  Otherwise a forecast issued
    at the plan start from the history before it (``model``, default the
    policy's ``forecast``) is what the plan is judged on: the model is fitted on the
    history before the start's week (kept on disk, :mod:`planner.forecast_cache`) and
    reads the latest observations up to the start.  ``fit_until`` (at or before the
    start) fits on the history before it instead, e.g. one fit through 2022 for every
    plan of 2023 (benchmarks/bench_forecast_plans.py).  ``progress`` gets one-line notes
    (fitting, cache use).
    """
    source = source_for(data, seed=seed)
    slots = slot_grid(request)
    zones = [z.id for z in request.zones]
    end = slots[-1] + request.policy.slot_length
    slot = request.policy.slot
    if oracle:
        actual = source.load(zones, slots[0], end, signal=signal, slot=slot)
        return Intensities(actual, actual, "oracle", None)
    from greenepoch.forecasts.registry import canonical_name, get_model
    from greenepoch.planner.forecast_cache import fit_cutoff, fitted_model, week_start

    name = canonical_name(model or request.policy.forecast)
    needed = get_model(name).history_needed
    first = (week_start(slots[0]) if fit_until is None else min(fit_until, slots[0])) - needed
    full = source.load(zones, first, end, signal=signal, slot=slot, clip_start=True)
    history = full.values[full.values.index < slots[0]]
    if history.empty:
        raise RequestError(
            f"no intensity history before the plan start {slots[0].isoformat()} to forecast "
            f"from; start later, or plan with {param('oracle')}")
    if fit_until is not None and fit_until > slots[0]:
        raise RequestError(
            f"fit_until {fit_until.isoformat()} is after the plan start "
            f"{slots[0].isoformat()}: a forecast cannot be fitted on what it predicts")
    cutoff = fit_cutoff(slots[0], history.index[0], needed) if fit_until is None else fit_until
    forecaster = fitted_model(name, history, cutoff, progress=progress)
    predicted = forecaster.predict(slots[0], end - slots[0], data=history)
    stats = {stat: pd.DataFrame(predicted.xs(stat, axis=1, level=1)).reindex(columns=zones)
             .clip(lower=0).rename_axis("time") for stat in ("mean", "p10", "p90")}
    mean = stats.pop("mean")
    flags = pd.DataFrame(False, index=mean.index, columns=zones)
    judged = IntensityData(mean, flags, flags, full.source, full.signal, full.files,
                           provider=full.provider)
    return Intensities(judged, full.select(zones, slots[0], end), "forecast", name, stats)


def live_intensities(zones: list[str], start: pd.Timestamp, end: pd.Timestamp, *,
                     slot: str = "1h", signal: str = "direct", provider: str | None = None,
                     history: str | Path | IntensitySource | None = None,
                     model: str | None = None, config: LiveConfig | None = None,
                     archive: Archive | None = None, allow_default: bool | None = None,
                     progress: Callable[[str], None] | None = None,
                     warn: Callable[[str], None] | None = None,
                     clock: Callable[[], pd.Timestamp] | None = None,
                     to_forecast_end: bool = False) -> Intensities:
    """The grid as it is now, for ``zones`` over the slots from ``start`` to ``end``
    (``slot`` long): each zone's provider forecast for the hours it covers, the own
    model (``model``, default the registry's default) beyond, blended at the seam
    (:func:`greenepoch.forecasts.live.blend`).

    A :class:`~greenepoch.data.live.source.LiveSource` (``config``, default
    :func:`~greenepoch.data.providers.config.load_config`; ``provider`` first;
    ``archive``; ``allow_default``, default the config's) fetches the provider
    forecasts and the recent actuals, falling back on the archive (stale, marked) and,
    when allowed, the embedded default.  The model is fitted on the archive's history
    when it covers what the model needs, else on ``history`` (a data folder, a source, or
    None: the embedded default, marked synthetic).  ``signal`` 'marginal' is WattTime's
    only: it is never extended by a model, so every slot must lie within WattTime's
    forecast (DataError saying what it covers), or with ``to_forecast_end`` the slots
    end where the shortest zone's forecast ends (the caller says so: the returned
    frames end earlier than ``end``).  The first
    slot (the one holding now) counts as covered when the provider's forecast starts
    inside it and covers the rest of it (:func:`greenepoch.forecasts.live.blend`).
    ``progress`` gets one-line notes, ``warn`` the stale/synthetic warnings;
    ``clock`` is "now" (tests).

    Returns forecast-mode :class:`Intensities`: judged = P50, quantiles p10/p90, no
    actuals, ``live`` the blend and ``provenance`` every read's origin.
    """
    from greenepoch.data.archive.store import Archive, archive_url
    from greenepoch.data.live.source import LiveSource
    from greenepoch.data.providers.base import utc_now
    from greenepoch.data.providers.config import load_config
    from greenepoch.forecasts.live import LiveForecast, blend
    from greenepoch.forecasts.registry import canonical_name

    config = config or load_config()
    archive = archive or Archive(archive_url(config.archive))
    clock = clock or utc_now
    step = SLOTS[slot]
    slots = pd.date_range(start.ceil(step), end.ceil(step) - step, freq=step, name="time")
    if len(slots) < 2:
        raise RequestError(f"no whole {slot} slot between {start.isoformat()} and "
                           f"{end.isoformat()}")
    live = LiveSource(config, provider=provider, archive=archive,
                      allow_default=allow_default, clock=clock, warn=warn)
    provided = live.forecast(zones, signal)
    if signal == "marginal":
        _require_marginal(provided)
    name: str | None = None
    origin: str | None = None
    files: tuple[str, ...] = ()
    predicted = pd.DataFrame(index=slots)
    if signal != "marginal":  # a marginal forecast is never blended with a model
        name = canonical_name(model or "default")
        served = {z: f.provider for z, f in provided.items() if f is not None}
        predicted, origin, files = _own_forecast(live, zones, slots, signal, name, archive,
                                                 history, progress, served)
    mixed = blend(provided, predicted, slots)
    if signal == "marginal":
        reach = _marginal_reach(provided, mixed.p50.reindex(columns=zones),
                                cut=to_forecast_end)
        slots = slots[:reach]
        mixed = LiveForecast(*(frame.iloc[:reach] for frame in (
            mixed.p50, mixed.p10, mixed.p90, mixed.origin)))
    p50, p10, p90 = (frame.reindex(index=slots, columns=zones)
                     for frame in (mixed.p50, mixed.p10, mixed.p90))
    # synthetic: a value of the plan's P50 that is (or is forecast from) the synthetic
    # default (a band from a model fitted on it is said in the plan's warnings)
    synthetic = any(p.origin == "default" for p in live.provenance) or bool(
        origin == "default" and mixed.origin.isin(["seam", "model"]).to_numpy().any())
    flags = pd.DataFrame(False, index=slots, columns=zones)
    judged = IntensityData(p50, flags, flags, "synthetic" if synthetic else "real", signal,
                           files, provider=live.name)
    return Intensities(judged, None, "forecast", name, {"p10": p10, "p90": p90}, live=mixed,
                       provenance=tuple(live.provenance), history=origin)


def _own_forecast(live: IntensitySource, zones: list[str], slots: pd.DatetimeIndex,
                  signal: str, name: str, archive: Archive,
                  history: str | Path | IntensitySource | None,
                  progress: Callable[[str], None] | None, served: Mapping[str, str]
                  ) -> tuple[pd.DataFrame, str, tuple[str, ...]]:
    """The own model's forecast over ``slots`` (its ``predict()`` frame), where its
    history came from (:func:`_model_history`) and the files read: fitted as
    :func:`load_intensities` fits (weekly, cached), reading the last day's live actuals
    as its latest lags."""
    from greenepoch.forecasts.registry import get_model
    from greenepoch.planner.forecast_cache import fit_cutoff, fitted_model

    step = slots[1] - slots[0]
    slot = next(k for k, v in SLOTS.items() if v == step)
    recent = live.load(zones, None, None, signal=signal, slot=slot).values  # the last day
    needed = get_model(name).history_needed
    fitted, origin = _model_history(zones, recent.index[0], needed, signal, slot, archive,
                                    history, served)
    data = _with_recent(fitted.values, recent)
    # weekly, as planned forecasts are; a folder of past years: on all of it
    fit_until = min(fit_cutoff(slots[0], data.index[0], needed), data.index[-1] + step)
    forecaster = fitted_model(name, data, fit_until, progress=progress)
    return forecaster.predict(slots[0], slots[-1] + step - slots[0], data=data), origin, \
        fitted.files


def _marginal_reach(provided: Mapping[str, Fetched | None], p50: pd.DataFrame, *,
                    cut: bool) -> int:
    """How many of ``p50``'s slots (from the first on) every zone's marginal forecast
    covers: all of them; with ``cut`` fewer (at least two); else
    DataError saying what the forecast covers (no model extends a marginal forecast)."""
    slots = p50.index
    step = slots[1] - slots[0]
    reach, given = {}, {}
    for zone in p50.columns:
        fetched = provided[zone]
        assert fetched is not None  # _require_marginal, before the blend
        values = fetched.values
        given[zone] = ("no values" if values.empty else f"{values.index[0].isoformat()} .. "
                       f"{(values.index[-1] + fetched.step).isoformat()}")
        covered = p50[zone].notna().to_numpy()
        reach[zone] = len(covered) if covered.all() else int(covered.argmin())
    zone = min(reach, key=lambda z: reach[z])
    stop = reach[zone]
    end = slots[0] + stop * step
    if stop == len(slots):
        return stop
    if cut and stop >= 2:
        return stop
    covers = (f"the {_slot_text(step)} slots {slots[0].isoformat()} .. {end.isoformat()}"
              if stop else f"none of the slots from {slots[0].isoformat()}")
    raise DataError(
        f"{zone}: the marginal forecast covers {covers} (its periods: {given[zone]}; the "
        "slot holding now counts from its first period on), not up to "
        f"{(slots[-1] + step).isoformat()}; a marginal plan must end within WattTime's "
        f"forecast (deadlines within about 24 h), or plan on another {param('signal')}")


def _require_marginal(provided: Mapping[str, Fetched | None]) -> None:
    """DataError naming the zones without a marginal forecast: no model extends or
    replaces one, so nothing else can stand in for it."""
    missing = [zone for zone, fetched in provided.items() if fetched is None]
    if missing:
        raise DataError(
            f"{', '.join(missing)}: no marginal forecast (WattTime's, live or archived) to "
            "plan on: WattTime, the one marginal provider, needs WATTTIME_USERNAME and "
            "WATTTIME_PASSWORD (docs/live.md) and must cover the zone (the warnings say "
            f"what it answered); or plan on another {param('signal')}")


def _slot_text(step: pd.Timedelta) -> str:
    return next((name for name, size in SLOTS.items() if size == step), str(step))


def _model_history(zones: list[str], until: pd.Timestamp, needed: pd.Timedelta, signal: str,
                   slot: str, archive: Archive,
                   fallback: str | Path | IntensitySource | None,
                   served: Mapping[str, str]) -> tuple[IntensityData, str]:
    """What the own model of a live plan is fitted on, and where it came from: the
    archive's actuals when they cover the ``needed`` span before ``until`` ('archive'),
    else ``fallback``'s ('data'; the embedded synthetic default when None: 'default',
    for the region catalog's zones only: :func:`_check_default_knows`, which names the
    provider that ``served`` the zone's forecast for the pull it suggests)."""
    from greenepoch.data.archive.source import ArchiveSource

    first = until.floor("D") - needed
    with contextlib.suppress(DataError):  # not (fully) archived: the fallback fits it
        return ArchiveSource(archive).load(zones, first, until, signal=signal, slot=slot), \
            "archive"
    source = source_for(fallback)
    origin = "default" if isinstance(source, ClimatologySource) else "data"
    if origin == "default":
        _check_default_knows(zones, first, signal, served)
    try:
        return source.load(zones, first, until, signal=signal, slot=slot,
                           clip_start=True), origin
    except DataError:
        if origin == "default":
            raise
    # a folder of past years' exports: its newest `needed` before `until`
    whole = source.load(zones, None, None, signal=signal, slot=slot)
    newest = whole.values.index[whole.values.index < until]
    if newest.empty:
        raise DataError(f"{source.describe()} holds nothing before {until.isoformat()} to "
                        "fit the own forecast model on")
    return whole.select(zones, newest[-1] - needed, until), origin


def _check_default_knows(zones: list[str], since: pd.Timestamp, signal: str,
                         served: Mapping[str, str]) -> None:
    """The embedded default knows the region catalog's zones only: a zone outside it
    (a UK region from ukci, say) with nothing archived has no history at all."""
    from greenepoch.data.providers.registry import providers_covering
    from greenepoch.data.regions import load_catalog

    unknown = [zone for zone in zones if zone not in load_catalog()]
    if not unknown:
        return
    zone = unknown[0]
    by = [served[zone]] if zone in served else providers_covering(zone, signal=signal)
    pull = (f"greenepoch data pull{f' --provider {by[0]}' if by else ''} --zones "
            f"{','.join(unknown)} --since {since:%Y-%m-%d}")
    raise DataError(
        f"{', '.join(unknown)}: no history to fit the own forecast model on (nothing "
        f"archived since {since:%Y-%m-%d}, no {param('data_dir')}, and the embedded default "
        "knows the region catalog's zones only): archive it first with "
        f"'{pull}', or give {param('data_dir')} a folder holding its history")


def _with_recent(history: pd.DataFrame, recent: pd.DataFrame) -> pd.DataFrame:
    """``history`` with the live ``recent`` actuals in place of its own values where they
    overlap and after it, when the two meet (the model reads the latest lags); history
    alone when they do not (a gap is never filled)."""
    step = pd.Timedelta(history.index[1] - history.index[0]) if len(history) > 1 else None
    if step is None or recent.empty or recent.index[0] > history.index[-1] + step:
        return history
    older = history[history.index < recent.index[0]]
    return pd.concat([older, recent.reindex(columns=history.columns)]).rename_axis("time")


def zone_prices(request: PlanRequest, slots: pd.DatetimeIndex,
                data: str | Path | IntensitySource | None = None) -> np.ndarray | None:
    """USD/MWh per zone and slot: the request's price files, else the prices of the
    source (``data`` as in :func:`load_intensities`; the market from the region
    catalog); NaN rows for zones without prices, None when no zone has prices."""
    from greenepoch.data.prices import hourly_prices

    prices = source_for(data).prices
    rows, found = [], False
    for zone in request.zones:
        series = zone.price_usd_per_mwh
        if series is None and prices is not None:
            series = prices.zone(zone.id)
        if series is None or series.empty:
            rows.append(np.full(len(slots), np.nan))
            continue
        found = True
        rows.append(hourly_prices(series, slots).to_numpy(dtype=float))
    return np.vstack(rows) if found else None


def _require_prices(request: PlanRequest, prices: np.ndarray | None) -> None:
    """Every zone a job may run in needs prices under ``carbon+cost``: a zone without
    them would look free."""
    used = {z for job in request.jobs for z in job.zones}
    missing = [z.id for i, z in enumerate(request.zones)
               if z.id in used and (prices is None or np.isnan(prices[i]).any())]
    if missing:
        raise RequestError(
            f"objective 'carbon+cost' needs electricity prices for every zone a job may run "
            f"in; none (over the whole horizon) for {', '.join(missing)}: give those "
            "[[zones]] a price_file, put "
            "their market's files in prices/ beside the data folder, or set "
            "objective = 'carbon'")


def build_problem(request: PlanRequest, judged: IntensityData,
                  prices: np.ndarray | None = None) -> PlanningProblem:
    """Turn times into slot numbers and entities into arrays."""
    slots = slot_grid(request)
    step = request.policy.slot_length
    slot_h = hours(step)
    zones = tuple(z.id for z in request.zones)
    zone_index = {z: i for i, z in enumerate(zones)}
    values = judged.values.reindex(index=slots, columns=list(zones))
    if values.isna().to_numpy().any():
        raise DataError("intensities do not cover the plan horizon; check the data range")
    specs = []
    for job in request.jobs:
        release = max(job.release, request.start)
        first = int(slots.searchsorted(release.ceil(step)))
        deadline = request.plan_deadline(job)  # the margin is kept free
        last = int(slots.searchsorted(deadline.floor(step))) - 1
        if last < first:
            margin = "" if deadline == job.deadline else \
                f" less its deadline_margin ({deadline.isoformat()})"
            raise InfeasibleError(
                f"job '{job.name}': no whole {request.policy.slot} slot between release "
                f"{release.isoformat()} and deadline {job.deadline.isoformat()}{margin}; "
                "move the deadline later"
            )
        specs.append(JobSpec(
            name=job.name, gpus=job.gpus, gpus_min=job.gpus_min, work=job.gpu_hours,
            power_kw=job.gpu_power_kw, first=first, last=last,
            zones=tuple(zone_index[z] for z in job.zones), home=zone_index[job.home_zone],
            overhead_h=hours(job.checkpoint_overhead),
            max_starts=None if job.max_interruptions is None else job.max_interruptions + 1,
            min_run_slots=max(1, math.ceil(job.min_run / step - 1e-9)),
            checkpoint_gb=job.checkpoint_gb, egress_usd_per_gb=job.egress_usd_per_gb,
            transfer_slots=math.ceil(job.transfer_time / step - 1e-9),
            transfer_kwh_per_gb=job.transfer_kwh_per_gb, allow_split=job.allow_split,
            save_h=hours(job.checkpoint_save), max_moves=job.max_migrations,
            # a rigid job's one size is not held to the step (exports place it)
            gpus_step=1 if job.rigid else request.gpus_step(job),
            resize_h=None if job.resize_overhead is None else hours(job.resize_overhead),
        ))
    capacity = np.vstack([z.capacity_at(slots).to_numpy() for z in request.zones])
    policy = request.policy
    if policy.objective == "carbon+cost":
        _require_prices(request, prices)
    return PlanningProblem(
        slots=slots, slot_h=slot_h, zones=zones, jobs=tuple(specs),
        intensity=values.to_numpy(dtype=float).T.copy(),
        pue=np.array([z.pue for z in request.zones]), capacity=capacity, price=prices,
        threshold=policy.threshold, threshold_mode=policy.threshold_mode,
        threshold_penalty=policy.threshold_penalty,
        price_weight=policy.price_weight if policy.objective == "carbon+cost" else 0.0,
    )


def plan(request: PlanRequest, *, data: str | Path | IntensitySource | None = None,
         oracle: bool = False, model: str | None = None, signal: str = "direct", seed: int = 0,
         progress: Callable[[str], None] | None = None, fit_until: pd.Timestamp | None = None,
         fallback: bool = True, intensities: Intensities | None = None):
    """Plan a request end to end and return a :class:`planner.plan.Plan`.  ``data``: an
    intensity source, or a data folder / None (:func:`load_intensities`); ``fallback``:
    a forecast plan's job that is not robust runs now at home (:func:`planner.plan.hedge`).
    ``intensities``: what to plan on when already loaded (a live plan's,
    :func:`live_intensities`); ``data`` then only gives the prices."""
    from greenepoch.planner.plan import assemble, run_now_plans
    from greenepoch.solvers.solve import solve_problem

    began = time.perf_counter()
    data = source_for(data, seed=seed)  # one source for intensities and prices
    if intensities is None:
        intensities = load_intensities(request, data=data, oracle=oracle, model=model,
                                       signal=signal, seed=seed, progress=progress,
                                       fit_until=fit_until)
    prices = zone_prices(request, slot_grid(request), data)
    problem = build_problem(request, intensities.judged, prices)
    baselines = run_now_plans(problem)  # the solver's starts, and the JSON's baselines
    settings = request.policy.settings_for(forecast=intensities.mode == "forecast")
    outcome = solve_problem(problem, settings, progress, baselines=baselines)
    return assemble(request, problem, outcome, intensities, time.perf_counter() - began,
                    fallback=fallback, baselines=baselines)
