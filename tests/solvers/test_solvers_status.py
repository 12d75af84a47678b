"""Solve outcomes tell the truth: optimality comes from the solver's own status."""

from __future__ import annotations

import numpy as np
import pandas as pd
from greenepoch.solvers.backends import SolveStatus
from greenepoch.solvers.problem import JobSpec, PlanningProblem, SolveSettings
from greenepoch.solvers.solve import solve_problem

T0 = pd.Timestamp("2023-06-01T00:00:00Z")


def _job(name: str, gpus: int, gpus_min: int, work: float, power_kw: float, last: int
         ) -> JobSpec:
    return JobSpec(name=name, gpus=gpus, gpus_min=gpus_min, work=work, power_kw=power_kw,
                   first=0, last=last, zones=(0,), home=0, overhead_h=0.0, max_starts=None,
                   min_run_slots=1, checkpoint_gb=0.0, egress_usd_per_gb=0.0,
                   transfer_slots=0, transfer_kwh_per_gb=0.0, allow_split=False)


def test_a_plan_highs_proved_optimal_is_reported_optimal():
    """Found by the property test (it made it flaky): HiGHS proves this optimal, but the
    returned plan's value is 1e-6 above its bound (HiGHS's feasibility tolerance on the
    partly run last slot), and the old code judged optimality by comparing that
    difference with 1e-9."""
    intensity = np.zeros((1, 27))
    intensity[0, 1], intensity[0, 23] = 8.0, 770.0
    capacity = np.zeros((1, 27), np.int64)
    capacity[0, [1, 3, 23]] = 2
    capacity[0, 18:23] = 4
    p = PlanningProblem(
        slots=pd.date_range(T0, periods=27, freq="1h", name="time"), slot_h=1.0,
        zones=("Z0",), jobs=(_job("job0", 4, 1, 21.01, 1.3, 26), _job("job1", 1, 1, 2.0, 0.5, 3)),
        intensity=intensity, pue=np.array([1.0]), capacity=capacity, price=None)
    out = solve_problem(p, SolveSettings(mip_gap=0.0, time_limit=pd.Timedelta("30s")))
    assert out.method == "milp"
    assert out.solution.message == "Optimal"  # HiGHS's own model status
    assert out.solution.status is SolveStatus.OPTIMAL
