"""Assembling the Plan from a solved problem: segments, summaries, run-now baselines,
savings and the run-now fallback.  The typed :class:`Plan` and its JSON live in
:mod:`planner.plan_doc` (re-exported here).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from greenepoch.data.timeparse import hours
from greenepoch.planner.model import Job, PlanRequest
from greenepoch.planner.plan_doc import SCHEMA_VERSION, SEGMENT_COLUMNS, Plan, PlanError, PlanStatus
from greenepoch.planner.plan_doc import iso as _iso
from greenepoch.solvers.problem import JobSpec, PlanningProblem
from greenepoch.solvers.schedule import EPS, Schedule, move_charges, transfer_kg
from greenepoch.solvers.schedule import objective as schedule_objective
from greenepoch.solvers.solve import baseline_violations, check_schedule

#: The typed plan is re-exported: ``from greenepoch.planner.plan import Plan`` keeps working.
__all__ = ["MIN_EXPECTED_SAVING", "SCHEMA_VERSION", "SEGMENT_COLUMNS", "Plan", "PlanError",
           "PlanStatus", "age_text", "assemble", "charged_kg", "fallback_reason", "hedge",
           "live_info", "not_robust", "run_now", "run_now_plans", "run_now_runs"]


def _segments(problem: PlanningProblem, schedule: Schedule, j: int,
              intensity: np.ndarray) -> list[dict[str, Any]]:
    """Maximal runs of consecutive slots in one zone at one size.  A segment's end is
    trimmed inside its last slot when that slot is only partly run.  ``gpu_hours``:
    what it runs, lost time included; ``save_hours`` (:func:`_mark_saves`): the
    checkpoint save at its end."""
    job = problem.jobs[j]
    # a size change in place continues the run: no save between the two segments
    in_place = schedule.resized(j) if job.resize_h is not None else \
        np.zeros_like(schedule.held(j))
    step = problem.slots[1] - problem.slots[0] if problem.n_slots > 1 else pd.Timedelta("1h")
    out: list[dict[str, Any]] = []
    for z in range(len(problem.zones)):
        gpus = schedule.gpus[j, z]
        t = 0
        while t < problem.n_slots:
            if gpus[t] == 0:
                t += 1
                continue
            s = t
            while t + 1 < problem.n_slots and gpus[t + 1] == gpus[s]:
                t += 1
            run = schedule.run[j, z, s : t + 1]
            kwh = run * job.power_kw * problem.pue[z]
            end = problem.slots[t] + step
            pausing = t + 1 >= problem.n_slots or not schedule.gpus[j, :, t + 1].any()
            if pausing:  # the job stops here: end when its last slot's work is done
                ran = np.flatnonzero(run > EPS)  # trimming may leave the last slots idle
                last = s + int(ran[-1]) if len(ran) else t
                used = min(1.0, max(run[last - s] / (gpus[last] * problem.slot_h), 0.0))
                end = problem.slots[last] + (step * used).round("1s") if used > EPS else end
            out.append({
                "zone": problem.zones[z],
                "start": _iso(problem.slots[s]),
                "end": _iso(end),
                "gpus": int(gpus[s]),
                "energy_kwh": round(float(kwh.sum()), 3),
                "emissions_kg": round(float((kwh * intensity[z, s : t + 1]).sum() / 1000), 3),
                "gpu_hours": round(float(run.sum()), 3),
                "save_hours": 0.0,
                "_continued": t + 1 < problem.n_slots and bool(in_place[z, t + 1]),
            })
            t += 1
    return _mark_saves(sorted(out, key=lambda seg: seg["start"]), job.save_h)


def _mark_saves(segments: list[dict[str, Any]], save_h: float) -> list[dict[str, Any]]:
    """Every segment that ends the run (a pause, a move, a size change that is a
    restart) ends in a checkpoint save, but the job's last: the one ending last.  So
    the plan's saves are its segments (as the solver counts them) less one."""
    ends = [k for k, seg in enumerate(segments) if not seg.pop("_continued")]
    if ends and save_h > 0:
        last = max(ends, key=lambda k: (segments[k]["end"], segments[k]["start"]))
        for k in ends:
            if k != last:
                segments[k]["save_hours"] = round(save_h, 6)
    return segments


def run_now_runs(problem: PlanningProblem, job: JobSpec,
                 z: int) -> tuple[np.ndarray, pd.Timestamp, bool]:
    """The carbon-agnostic baseline's schedule: GPU-hours per slot in zone z (start at
    release at full size, one start overhead; slots where the zone cannot hold the job,
    capacity below its GPUs with the job alone, are waited out: the run before each
    wait ends in a checkpoint save and each resumption pays the restart overhead
    again, as in the solvers), its finish time, and whether it finishes within the
    horizon."""
    full = job.gpus * problem.slot_h
    remaining = job.work + job.overhead_gpu_h
    runs = np.zeros(problem.n_slots)
    t, running = job.first, False
    step = problem.slots[1] - problem.slots[0] if problem.n_slots > 1 else pd.Timedelta("1h")
    finish = problem.slots[-1] + step
    while remaining > EPS:
        if t >= problem.n_slots:
            return runs, problem.slots[-1] + step, False
        if problem.capacity[z, t] < job.gpus:
            if running:
                remaining += job.segment_gpu_h
            running = False
            t += 1
            continue
        running = True
        runs[t] = min(full, remaining)
        remaining -= runs[t]
        finish = problem.slots[t] + (step * (runs[t] / full)).round("1s")
        t += 1
    return runs, finish, True


def run_now_plans(problem: PlanningProblem) -> dict[str, Schedule | None]:
    """The two baselines as whole plans, every job run now (:func:`run_now_runs`) at
    home or in its best zone (least judged emissions); None where a job does not
    finish within the horizon.  The solver takes them as starting plans."""
    plans: dict[str, Schedule | None] = {}
    for name in ("run_now_home", "run_now_best_zone"):
        out: Schedule | None = Schedule.empty(problem)
        for j, job in enumerate(problem.jobs):
            tried = {z: run_now_runs(problem, job, z) for z in
                     ((job.home,) if name == "run_now_home" else job.zones)}
            z = min(tried, key=lambda z: (not tried[z][2], float(
                (tried[z][0] * problem.pue[z] * problem.intensity[z]).sum())))
            runs, _finish, done = tried[z]
            if out is None or not done:
                out = None
                break
            out.run[j, z], out.gpus[j, z] = runs, np.where(runs > 0, job.gpus, 0)
        plans[name] = out
    return plans


def run_now(problem: PlanningProblem, job: JobSpec, z: int,
            intensity: np.ndarray) -> tuple[float, pd.Timestamp]:
    """Carbon-agnostic baseline (:func:`run_now_runs`) charged at ``intensity``
    ([zone, slot], gCO2eq/kWh).  Returns (emissions kg, finish time); NaN when it does
    not finish within the horizon."""
    runs, finish, done = run_now_runs(problem, job, z)
    if not done:
        return float("nan"), finish
    return float((runs * job.power_kw * problem.pue[z] * intensity[z]).sum()) / 1000, finish


def charged_kg(problem: PlanningProblem, schedule: Schedule, j: int,
               intensity: np.ndarray) -> float:
    """Job ``j``'s schedule charged at ``intensity`` ([zone, slot], gCO2eq/kWh): the
    energy of its runs plus its checkpoint transfers (each charged in the slot the plan
    moves it, :func:`solvers.schedule.move_charges`).  Every emissions figure of a plan
    (judged, P10/P90, realised) counts these same two things."""
    job = problem.jobs[j]
    kg = sum(float((schedule.run[j, z] * job.power_kw * problem.pue[z] * intensity[z]).sum())
             for z in job.zones) / 1000
    per_gb = job.checkpoint_gb * job.transfer_kwh_per_gb / 1000.0
    return kg + sum(per_gb * float(intensity[z, t]) for z, t in move_charges(problem, schedule, j))


def _pct(base: float, value: float) -> float | None:
    """Saving of ``value`` against ``base`` in %; None when the base is unknown."""
    if not np.isfinite(base) or not np.isfinite(value):
        return None
    return round(100 * (base - value) / base, 2) if base > 0 else 0.0


def _kg(value: float) -> float | None:
    """Emissions for the document: None when unknown (NaN is not valid JSON)."""
    return round(value, 3) if np.isfinite(value) else None


def _electricity_usd(problem: PlanningProblem, schedule: Schedule, j: int) -> float | None:
    """What job ``j``'s GPU-hours cost at the zones' prices; None when it runs in a slot
    without a price."""
    job, total = problem.jobs[j], 0.0
    for z in job.zones:
        held = schedule.run[j, z] > 0
        usd = problem.usd_per_gpu_h(job, z)[held]
        if np.isnan(usd).any():
            return None
        total += float((schedule.run[j, z][held] * usd).sum())
    return total


def _run_now_usd(problem: PlanningProblem, job: JobSpec, z: int) -> float | None:
    """What the run-now baseline in zone z pays for electricity; None without a price in
    one of its slots (or when it does not finish)."""
    runs, _finish, done = run_now_runs(problem, job, z)
    held = runs > 0
    usd = problem.usd_per_gpu_h(job, z)[held]
    if not done or np.isnan(usd).any():
        return None
    return round(float((runs[held] * usd).sum()), 2)


def _job_doc(problem: PlanningProblem, schedule: Schedule, j: int, judged: np.ndarray,
             actual: np.ndarray | None,
             bands: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    job = problem.jobs[j]
    segments = _segments(problem, schedule, j, judged)
    transfer = transfer_kg(problem, schedule, j)
    emissions = sum(s["emissions_kg"] for s in segments) + transfer
    moves = schedule.moves(j, job.home)
    lost = schedule.lost_gpu_h(job, j)
    cost = _electricity_usd(problem, schedule, j)
    if cost is not None:
        cost += len(moves) * job.checkpoint_gb * job.egress_usd_per_gb
    home_kg, home_finish = run_now(problem, job, job.home, judged)
    # NaN: the baseline does not finish within the horizon (a split job can beat it)
    best = min(job.zones, key=lambda z: np.nan_to_num(run_now(problem, job, z, judged)[0],
                                                      nan=np.inf))
    best_kg, best_finish = run_now(problem, job, best, judged)
    summary: dict[str, Any] = {
        "emissions_kg": round(emissions, 3),
        "energy_kwh": round(sum(s["energy_kwh"] for s in segments), 3),
        "finish": max(s["end"] for s in segments) if segments else None,
        # a size change that is a restart is an interruption too (Schedule.segments)
        "interruptions": max(0, schedule.segments(job, j) - 1),
        "migrations": len(moves),
        "transfer_emissions_kg": round(transfer, 3),
        # restarts, saves and in-place resizes, as hours at the job's largest size
        "overhead_hours": round(lost / job.gpus, 3),
        "lost_gpu_hours": round(lost, 3),
        "cost_usd": None if cost is None else round(cost, 2),
    }
    baselines: dict[str, Any] = {
        "run_now_home": {"emissions_kg": _kg(home_kg), "finish": _iso(home_finish),
                         "cost_usd": _run_now_usd(problem, job, job.home)},
        "run_now_best_zone": {"zone": problem.zones[best], "emissions_kg": _kg(best_kg),
                              "finish": _iso(best_finish)},
    }
    doc: dict[str, Any] = {
        "name": job.name,
        "segments": segments,
        "summary": summary,
        "baselines": baselines,
        "savings_pct": _pct(home_kg, emissions),
        "savings_pct_p10_p90": None,
        "robust": None,
        "realised_savings_pct": None,
    }
    if bands is not None:
        pct = []
        for q in ("p10", "p90"):
            plan_q = charged_kg(problem, schedule, j, bands[q])
            now_q = run_now(problem, job, job.home, bands[q])[0]
            summary[f"emissions_{q}_kg"] = _kg(plan_q)
            baselines["run_now_home"][f"emissions_{q}_kg"] = _kg(now_q)
            pct.append(_pct(now_q, plan_q))
        doc["savings_pct_p10_p90"] = pct
        doc["robust"] = (None if pct[1] is None else
                         not_robust(problem, schedule, j, bands) is None)
    if actual is not None:
        realised = charged_kg(problem, schedule, j, actual)
        home_realised = run_now(problem, job, job.home, actual)[0]
        summary["realised_emissions_kg"] = round(realised, 3)
        baselines["run_now_home"]["realised_emissions_kg"] = _kg(home_realised)
        doc["realised_savings_pct"] = _pct(home_realised, realised)
    return doc


def _gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None or objective <= 0:
        return None
    return round(max(0.0, (objective - bound) / objective), 6)


def _grid(frame: pd.DataFrame, problem: PlanningProblem) -> np.ndarray:
    """A time x zone frame as the problem's [zone, slot] array."""
    return frame.reindex(index=problem.slots, columns=list(problem.zones)).to_numpy(
        dtype=float).T


#: A forecast plan's job runs now unless it expects to save at least this share of
#: running now's expected emissions: ``blend``'s median WAPE is 7.4-11.7 % by horizon
#: (docs/forecast-accuracy.md), so a smaller saving is within the forecast's own error.
#: Chosen on 288 plans of 2022-2023 (benchmarks/results/forecast_plans/README.md).
MIN_EXPECTED_SAVING = 0.10


def not_robust(problem: PlanningProblem, schedule: Schedule, j: int,
               bands: dict[str, np.ndarray]) -> tuple[float, float] | None:
    """(plan, run now) P90 emissions of job ``j`` when its schedule is not robust: charged
    at the forecast's P90 in every slot, it emits more than running now at home
    charged at the same P90; None when it is robust (or run-now cannot finish)."""
    job = problem.jobs[j]
    plan_p90 = charged_kg(problem, schedule, j, bands["p90"])
    now_p90 = run_now(problem, job, job.home, bands["p90"])[0]
    if not np.isfinite(now_p90) or plan_p90 <= now_p90 + EPS:
        return None
    return plan_p90, now_p90


def fallback_reason(problem: PlanningProblem, schedule: Schedule, j: int,
                    bands: dict[str, np.ndarray]) -> str | None:
    """Why job ``j`` of a forecast plan should run now at home instead, or None.

    Either its schedule is not robust (:func:`not_robust`), or its expected saving is
    small: plan_mean > (1 - MIN_EXPECTED_SAVING) x now_mean, both charged on the
    forecast mean."""
    worse = not_robust(problem, schedule, j, bands)
    if worse is not None:
        return (f"at the forecast's P90 its optimised schedule emits {worse[0]:,.1f} kg, "
                f"more than running now ({worse[1]:,.1f} kg at P90)")
    job = problem.jobs[j]
    now = run_now(problem, job, job.home, problem.intensity)[0]
    plan = charged_kg(problem, schedule, j, problem.intensity)
    if not np.isfinite(now) or plan <= (1 - MIN_EXPECTED_SAVING) * now + EPS:
        return None
    saving = 100 * (now - plan) / now if now > 0 else 0.0
    return (f"it expects to save {saving:.1f} % against running now, under the "
            f"{100 * MIN_EXPECTED_SAVING:.0f} % a forecast plan needs (less is within "
            "the forecast's error)")


def hedge(problem: PlanningProblem, schedule: Schedule,
          bands: dict[str, np.ndarray]) -> tuple[Schedule, dict[int, dict[str, Any]]]:
    """Jobs with a :func:`fallback_reason` run now at home instead
    (:func:`run_now_runs`), when that keeps every limit (window, capacity with the
    other jobs, hard threshold, interruptions); otherwise their schedule stays and the
    summary warns.  Returns the schedule and, per job that fell back, what its
    optimised schedule expected (kg on the forecast mean and at P90) and why."""
    gpus, run = schedule.gpus.copy(), schedule.run.copy()
    notes: dict[int, dict[str, Any]] = {}
    for j, job in enumerate(problem.jobs):
        reason = fallback_reason(problem, schedule, j, bands)
        if reason is None:
            continue
        runs, _finish, done = run_now_runs(problem, job, job.home)
        trial_gpus, trial_run = gpus.copy(), run.copy()
        trial_gpus[j], trial_run[j] = 0, 0.0
        trial_run[j, job.home] = runs
        trial_gpus[j, job.home] = np.where(runs > 0, job.gpus, 0)
        if not done or check_schedule(problem, Schedule(trial_gpus, trial_run)):
            continue
        gpus, run = trial_gpus, trial_run
        notes[j] = {
            "to": "run_now_home",
            "reason": reason,
            "expected_kg": round(charged_kg(problem, schedule, j, problem.intensity), 3),
            "p90_kg": round(charged_kg(problem, schedule, j, bands["p90"]), 3),
        }
    return Schedule(gpus, run), notes


def _segment_rules(request: PlanRequest, job: Job, spec: JobSpec) -> dict[str, Any]:
    """What the plan's segments were planned with (the solver's job), for exports to
    agree with it: the save at the end of each, the deadline margin, the GPU step
    every size is a multiple of, the migration cap (None: none) and the in-place
    resize loss (None: a size change is a restart)."""
    return {
        "checkpoint_save_hours": spec.save_h,
        "deadline_margin_hours": hours(request.deadline_margin_of(job)),
        "gpus_step": spec.gpus_step,
        "max_migrations": spec.max_moves,
        "resize_overhead_hours": spec.resize_h,
    }


def _runs(flags: pd.Series, step: pd.Timedelta) -> list[list[str]]:
    """The ``[start, end)`` ranges where ``flags`` (on a time index) is True."""
    out: list[list[str]] = []
    for t in flags.index[flags.to_numpy(dtype=bool)]:
        if out and out[-1][1] == _iso(t):
            out[-1][1] = _iso(t + step)
        else:
            out.append([_iso(t), _iso(t + step)])
    return out


def age_text(seconds: float) -> str:
    """An age for people: minutes under an hour, else hours to a tenth."""
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def live_info(intensities: Any, slot_h: float, slots: pd.DatetimeIndex,
              slot: str) -> dict[str, Any]:
    """``intensity.live`` of a live plan (docs/live.md): the reads, per zone the hours
    of each origin (:data:`planner.plan_doc.LIVE_ORIGINS`), a warning per stale or
    synthetic input (a plan never passes those off as live), and the forecast planned
    on per slot of ``slots`` (``slot`` long)."""
    from greenepoch.planner.plan_doc import LIVE_ORIGINS

    reads = list(intensities.provenance)
    forecast = {r.zone: r for r in reads if r.kind == "forecast"}  # the one used, last
    origin: pd.DataFrame = intensities.live.origin
    step = pd.Timedelta(hours=slot_h)
    zones: dict[str, Any] = {}
    warnings: list[str] = []
    for zone in origin.columns:
        read = forecast.get(zone)
        kinds = origin[zone].astype(object)
        if read is not None and read.origin != "live":  # a provider forecast, not live
            kinds = kinds.replace("provider", "stale" if read.origin == "archive"
                                  else "synthetic")
        zones[str(zone)] = {name: {"hours": round(float((kinds == name).sum()) * slot_h, 3),
                                   "ranges": _runs(kinds == name, step)}
                            for name in LIVE_ORIGINS}
    for r in reads:
        what = f"{r.zone}: the {r.kind}" + ("s" if r.kind == "actual" else "")
        if r.origin == "archive":
            age = "" if r.stale_s is None else f", {age_text(r.stale_s)} old"
            warnings.append(f"{what} came from the archive ({r.provider}{age}): stale, "
                            "no provider answered")
        elif r.origin == "default":
            warnings.append(f"{what} are the embedded synthetic default, not measured: no "
                            "provider or archive answered")
    history = getattr(intensities, "history", None)
    # per zone: the zones' hours run side by side, so their sum is no span of the plan
    modelled = {zone: sum(hours[k]["hours"] for k in ("seam", "model"))
                for zone, hours in zones.items()}
    if history == "default":
        what = ("the P10/P90 band" if not any(modelled.values()) else
                ", ".join(f"{zone} {h:g} h" for zone, h in modelled.items() if h)
                + " of the plan")
        warnings.append(f"{what} came from the own model fitted on the embedded synthetic "
                        "default, not measured history: fill the archive ('greenepoch data "
                        "pull') or give a data folder")
    synthetic = bool(history == "default" and any(modelled.values())) or any(
        r.origin == "default" for r in reads)
    return {
        "providers": [{"zone": r.zone, "kind": r.kind, "origin": r.origin,
                       "provider": r.provider, "signal": r.signal,
                       "fetched": None if r.fetched is None else _iso(r.fetched),
                       "issued": None if r.issued is None else _iso(r.issued),
                       "stale_s": None if r.stale_s is None else round(float(r.stale_s), 1),
                       "first": None if r.first is None else _iso(r.first),
                       "last": None if r.last is None else _iso(r.last)} for r in reads],
        "zones": zones,
        "history": history,
        "stale": any(r.origin == "archive" for r in reads),
        "synthetic": synthetic,
        "warnings": warnings,
        "series": _series(intensities, slots, slot),
    }


def _series(intensities: Any, slots: pd.DatetimeIndex, slot: str) -> dict[str, Any]:
    """``intensity.live.series``: the P50 planned on and the P10/P90 band per zone and
    slot, as written (2 decimals; null where unknown)."""
    frames = {"p50": intensities.judged.values, **(intensities.quantiles or {})}

    def rows(frame: pd.DataFrame) -> dict[str, list[float | None]]:
        on = frame.reindex(index=slots)
        return {str(z): [None if not np.isfinite(v) else round(float(v), 2)
                         for v in on[z].to_numpy(dtype=float)] for z in on.columns}

    return {"first": _iso(slots[0]), "slot": slot,
            **{stat: rows(frames[stat]) for stat in ("p50", "p10", "p90") if stat in frames}}


def assemble(request: PlanRequest, problem: PlanningProblem, outcome: Any, intensities: Any,
             seconds: float, *, fallback: bool = True,
             baselines: dict[str, Schedule | None] | None = None) -> Plan:
    """Build the plan document from a solved problem.  ``fallback`` (forecast plans):
    jobs whose schedule is not robust run now at home (:func:`hedge`).  ``baselines``:
    the :func:`run_now_plans` the solver was given (built here when not passed)."""
    actual = None
    if intensities.actual is not None:
        actual = _grid(intensities.actual.values, problem)
    bands = None
    if getattr(intensities, "quantiles", None):
        bands = {q: _grid(frame, problem) for q, frame in intensities.quantiles.items()}
    schedule: Schedule = outcome.schedule
    notes: dict[int, dict[str, Any]] = {}
    if bands is not None and fallback:
        schedule, notes = hedge(problem, schedule, bands)
    jobs = [_job_doc(problem, schedule, j, problem.intensity, actual, bands)
            for j in range(len(problem.jobs))]
    for j, note in notes.items():
        jobs[j]["summary"]["fallback"] = note
    requested = {job.name: job for job in request.jobs}
    for doc, spec in zip(jobs, problem.jobs, strict=True):  # what was asked, so that
        job = requested[doc["name"]]  # readers (exports) need not guess it
        doc.update(release=_iso(job.release), deadline=_iso(job.deadline),
                   gpu_hours=job.gpu_hours, **_segment_rules(request, job, spec))
    if baselines is None:
        baselines = run_now_plans(problem)
    for name, base in baselines.items():  # does the baseline meet the request?
        broken = {} if base is None else baseline_violations(problem, base)
        for j, doc in enumerate(jobs):
            why = broken.get(j, ["does not finish within the horizon"] if base is None else [])
            doc["baselines"][name].update(meets_request=not why, violations=why)
    sol = outcome.solution
    objective = sol.objective
    if notes:  # the document's schedule is no longer the solver's
        objective = schedule_objective(problem, schedule)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "created_by": "greenepoch plan",
        "start": _iso(request.start),
        "slot": request.policy.slot,
        "zones": list(problem.zones),
        "intensity": {
            "source": intensities.judged.source,
            "signal": intensities.judged.signal,
            "mode": intensities.mode,
            "model": intensities.model,
            **({} if getattr(intensities, "live", None) is None
               else {"live": live_info(intensities, problem.slot_h, problem.slots,
                                     request.policy.slot)}),
        },
        "solver": {
            "name": sol.backend,
            "status": sol.status.value,
            "method": outcome.method,
            "objective": None if objective is None else round(objective, 4),
            "bound": None if sol.bound is None else round(sol.bound, 4),
            "gap": _gap(objective, sol.bound) if notes else (
                None if sol.gap is None else round(sol.gap, 6)),
            "seconds": round(sol.seconds, 3),
            "build_seconds": round(outcome.build_seconds, 3),
            "total_seconds": round(seconds, 3),
            "message": sol.message,
        },
        "jobs": jobs,
    }
    return Plan.from_dict(doc)
