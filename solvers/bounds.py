"""Lower bounds on the planning MILP's objective (kg CO2eq plus weighted terms).

* :func:`separable_bound`: each job alone in its cheapest allowed (zone, slot)s,
  capacity ignored; milliseconds, weak when capacity binds.
* :func:`transport_bound`: the "transport" LP, i.e. the LP relaxation of the full
  model with the start structure aggregated: every job starts at least once, so
  ``h sum gpus[j,z,t] >= W_j + O_j``; one zone at a time and shared capacity kept,
  migration costs (>= 0) dropped.  A relaxation of the LP relaxation, much easier
  to solve at scale.

Both count one start's overhead and nothing else a plan loses: checkpoint saves (one
before every start but the first), size changes and further restarts only add to what
a plan runs, so ignoring them keeps the bounds valid (weaker where saves are long).
The size step is relaxed too (n continuous in the LP).

Every function returns None when it could not prove a bound within its time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from greenepoch.solvers import fastbuild
from greenepoch.solvers.backends import SolveStatus, run_highs
from greenepoch.solvers.problem import PlanningProblem
from greenepoch.solvers.single_job import cheapest_order

INF = float("inf")


def separable_bound(problem: PlanningProblem) -> float:
    """sum_j min cost of W_j + O_j GPU-hours in the job's cheapest allowed slots, one
    zone per slot, capacity ignored (fractional last slot)."""
    total = 0.0
    for job in problem.jobs:
        best = np.full(problem.n_slots, INF)
        for z in job.zones:
            ok = problem.allowed(job, z)
            best = np.where(ok, np.minimum(best, problem.cost_per_gpu_h(job, z)), best)
        costs = best[cheapest_order(best)]
        need = (job.work + job.overhead_gpu_h) / (job.gpus * problem.slot_h)
        whole = min(int(need), len(costs))
        part = need - whole if whole < len(costs) else 0.0
        per_slot = job.gpus * problem.slot_h
        total += per_slot * (float(costs[:whole].sum()) + part * float(costs[whole]
                                                                        if part else 0.0))
    return total


def transport_model(problem: PlanningProblem) -> fastbuild.FastModel:
    """The transport LP as a :class:`~solvers.fastbuild.FastModel` (s columns fixed at 0)."""
    empty = np.zeros(0, np.int64)
    fm = fastbuild.FastModel(problem, True, empty, empty, empty,
                             np.zeros((0, 0, 0), np.int64), empty)
    fastbuild.add_variables(fm)
    fm.upper[fm.s_col(np.arange(fm.n_x))] = 0.0
    fastbuild.set_objective(fm)
    fastbuild.add_run_limits(fm)
    add_aggregate_work(fm)
    fastbuild.add_one_zone(fm)
    fastbuild.add_capacity(fm)
    return fm


def add_aggregate_work(fm: fastbuild.FastModel) -> None:
    """h sum_{z,t} gpus[j,z,t] >= W_j + O_j: the work and at least one start's overhead."""
    p = fm.problem
    i = np.arange(fm.n_x)
    cols, coef = fm.gpu_terms(i)
    need = np.array([job.work + job.overhead_gpu_h for job in p.jobs], float)
    fm.add_rows("work", fm.J, cols, p.slot_h * coef, need, np.full(len(p.jobs), INF))


def _solve_lp(fm: fastbuild.FastModel, time_limit: float,
              **options: Any) -> tuple[float | None, np.ndarray | None]:
    """Solve ``fm`` as an LP; sets ``fm.capacity_prices`` (lambda[z,t] >= 0, the
    capacity rows' duals) when solved."""
    solution, values, duals = run_highs(fm.to_highs_lp(), time_limit=time_limit, mip_gap=0.0,
                                        name="highs-lp", **options)
    if solution.status is not SolveStatus.OPTIMAL:
        return None, None
    p = fm.problem
    prices = np.zeros(len(p.zones) * p.n_slots)
    if duals is not None and "capacity" in fm.family_rows:
        first, last = fm.family_rows["capacity"]
        prices[fm.capacity_zt] = np.maximum(0.0, -duals[first:last])
    fm.capacity_prices = prices.reshape(len(p.zones), p.n_slots)
    return solution.objective, values


def transport_bound(problem: PlanningProblem, time_limit: float
                    ) -> tuple[float | None, fastbuild.FastModel, np.ndarray | None]:
    """The transport LP's optimum, its model and its column values (None, model, None
    when not solved in ``time_limit`` s)."""
    fm = transport_model(problem)
    value, values = _solve_lp(fm, time_limit)
    return value, fm, values

