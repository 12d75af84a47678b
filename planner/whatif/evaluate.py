"""One scenario -> one tidy row, through the planner.

:func:`plan_cached` is :func:`planner.pipeline.plan` on a
:class:`~greenepoch.data.intensity.source.CachedSource`, so the intensity exports and
price files are read once per process (a sweep plans hundreds of requests on the same
files); ``tests/planner/whatif/test_whatif.py`` checks that both give the same plan.

Row fields (units in the names; docs/whatif.md has the table):

* ``emissions_kg``: what the plan really emits: the plan's emissions on the actual
  intensities (oracle), or its ``realised_emissions_kg`` (forecast mode);
* ``run_now_kg``: the run-now-at-home baseline on the same actual intensities;
* ``savings_pct`` = 100 x (run_now_kg - emissions_kg) / run_now_kg;
* ``delay_mean_h`` / ``delay_p95_h``: completion minus run-now's completion, over jobs;
* ``slot`` and ``deadlines`` (job name -> UTC deadline): for the report's Gantt chart;
* ``status``: ``ok``; ``infeasible`` (the planner proved no plan exists: e.g. a hard
  threshold no slot meets); ``no_solution`` (the solver ran out of time without a
  plan: nothing was proved); ``data_missing`` (the data does not cover the scenario,
  or a zone or price is missing); ``error`` (any other refusal, e.g. a request the
  planner rejects), with ``message`` saying why.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import pandas as pd
from greenepoch.data.errors import GreenEpochError
from greenepoch.data.intensity.source import (
    CachedSource,
    IntensitySource,
    data_dir,
    source_for,
)
from greenepoch.planner.model import PlanRequest
from greenepoch.planner.plan_doc import Plan, iso
from greenepoch.planner.whatif.results import METRICS, status_of
from greenepoch.planner.whatif.spec import ORACLE, Scenario


def shared_source(data: str | None = None, seed: int = 0) -> CachedSource:
    """One :class:`~greenepoch.data.intensity.source.CachedSource` per data folder
    (``data``, else ``$GREENEPOCH_DATA``, else the synthetic default) and seed in this
    process: every scenario a process (or worker) plans reads each intensity export and
    price file once (again only when a file changes)."""
    root = data_dir(data)
    return _shared(None if root is None else str(root), seed)


@functools.lru_cache(maxsize=8)
def _shared(root: str | None, seed: int) -> CachedSource:
    return CachedSource(source_for(root, seed=seed))


def plan_cached(request: PlanRequest, *, data: str | None = None, oracle: bool = False,
                model: str | None = None, signal: str = "direct", seed: int = 0,
                source: IntensitySource | None = None) -> Plan:
    """:func:`planner.pipeline.plan` on ``source`` (default: this process's
    :func:`shared_source` of ``data``), reading each data file once per process."""
    from greenepoch.planner.pipeline import plan

    chosen = source if source is not None else shared_source(data, seed)
    return plan(request, data=chosen, oracle=oracle, model=model, signal=signal, seed=seed)


def _hours(later: pd.Timestamp | None, earlier: pd.Timestamp | None) -> float:
    if later is None or earlier is None:
        return float("nan")
    return (later - earlier) / pd.Timedelta("1h")


def _kg(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def plan_row(plan: Plan | dict[str, Any]) -> dict[str, Any]:
    """The metrics of one plan (or plan document, docs/plan-schema.md), summed over its
    jobs."""
    plan = plan if isinstance(plan, Plan) else Plan.from_dict(plan)
    plan.require_full()
    assert plan.intensity is not None  # require_full checked
    forecast = plan.intensity.forecast
    emissions = planned = run_now = energy = 0.0
    cost: float | None = 0.0  # None as soon as one job's cost is unknown
    interruptions = migrations = 0
    delays = []
    for job in plan.jobs:
        s, baselines = job.summary, job.baselines
        assert s is not None and baselines is not None  # require_full checked
        home = baselines["run_now_home"]
        planned += _kg(s.emissions_kg)
        emissions += _kg(s.realised_emissions_kg if forecast else s.emissions_kg)
        run_now += _kg(home.realised_emissions_kg if forecast else home.emissions_kg)
        energy += _kg(s.energy_kwh)
        interruptions += s.interruptions or 0
        migrations += s.migrations or 0
        cost = None if cost is None or s.cost_usd is None else cost + s.cost_usd
        delays.append(_hours(s.finish, home.finish))
    saving = float(run_now - emissions)
    return {
        "emissions_kg": round(emissions, 3),
        "planned_emissions_kg": round(planned, 3),
        "run_now_kg": round(run_now, 3),
        "saving_kg": round(saving, 3),
        "savings_pct": round(100 * saving / run_now, 3) if run_now > 0 else float("nan"),
        "delay_mean_h": round(float(np.mean(delays)), 4),
        "delay_p95_h": round(float(np.percentile(delays, 95)), 4),
        "interruptions": interruptions,
        "migrations": migrations,
        "energy_kwh": round(energy, 3),
        "cost_usd": None if cost is None else round(cost, 2),
    }


def _segments(plan: Plan) -> list[list[Any]]:
    return [[job.name, seg.zone, iso(seg.start), iso(seg.end), seg.gpus]
            for job in plan.jobs for seg in job.segments]


def evaluate(scenario: Scenario, data: str | None = None, signal: str = "direct",
             seed: int = 0, *, source: IntensitySource | None = None) -> dict[str, Any]:
    """Plan one scenario and return its row (never raises a GreenEpochError: a scenario
    that cannot be planned gives a row with ``status`` and ``message``).  ``source``:
    where intensities come from (default: this process's :func:`shared_source`)."""
    row: dict[str, Any] = scenario.labels()
    began = time.perf_counter()
    oracle = scenario.forecast == ORACLE
    try:
        plan = plan_cached(scenario.request, data=data, oracle=oracle,
                           model=None if oracle else scenario.forecast, signal=signal,
                           seed=seed, source=source)
    except GreenEpochError as exc:
        row.update(status=status_of(exc), message=str(exc))
        row.update(dict.fromkeys(METRICS))
        row.update(solver=None, segments=[])
    else:
        status = plan.solver.status if plan.solver is not None else None
        row.update(status="ok", message="")
        row.update(plan_row(plan))
        row.update(solver=None if status is None else status.value, segments=_segments(plan))
    request = scenario.request
    row["slot"] = request.policy.slot
    row["deadlines"] = {job.name: job.deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
                        for job in request.jobs}
    row["seconds"] = round(time.perf_counter() - began, 4)
    return row
