"""One scenario -> one tidy row, through the planner.

:func:`plan_cached` is :func:`planner.pipeline.plan` with the intensity exports and
price files read once per process (a sweep plans hundreds of requests on the same
files); ``tests/planner/whatif/test_whatif.py`` checks that both give the same plan.

Row fields (units in the names; docs/whatif.md has the table):

* ``emissions_kg``: what the plan really emits: the plan's emissions on the actual
  intensities (oracle), or its ``realised_emissions_kg`` (forecast mode);
* ``run_now_kg``: the run-now-at-home baseline on the same actual intensities;
* ``savings_pct`` = 100 x (run_now_kg - emissions_kg) / run_now_kg;
* ``delay_mean_h`` / ``delay_p95_h``: completion minus run-now's completion, over jobs;
* ``slot`` and ``deadlines`` (job name -> UTC deadline): for the report's Gantt chart;
* ``status``: ``ok``, ``infeasible`` (the planner proved no plan exists: e.g. a hard
  threshold no slot meets) or ``error`` (data missing for the scenario), with
  ``message`` saying why.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from greenepoch.data.errors import GreenEpochError, InfeasibleError
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.planner.model import PlanRequest
from greenepoch.planner.whatif.spec import ORACLE, Scenario

METRICS = ("emissions_kg", "planned_emissions_kg", "run_now_kg", "saving_kg", "savings_pct",
           "delay_mean_h", "delay_p95_h", "interruptions", "migrations", "energy_kwh",
           "cost_usd")


_lock = threading.Lock()
_depth = 0


def _signature(path: str) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the files a read may touch: a changed
    file is read again."""
    root = Path(path)
    files = [root] if root.is_file() else [*root.glob("*.csv"), *root.glob("*/*.csv")]
    out = []
    for f in sorted(files):
        st = f.stat()
        out.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(out)


@functools.lru_cache(maxsize=16)
def _read_exports(path: str, signal: str, allow_gaps: bool, zones: tuple[str, ...] | None,
                  allow_implausible: bool | None, signature: tuple) -> IntensityData:
    extra = {} if allow_implausible is None else {"allow_implausible": allow_implausible}
    return _ORIGINAL["read_electricitymaps"](path, signal=signal, allow_gaps=allow_gaps,
                                             zones=zones, **extra)


@functools.lru_cache(maxsize=64)
def _read_prices(folder: str, market: str, signature: tuple) -> pd.Series | None:
    return _ORIGINAL["shared_prices"](Path(folder), market)


def _cached_exports(path: str | Path, signal: str = "direct", allow_gaps: bool = False,
                    zones: Any = None, allow_implausible: bool | None = None,
                    progress: Any = None) -> IntensityData:
    # progress notes are not repeated for a cached read
    key = None if zones is None else tuple(sorted(zones))
    return _read_exports(str(path), signal, allow_gaps, key, allow_implausible,
                         _signature(str(path)))


def _cached_prices(prices_dir: Path, market: str) -> pd.Series | None:
    series = _read_prices(str(prices_dir), market, _signature(str(prices_dir)))
    return None if series is None else series.copy()


_ORIGINAL: dict[str, Any] = {}


@contextlib.contextmanager
def cached_reads() -> Iterator[None]:
    """Inside, the planner reads each intensity export and price file once per process.

    It swaps :func:`planner.intensity.sources.read_electricitymaps` and
    :func:`planner.prices.shared_prices` for memoised versions (keyed by path, options
    and the files' sizes and times), so :func:`planner.pipeline.plan` itself runs
    unchanged.  Nested and threaded use is safe.
    """
    import greenepoch.data.intensity.sources as sources
    import greenepoch.data.prices as prices

    global _depth
    with _lock:
        if _depth == 0:
            _ORIGINAL.setdefault("read_electricitymaps", sources.read_electricitymaps)
            _ORIGINAL.setdefault("shared_prices", prices.shared_prices)
            sources.read_electricitymaps = _cached_exports
            prices.shared_prices = _cached_prices
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                sources.read_electricitymaps = _ORIGINAL["read_electricitymaps"]
                prices.shared_prices = _ORIGINAL["shared_prices"]


def plan_cached(request: PlanRequest, *, data: str | None = None, oracle: bool = False,
                model: str | None = None, signal: str = "direct", seed: int = 0) -> Any:
    """:func:`planner.pipeline.plan`, reading each data file once per process."""
    from greenepoch.planner.pipeline import plan

    with cached_reads():
        return plan(request, data=data, oracle=oracle, model=model, signal=signal, seed=seed)


def _hours(later: str | None, earlier: str | None) -> float:
    if later is None or earlier is None:
        return float("nan")
    return (pd.Timestamp(later) - pd.Timestamp(earlier)) / pd.Timedelta("1h")


def plan_row(doc: dict[str, Any]) -> dict[str, Any]:
    """The metrics of one plan document (docs/plan-schema.md), summed over its jobs."""
    forecast = doc["intensity"]["mode"] == "forecast"
    emissions = planned = run_now = energy = 0.0
    cost: float | None = 0.0  # None as soon as one job's cost is unknown
    interruptions = migrations = 0
    delays = []
    for job in doc["jobs"]:
        s, home = job["summary"], job["baselines"]["run_now_home"]
        planned += s["emissions_kg"]
        emissions += s["realised_emissions_kg"] if forecast else s["emissions_kg"]
        base = home.get("realised_emissions_kg") if forecast else home["emissions_kg"]
        run_now += float("nan") if base is None else float(base)
        energy += s["energy_kwh"]
        interruptions += s["interruptions"]
        migrations += s["migrations"]
        cost = None if cost is None or s.get("cost_usd") is None else cost + s["cost_usd"]
        delays.append(_hours(s["finish"], home["finish"]))
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


def _segments(doc: dict[str, Any]) -> list[list[Any]]:
    return [[job["name"], seg["zone"], seg["start"], seg["end"], seg["gpus"]]
            for job in doc["jobs"] for seg in job["segments"]]


def evaluate(scenario: Scenario, data: str | None = None, signal: str = "direct",
             seed: int = 0) -> dict[str, Any]:
    """Plan one scenario and return its row (never raises a GreenEpochError: a scenario
    that cannot be planned gives a row with ``status`` and ``message``)."""
    row: dict[str, Any] = scenario.labels()
    began = time.perf_counter()
    oracle = scenario.forecast == ORACLE
    try:
        plan = plan_cached(scenario.request, data=data, oracle=oracle,
                           model=None if oracle else scenario.forecast, signal=signal,
                           seed=seed)
    except InfeasibleError as exc:
        row.update(status="infeasible", message=str(exc))
        row.update(dict.fromkeys(METRICS))
        row.update(solver=None, segments=[])
    except GreenEpochError as exc:
        row.update(status="error", message=str(exc))
        row.update(dict.fromkeys(METRICS))
        row.update(solver=None, segments=[])
    else:
        row.update(status="ok", message="")
        row.update(plan_row(plan.doc))
        row.update(solver=plan.doc["solver"]["status"], segments=_segments(plan.doc))
    request = scenario.request
    row["slot"] = request.policy.slot
    row["deadlines"] = {job.name: job.deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
                        for job in request.jobs}
    row["seconds"] = round(time.perf_counter() - began, 4)
    return row
